"""The collector's validator: events in, typed events or a reason code and a message out.

Reason codes are short, stable and machine-readable (dead-letter records and metrics group by
them); messages are for humans and name the field, e.g. ``payload.score: should be >= 0 (got -1)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails, SchemaValidator

from lms.contract.fields import (
    ID_PATTERN,
    UTC_TIMESTAMP_PATTERN,
    UUID_PATTERN,
    _check_utc_timestamp,
)
from lms.contract.models import (
    COURSELESS_EVENT_TYPES,
    EVENT_ADAPTER,
    EVENT_TYPES,
    EventModel,
    LmsEvent,
)

# Reason codes, most specific first. Documented in docs/data-contract.md.
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_EVENT_TYPE = "missing_event_type"
UNKNOWN_EVENT_TYPE = "unknown_event_type"
UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
MISSING_FIELD = "missing_field"
UNKNOWN_FIELD = "unknown_field"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "out_of_range"
BAD_LENGTH = "bad_length"
BAD_FORMAT = "bad_format"
BAD_VALUE = "bad_value"
BAD_TIMESTAMP = "bad_timestamp"
NAIVE_TIMESTAMP = "naive_timestamp"
NON_UTC_TIMESTAMP = "non_utc_timestamp"
INVALID = "invalid"

REASON_CODES: tuple[str, ...] = (
    INVALID_JSON,
    NOT_AN_OBJECT,
    MISSING_EVENT_TYPE,
    UNKNOWN_EVENT_TYPE,
    UNSUPPORTED_SCHEMA_VERSION,
    MISSING_FIELD,
    UNKNOWN_FIELD,
    WRONG_TYPE,
    OUT_OF_RANGE,
    BAD_LENGTH,
    BAD_FORMAT,
    BAD_VALUE,
    BAD_TIMESTAMP,
    NAIVE_TIMESTAMP,
    NON_UTC_TIMESTAMP,
    INVALID,
)

_REASON_BY_ERROR_TYPE: dict[str, str] = {
    "missing": MISSING_FIELD,
    "extra_forbidden": UNKNOWN_FIELD,
    "union_tag_invalid": UNKNOWN_EVENT_TYPE,
    "union_tag_not_found": MISSING_EVENT_TYPE,
    "greater_than": OUT_OF_RANGE,
    "greater_than_equal": OUT_OF_RANGE,
    "less_than": OUT_OF_RANGE,
    "less_than_equal": OUT_OF_RANGE,
    "finite_number": OUT_OF_RANGE,
    "string_too_short": BAD_LENGTH,
    "string_too_long": BAD_LENGTH,
    "string_pattern_mismatch": BAD_FORMAT,
    "literal_error": BAD_VALUE,
    "enum": BAD_VALUE,
    "bad_timestamp": BAD_TIMESTAMP,
    "naive_timestamp": NAIVE_TIMESTAMP,
    "non_utc_timestamp": NON_UTC_TIMESTAMP,
    "timestamp_type": WRONG_TYPE,
}

_PATTERN_MESSAGES: dict[str, str] = {
    ID_PATTERN: "should be an id of 1 to 64 letters, digits, '_' or '-'",
    UUID_PATTERN: "should be a UUID like 0b7c3e5e-4f1a-4c33-9d5e-2f0a1b2c3d4e",
}

_SHORT_MESSAGES: dict[str, str] = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field (not in contract v1)",
    "greater_than": "should be > {gt}",
    "greater_than_equal": "should be >= {ge}",
    "less_than": "should be < {lt}",
    "less_than_equal": "should be <= {le}",
    "finite_number": "should be a finite number",
    "string_too_short": "should have at least {min_length} character(s)",
    "string_too_long": "should have at most {max_length} characters",
    "literal_error": "should be {expected}",
}


@dataclass(frozen=True, slots=True)
class Result:
    """Outcome for one event: ``event`` when valid, otherwise ``reason`` and ``message``."""

    index: int
    event: EventModel | None = None
    reason: str | None = None
    message: str | None = None
    field: str | None = None

    @property
    def ok(self) -> bool:
        return self.event is not None


class ContractViolation(ValueError):
    """An event broke the contract; carries the reason code, the field and a message."""

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field


def _field_path(loc: tuple[int | str, ...]) -> str:
    # A tagged union puts the tag first in the location ('quiz_submit', 'payload', 'score').
    if loc and loc[0] in EVENT_TYPES:
        loc = loc[1:]
    return ".".join(str(part) for part in loc)


def _shown(value: Any) -> str | None:
    # Echo numbers and booleans only: strings may be personal data (feedback text, answers) and
    # these messages end up in logs and dead-letter metadata.
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        # str() of a huge int is slow and, past 4300 digits, an error.
        return str(value) if abs(value) < 10**15 else "an integer beyond 10^15"
    if isinstance(value, float):
        return repr(value)
    return None


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _violation(error: ErrorDetails, raw: object) -> ContractViolation:
    error_type = error["type"]
    field = _field_path(error["loc"])
    ctx = error.get("ctx") or {}

    if error_type == "union_tag_not_found":
        return ContractViolation(
            MISSING_EVENT_TYPE, "event_type: required field is missing", "event_type"
        )
    if error_type == "union_tag_invalid":
        tag = raw.get("event_type") if isinstance(raw, Mapping) else None
        shown = repr(tag)[:80] if isinstance(tag, str) else f"a {type(tag).__name__}"
        return ContractViolation(
            UNKNOWN_EVENT_TYPE,
            f"event_type: {shown} is not an event type of contract v1 "
            "(see `lms contract examples`)",
            "event_type",
        )
    if error_type in ("model_type", "model_attributes_type", "dict_type") and not field:
        return ContractViolation(NOT_AN_OBJECT, "event should be a JSON object", None)
    if field == "schema_version" and error_type != "missing":
        version = raw.get("schema_version") if isinstance(raw, Mapping) else None
        shown = repr(version)[:40]
        return ContractViolation(
            UNSUPPORTED_SCHEMA_VERSION,
            f'schema_version: {shown} is not supported; this collector accepts 1.x ("1.0")',
            field,
        )

    if field == "course_id" and error.get("input", "") is None:
        event_type = error["loc"][0]
        return ContractViolation(
            WRONG_TYPE,
            f"course_id: a {event_type} event needs a course_id "
            f"(null only for {' and '.join(sorted(COURSELESS_EVENT_TYPES))})",
            field,
        )

    reason = _REASON_BY_ERROR_TYPE.get(error_type)
    if reason is None:
        reason = (
            WRONG_TYPE
            if error_type.endswith("_type") or error_type.endswith("_parsing")
            else INVALID
        )
    template = _SHORT_MESSAGES.get(error_type)
    if error_type == "string_pattern_mismatch":
        template = _PATTERN_MESSAGES.get(str(ctx.get("pattern")))
    text = (
        template.format(**{key: _number(value) for key, value in ctx.items()})
        if template
        else error["msg"]
    )
    if error_type.endswith("_type") or reason in (OUT_OF_RANGE, BAD_VALUE):
        shown_value = _shown(error.get("input"))
        if shown_value is not None:
            text += f" (got {shown_value})"
        elif error_type.endswith("_type"):
            text += f" (got {type(error.get('input')).__name__})"
    return ContractViolation(reason, f"{field}: {text}" if field else text, field or None)


def validate_event(obj: Any) -> EventModel:
    """Validate one decoded event (a dict); raise :class:`ContractViolation` if it is invalid."""
    try:
        return EVENT_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        raise _violation(exc.errors(include_url=False)[0], obj) from None


def validate_event_json(raw: bytes | str) -> EventModel:
    """Validate one event from JSON text: the fast path, it skips building a dict first."""
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise ContractViolation(INVALID_JSON, f"not valid JSON: {first['msg']}") from None
        try:
            obj: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        raise _violation(first, obj) from None


def check_event(obj: Any, index: int = 0) -> Result:
    """Like :func:`validate_event` but returns a :class:`Result` instead of raising."""
    try:
        return Result(index=index, event=EVENT_ADAPTER.validate_python(obj))
    except ValidationError as exc:
        violation = _violation(exc.errors(include_url=False)[0], obj)
        return Result(index, None, violation.reason, violation.message, violation.field)


def validate_batch(objs: Iterable[Any]) -> list[Result]:
    """One :class:`Result` per input, in order; invalid events never stop the batch."""
    return [check_event(obj, index) for index, obj in enumerate(objs)]


# --- batch screening without building models -------------------------------------------------


def _screen_schema(schema: Any) -> Any:
    """A copy of a pydantic-core schema in which every model validates to plain dicts.

    A ``model`` node wraps a ``model-fields`` node (which checks the fields) and then builds an
    instance; building and freeing the instances cost about a third of validating a batch. The
    copy keeps the ``model-fields`` node with the model's own strictness and extra-field
    behaviour, so it accepts and refuses exactly what the models do, with the same errors
    (except the wording of timestamp errors, see below). Input: decoded JSON.
    """
    if isinstance(schema, list):
        return [_screen_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "function-before" and (
        schema.get("function", {}).get("function") is _check_utc_timestamp
    ):
        # The UtcTimestamp check in Rust instead of a Python call per timestamp: the same
        # pattern, then a real calendar date (2026-02-30 fails) - what _check_utc_timestamp
        # accepts. Its refusals differ in wording only, and check_event words them.
        return {
            "type": "chain",
            "steps": [
                {"type": "str", "pattern": UTC_TIMESTAMP_PATTERN, "strict": True},
                {"type": "datetime", "strict": False},
            ],
        }
    if schema.get("type") == "model":
        config = schema.get("config") or {}
        inner = dict(_screen_schema(schema["schema"]))
        inner.setdefault("strict", bool(config.get("strict", False)))
        inner.setdefault("extra_behavior", config.get("extra_fields_behavior", "ignore"))
        if "ref" in schema:
            inner["ref"] = schema["ref"]
        return inner
    return {key: _screen_schema(value) for key, value in schema.items()}


def _batch_screen() -> tuple[SchemaValidator, dict[str, Any]]:
    core_schema = TypeAdapter(list[LmsEvent]).core_schema
    configs = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "model":
                configs.append(node.get("config") or {})
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(core_schema)
    # Nested validators take their strictness (and allow_inf_nan) from the enclosing model's
    # config, which no longer exists in the copy: every model shares one config (models._Strict),
    # so it becomes the validator's config.
    shared = [{k: v for k, v in c.items() if k != "title"} for c in configs]
    if not shared or any(c != shared[0] for c in shared):
        raise RuntimeError("contract models do not share one config; update _batch_screen")
    return SchemaValidator(_screen_schema(core_schema), shared[0]), shared[0]  # type: ignore[arg-type]


_BATCH_SCREEN, _ = _batch_screen()


def invalid_indices(events: list[Any]) -> set[int]:
    """Positions of the events that break the contract, checked in one call.

    The fast path for batches (the collector): accepts and refuses exactly like
    :func:`check_event`, without building models. Ask :func:`check_event` for the reason of each
    refused event.
    """
    try:
        _BATCH_SCREEN.validate_python(events)
    except ValidationError as exc:
        return {
            loc[0]
            for error in exc.errors(include_url=False, include_context=False, include_input=False)
            if (loc := error["loc"]) and isinstance(loc[0], int)
        }
    return set()
