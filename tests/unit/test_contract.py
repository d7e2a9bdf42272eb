"""The contract is one contract: the pydantic models and the exported JSON Schema agree.

Every example validates under both, a table of invalid events is rejected by both (with the
reason code the collector reports), and a mutation sweep checks they agree on thousands of
near-miss events.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from lms.cli.contract import app as contract_app
from lms.contract import (
    EVENT_TYPES,
    PAYLOAD_MODELS,
    REASON_CODES,
    SCHEMA_VERSION,
    ContractViolation,
    export_json_schema,
    load_examples,
    load_schema,
    schema_path,
    validate_batch,
    validate_event,
    validate_event_json,
)
from lms.contract.bench import bench_validate
from lms.contract.schema import render_json
from lms.errors import LmsError
from lms.settings import REPO_ROOT

Event = dict[str, Any]

EXAMPLES = load_examples()


@pytest.fixture(scope="module")
def schema_validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _schema_errors(validator: Draft202012Validator, event: Any) -> list[str]:
    return [
        ".".join(str(p) for p in error.absolute_path) + ": " + error.message
        for error in validator.iter_errors(event)
    ]


def _model_accepts(event: Any) -> bool:
    try:
        validate_event(event)
    except ContractViolation:
        return False
    return True


# --- the committed schema is the models' export ---------------------------------------------


def test_committed_schema_matches_models() -> None:
    committed = schema_path().read_text(encoding="utf-8")
    assert committed == render_json(export_json_schema()), (
        "contract/v1/lms-event.schema.json is stale: run `lms contract export`"
    )


def test_schema_is_valid_draft_2020_12_and_self_contained() -> None:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in refs(schema):
        assert ref.startswith("#/$defs/"), ref
        assert ref.removeprefix("#/$defs/") in schema["$defs"], ref


KNOWN_KEYWORDS = {
    "$schema", "$id", "$comment", "$ref", "$defs", "title", "description", "type", "enum",
    "const", "properties", "required", "additionalProperties", "allOf", "anyOf", "if", "then",
    "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength",
    "default",
}  # fmt: skip


def test_schema_uses_only_standard_keywords() -> None:
    # pydantic can leak its own constraint names ("ge", "le") into a schema; validators ignore
    # unknown keywords silently, so a leak would quietly loosen the contract.
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                if key in ("properties", "$defs"):
                    for sub in value.values():
                        yield from walk(sub)
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    assert set(walk(load_schema())) <= KNOWN_KEYWORDS


def test_cli_export_check_passes() -> None:
    result = CliRunner().invoke(contract_app, ["export", "--check"])
    assert result.exit_code == 0, result.output


# --- examples --------------------------------------------------------------------------------


def test_one_example_per_event_type() -> None:
    assert list(EXAMPLES) == list(EVENT_TYPES)
    assert len(EVENT_TYPES) == 17
    assert set(PAYLOAD_MODELS) == set(EVENT_TYPES)
    files = {p.stem for p in (REPO_ROOT / "contract/v1/examples").glob("*.json")}
    assert files == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_example_valid_under_both(event_type: str, schema_validator: Draft202012Validator) -> None:
    example = EXAMPLES[event_type]
    assert example["event_type"] == event_type
    assert example["schema_version"] == SCHEMA_VERSION
    assert _schema_errors(schema_validator, example) == []
    event = validate_event(example)
    assert event.event_type == event_type
    assert event.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_dump_round_trips(event_type: str, schema_validator: Draft202012Validator) -> None:
    # What the collector forwards (model_dump_json) must still satisfy the schema downstream.
    event = validate_event(EXAMPLES[event_type])
    dumped = json.loads(event.model_dump_json())
    assert _schema_errors(schema_validator, dumped) == []
    assert validate_event(dumped) == event
    assert validate_event_json(event.model_dump_json()) == event


# --- invalid events: both reject, the validator names the reason -----------------------------

Mutation = Callable[[Event], None]


def _set(path: str, value: Any) -> Mutation:
    *parents, leaf = path.split(".")

    def mutate(event: Event) -> None:
        node = event
        for part in parents:
            node = node[part]
        node[leaf] = value

    return mutate


def _drop(path: str) -> Mutation:
    *parents, leaf = path.split(".")

    def mutate(event: Event) -> None:
        node = event
        for part in parents:
            node = node[part]
        del node[leaf]

    return mutate


INVALID_CASES: list[tuple[str, str, Mutation, str, str | None]] = [
    # (case id, example to start from, mutation, reason code, field named in the message)
    ("missing_event_id", "page_view", _drop("event_id"), "missing_field", "event_id"),
    ("missing_payload_field", "quiz_submit", _drop("payload.score"), "missing_field", "payload.score"),
    ("missing_client", "login", _drop("client"), "missing_field", "client"),
    ("missing_event_type", "login", _drop("event_type"), "missing_event_type", "event_type"),
    ("unknown_event_type", "login", _set("event_type", "quiz_retake"), "unknown_event_type", "event_type"),
    ("event_type_wrong_type", "login", _set("event_type", 3), "unknown_event_type", "event_type"),
    ("extra_envelope_field", "login", _set("ip_address", "10.0.0.1"), "unknown_field", "ip_address"),
    ("extra_payload_field", "quiz_submit", _set("payload.grade", "A"), "unknown_field", "payload.grade"),
    ("extra_client_field", "login", _set("client.ip", "10.0.0.1"), "unknown_field", "client.ip"),
    ("score_is_string", "quiz_submit", _set("payload.score", "7.5"), "wrong_type", "payload.score"),
    ("count_is_fraction", "quiz_submit", _set("payload.n_correct", 6.5), "wrong_type", "payload.n_correct"),
    ("bool_is_int", "question_answer", _set("payload.is_correct", 1), "wrong_type", "payload.is_correct"),
    ("number_is_bool", "video_play", _set("payload.position_s", True), "wrong_type", "payload.position_s"),
    ("payload_not_object", "login", _set("payload", ["sso"]), "wrong_type", "payload"),
    ("bad_uuid", "login", _set("event_id", "not-a-uuid"), "bad_format", "event_id"),
    ("uuid_without_dashes", "login", _set("event_id", "0b7c3e5e4f1a4c339d5e2f0a1b2c3d4e"), "bad_format", "event_id"),
    ("bad_student_id", "login", _set("student_id", "stu 123"), "bad_format", "student_id"),
    ("student_id_too_long", "login", _set("student_id", "s" * 65), "bad_format", "student_id"),
    ("empty_id", "quiz_start", _set("payload.quiz_id", ""), "bad_format", "payload.quiz_id"),
    ("naive_timestamp", "login", _set("occurred_at", "2026-03-02T09:00:04"), "naive_timestamp", "occurred_at"),
    ("non_utc_timestamp", "login", _set("occurred_at", "2026-03-02T10:00:04+01:00"), "non_utc_timestamp", "occurred_at"),
    ("date_only", "login", _set("occurred_at", "2026-03-02"), "naive_timestamp", "occurred_at"),
    ("epoch_timestamp", "login", _set("occurred_at", 1772442004), "wrong_type", "occurred_at"),
    ("garbage_timestamp", "login", _set("occurred_at", "yesterday"), "bad_timestamp", "occurred_at"),
    ("month_13", "login", _set("occurred_at", "2026-13-02T09:00:04Z"), "bad_timestamp", "occurred_at"),
    ("nanoseconds", "login", _set("occurred_at", "2026-03-02T09:00:04.123456789Z"), "bad_timestamp", "occurred_at"),
    ("received_at_naive", "quiz_submit", _set("received_at", "2026-03-02T09:24:14"), "naive_timestamp", "received_at"),
    ("schema_major_2", "login", _set("schema_version", "2.0"), "unsupported_schema_version", "schema_version"),
    ("schema_version_number", "login", _set("schema_version", 1.0), "unsupported_schema_version", "schema_version"),
    ("schema_version_bare_major", "login", _set("schema_version", "1"), "unsupported_schema_version", "schema_version"),
    ("negative_score", "quiz_submit", _set("payload.score", -1), "out_of_range", "payload.score"),
    ("zero_max_score", "quiz_submit", _set("payload.max_score", 0), "out_of_range", "payload.max_score"),
    ("zero_questions", "quiz_submit", _set("payload.n_questions", 0), "out_of_range", "payload.n_questions"),
    ("huge_count", "quiz_submit", _set("payload.n_questions", 2**70), "out_of_range", "payload.n_questions"),
    ("huge_float_count", "assignment_submit", _set("payload.word_count", 1e21), "out_of_range", "payload.word_count"),
    ("huge_rating", "feedback", _set("payload.rating", 2**100), "out_of_range", "payload.rating"),
    ("depth_over_100", "scroll_event", _set("payload.depth_pct", 100.5), "out_of_range", "payload.depth_pct"),
    ("zero_duration", "video_complete", _set("payload.duration_s", 0), "out_of_range", "payload.duration_s"),
    ("rating_6", "feedback", _set("payload.rating", 6), "out_of_range", "payload.rating"),
    ("rating_0", "feedback", _set("payload.rating", 0), "out_of_range", "payload.rating"),
    ("course_id_null_quiz", "quiz_submit", _set("course_id", None), "wrong_type", "course_id"),
    ("course_id_null_page_view", "page_view", _set("course_id", None), "wrong_type", "course_id"),
    ("course_id_missing_login", "login", _drop("course_id"), "missing_field", "course_id"),
    ("bad_enum", "login", _set("payload.method", "magic_link"), "bad_value", "payload.method"),
    ("bad_device", "login", _set("client.device", "watch"), "bad_value", "client.device"),
    ("empty_app_version", "login", _set("client.app_version", ""), "bad_length", "client.app_version"),
    ("os_too_long", "login", _set("client.os", "x" * 33), "bad_length", "client.os"),
    ("empty_path", "page_view", _set("payload.path", ""), "bad_length", "payload.path"),
    ("answer_too_long", "question_answer", _set("payload.answer", "a" * 1001), "bad_length", "payload.answer"),
    ("feedback_too_long", "feedback", _set("payload.text", "a" * 2001), "bad_length", "payload.text"),
    ("tab_visible_without_hidden_s", "tab_visible", _drop("payload.hidden_s"), "missing_field", "payload.hidden_s"),
    ("nullable_key_absent", "tab_hidden", _drop("payload.quiz_id"), "missing_field", "payload.quiz_id"),
    ("login_payload_on_logout", "logout", _set("payload", {"method": "sso"}), "missing_field", "payload.reason"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("example", "mutate", "reason", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in INVALID_CASES],
)
def test_invalid_rejected_by_both(
    example: str,
    mutate: Mutation,
    reason: str,
    field: str | None,
    schema_validator: Draft202012Validator,
) -> None:
    event = copy.deepcopy(EXAMPLES[example])
    mutate(event)

    assert _schema_errors(schema_validator, event), "JSON Schema accepted an invalid event"

    with pytest.raises(ContractViolation) as caught:
        validate_event(event)
    violation = caught.value
    assert violation.reason == reason, violation.message
    assert violation.reason in REASON_CODES
    assert violation.field == field
    assert violation.message.startswith(f"{field}: ")

    # The JSON fast path reports the same thing.
    with pytest.raises(ContractViolation) as caught_json:
        validate_event_json(json.dumps(event))
    assert (caught_json.value.reason, caught_json.value.field) == (reason, field)


def test_message_names_field_and_bound() -> None:
    event = copy.deepcopy(EXAMPLES["quiz_submit"])
    event["payload"]["score"] = -1
    with pytest.raises(ContractViolation, match=r"^payload\.score: should be >= 0 \(got -1\)$"):
        validate_event(event)


def test_messages_do_not_echo_free_text() -> None:
    # Messages reach logs; a student's answer or feedback may hold personal data.
    event = copy.deepcopy(EXAMPLES["feedback"])
    event["payload"]["text"] = "call me on +33 6 12 34 56 78 " * 100
    with pytest.raises(ContractViolation) as caught:
        validate_event(event)
    assert "+33" not in caught.value.message


def test_not_an_object_and_invalid_json() -> None:
    [result] = validate_batch([["not", "an", "event"]])
    assert result.reason == "not_an_object"
    with pytest.raises(ContractViolation) as caught:
        validate_event_json(b'{"event_id": ')
    assert caught.value.reason == "invalid_json"


def test_python_datetimes_must_be_utc_aware() -> None:
    base = validate_event(EXAMPLES["login"]).model_dump()
    utc = datetime(2026, 3, 2, 9, 0, 4, tzinfo=UTC)
    assert validate_event({**base, "occurred_at": utc}).occurred_at == utc
    assert validate_event({**base, "occurred_at": utc.astimezone(ZoneInfo("UTC"))})
    for value, reason in [
        (utc.replace(tzinfo=None), "naive_timestamp"),
        (utc.astimezone(ZoneInfo("Europe/Paris")), "non_utc_timestamp"),
    ]:
        with pytest.raises(ContractViolation) as caught:
            validate_event({**base, "occurred_at": value})
        assert caught.value.reason == reason


def test_plus_zero_offset_is_utc(schema_validator: Draft202012Validator) -> None:
    # Python's isoformat() writes +00:00; it is UTC, so both sides accept it.
    event = {**EXAMPLES["login"], "occurred_at": "2026-03-02T09:00:04.5+00:00"}
    assert _schema_errors(schema_validator, event) == []
    dumped = json.loads(validate_event(event).model_dump_json())
    assert dumped["occurred_at"] == "2026-03-02T09:00:04.500000Z"


def test_validate_batch_keeps_order_and_continues() -> None:
    bad = copy.deepcopy(EXAMPLES["quiz_submit"])
    bad["payload"]["score"] = -2
    results = validate_batch([EXAMPLES["login"], bad, 42, EXAMPLES["logout"]])
    assert [r.ok for r in results] == [True, False, False, True]
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert results[1].reason == "out_of_range"
    assert results[1].field == "payload.score"
    assert results[2].reason == "not_an_object"
    assert results[0].event is not None and results[0].event.event_type == "login"


# --- agreement sweep ---------------------------------------------------------------------------

REPLACEMENTS: list[Any] = [
    None, True, False, 0, -1, 1, 2.5, 5.0, 100, 101, -0.5, "", "x", "stu_1", "bad id!",
    "s" * 64, "s" * 65, "2026-03-02T09:00:00Z", "2026-03-02T09:00:00+02:00", "1.0", "1.7",
    "2.0", "0b7c3e5e-4f1a-4c33-9d5e-2f0a1b2c3d4e", "quiz", "desktop", "sso", "user",
    "video", "course", [], {}, {"method": "sso"},
]  # fmt: skip


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


def _mutants(event: Event, envelope: bool) -> Iterator[tuple[str, Event]]:
    frozen = orjson.dumps(event)  # loads(frozen) is a much cheaper deep copy than deepcopy
    for path in list(_paths(event)):
        if not envelope and path[0] != "payload":
            continue
        *parents, leaf = path
        for value in [*REPLACEMENTS, "DROP"]:
            mutant = orjson.loads(frozen)
            node = mutant
            for part in parents:
                node = node[part]
            if value == "DROP":
                del node[leaf]
            else:
                node[leaf] = value
            yield f"{'.'.join(path)}={value!r}"[:80], mutant
    for container in ("", "client", "payload"):
        mutant = copy.deepcopy(event)
        target = mutant[container] if container else mutant
        target["unexpected"] = 1
        yield f"{container}.unexpected", mutant


def test_models_and_schema_agree_on_mutants(schema_validator: Draft202012Validator) -> None:
    disagreements = []
    checked = 0
    for event_type, example in EXAMPLES.items():
        # The envelope is the same for every type except course_id's nullability: sweeping it
        # on one course-less and one course event covers it (jsonschema is slow, ~1 ms/event).
        envelope = event_type in ("login", "quiz_submit")
        for label, mutant in _mutants(example, envelope):
            checked += 1
            by_schema = schema_validator.is_valid(mutant)
            by_model = _model_accepts(mutant)
            if by_schema != by_model:
                disagreements.append(f"{event_type} {label}: schema={by_schema} model={by_model}")
    assert checked > 2000
    assert disagreements == []


# --- other consumers ------------------------------------------------------------------------------

STREAMING_PYTHON = REPO_ROOT / "streaming/.venv/bin/python"


@pytest.mark.skipif(not STREAMING_PYTHON.exists(), reason="streaming environment not created")
def test_schema_usable_by_path_from_streaming_env(tmp_path: Path) -> None:
    script = tmp_path / "check.py"
    script.write_text(
        "import json, sys\n"
        "from jsonschema import Draft202012Validator\n"
        "schema = json.load(open(sys.argv[1]))\n"
        "v = Draft202012Validator(schema)\n"
        "good = json.load(open(sys.argv[2]))\n"
        "bad = dict(good, payload=dict(good['payload'], score=-1))\n"
        "assert not list(v.iter_errors(good))\n"
        "[err] = list(v.iter_errors(bad))\n"
        "print('/'.join(map(str, err.absolute_path)), err.message)\n"
    )
    out = subprocess.run(
        [
            str(STREAMING_PYTHON),
            str(script),
            str(schema_path()),
            str(REPO_ROOT / "contract/v1/examples/quiz_submit.json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "payload/score -1 is less than the minimum of 0"


# --- CLI and bench ------------------------------------------------------------------------------


def test_cli_validate(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(e) for e in EXAMPLES.values()) + "\n")
    result = runner.invoke(contract_app, ["validate", str(good)])
    assert result.exit_code == 0, result.output
    assert "17 events, 17 valid, 0 invalid" in result.output

    bad_event = copy.deepcopy(EXAMPLES["quiz_submit"])
    bad_event["payload"]["score"] = -1
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(EXAMPLES["login"]) + "\n" + json.dumps(bad_event) + "\n{oops\n")
    result = runner.invoke(contract_app, ["validate", str(bad)])
    assert isinstance(result.exception, LmsError)
    assert "3 events, 1 valid, 2 invalid" in result.output
    assert "line 2: [out_of_range] payload.score: should be >= 0 (got -1)" in result.output
    assert "line 3: [invalid_json]" in result.output

    array = tmp_path / "events.json"
    array.write_text(json.dumps(list(EXAMPLES.values())))
    assert runner.invoke(contract_app, ["validate", str(array)]).exit_code == 0

    missing = runner.invoke(contract_app, ["validate", str(tmp_path / "nope.jsonl")])
    assert isinstance(missing.exception, LmsError)
    assert "no such file" in str(missing.exception)


def test_cli_examples() -> None:
    runner = CliRunner()
    listing = runner.invoke(contract_app, ["examples"])
    assert listing.exit_code == 0
    assert [line.split()[0] for line in listing.output.splitlines()] == list(EVENT_TYPES)
    one = runner.invoke(contract_app, ["examples", "quiz_submit"])
    assert json.loads(one.output) == EXAMPLES["quiz_submit"]
    every = runner.invoke(contract_app, ["examples", "--all"])
    assert [json.loads(line) for line in every.output.splitlines()] == list(EXAMPLES.values())


def test_bench_validate_runs() -> None:
    assert bench_validate(200) > 0
