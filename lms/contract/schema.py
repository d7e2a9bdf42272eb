"""Export the language-neutral JSON Schema from the models, and find the committed copy.

The exported schema is shaped for consumers rather than mirroring pydantic's output: the envelope
is described once, and an ``allOf`` of ``if event_type == X then payload is XPayload`` rules picks
the payload. A ``oneOf`` over 17 event schemas would be equivalent, but its failures read "is not
valid under any of the given schemas"; if/then failures name the offending field.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from lms.contract.fields import REF_MARKER, SHARED_DEFS
from lms.contract.models import (
    COURSELESS_EVENT_TYPES,
    EVENT_ADAPTER,
    EVENT_MODELS,
    EVENT_TYPES,
    PAYLOAD_MODELS,
    SCHEMA_VERSION,
    Client,
)
from lms.errors import LmsError
from lms.settings import REPO_ROOT

CONTRACT_MAJOR = SCHEMA_VERSION.split(".")[0]
SCHEMA_ID = f"urn:lms:contract:v{CONTRACT_MAJOR}:lms-event"
SCHEMA_FILENAME = "lms-event.schema.json"

JsonSchema = dict[str, Any]


def contract_dir() -> Path:
    """`contract/v<major>/` at the top of the repository (language-neutral, read by path)."""
    return REPO_ROOT / "contract" / f"v{CONTRACT_MAJOR}"


def schema_path() -> Path:
    return contract_dir() / SCHEMA_FILENAME


def examples_dir() -> Path:
    return contract_dir() / "examples"


def load_schema() -> JsonSchema:
    """The committed JSON Schema (identical to :func:`export_json_schema`, a test checks it)."""
    path = schema_path()
    try:
        schema: JsonSchema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LmsError(
            f"contract schema not found at {path}; run `lms contract export` to write it"
        ) from None
    return schema


def _clean(node: Any) -> Any:
    """Drop pydantic's auto titles and turn field markers into "$ref"s to the shared $defs."""
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    if REF_MARKER in node:
        out["$ref"] = f"#/$defs/{node[REF_MARKER]}"
    for key, value in node.items():
        if key in ("title", REF_MARKER):
            continue
        if key in ("properties", "$defs"):
            # Keys here are names, not keywords: a property called "title" must survive.
            out[key] = {name: _clean(sub) for name, sub in value.items()}
        else:
            out[key] = _clean(value)
    return out


def export_json_schema() -> JsonSchema:
    """Build the contract's JSON Schema (draft 2020-12, self-contained) from the models."""
    generated = EVENT_ADAPTER.json_schema(ref_template="#/$defs/{model}", mode="validation")
    defs: dict[str, JsonSchema] = generated["$defs"]

    # The envelope of a course-less event is the loosest one; others only narrow fields.
    base_name = EVENT_MODELS[sorted(COURSELESS_EVENT_TYPES)[0]].__name__
    base = defs[base_name]
    properties: dict[str, Any] = copy.deepcopy(base["properties"])
    properties["event_type"] = {
        "description": "What happened; selects the payload schema.",
        "enum": list(EVENT_TYPES),
    }
    properties["payload"] = {
        "description": "Event-specific fields; its schema is chosen by event_type (see allOf).",
        "type": "object",
    }
    properties["course_id"]["description"] = (
        "Course in context; null only for " + " and ".join(sorted(COURSELESS_EVENT_TYPES)) + "."
    )

    rules: list[JsonSchema] = []
    for event_type, model in EVENT_MODELS.items():
        event_def = defs[model.__name__]
        if event_def["required"] != base["required"]:
            raise AssertionError(f"{model.__name__} changes the envelope's required fields")
        narrowed = {
            name: prop
            for name, prop in event_def["properties"].items()
            if name not in ("event_type", "payload") and prop != base["properties"][name]
        }
        narrowed["payload"] = {"$ref": f"#/$defs/{PAYLOAD_MODELS[event_type].__name__}"}
        rules.append(
            {
                "if": {
                    "properties": {"event_type": {"const": event_type}},
                    "required": ["event_type"],
                },
                "then": {"properties": narrowed},
            }
        )

    shared_defs = {name: copy.deepcopy(schema) for name, schema in SHARED_DEFS.items()}
    model_defs = {Client.__name__: defs[Client.__name__]}
    for payload_model in PAYLOAD_MODELS.values():
        model_defs[payload_model.__name__] = defs[payload_model.__name__]

    schema: JsonSchema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "$comment": "Generated from lms/contract/models.py by `lms contract export`; "
        "do not edit by hand.",
        "description": "One learning event sent by an LMS client to the collector.",
        "type": "object",
        "additionalProperties": False,
        "required": base["required"],
        "properties": properties,
        "allOf": rules,
        "$defs": {**shared_defs, **model_defs},
    }
    cleaned: JsonSchema = _clean(schema)
    # Set after cleaning, which drops pydantic's generated titles everywhere.
    title = f"LMS event, contract v{CONTRACT_MAJOR} (schema_version {CONTRACT_MAJOR}.x)"
    return {**dict(list(cleaned.items())[:3]), "title": title, **dict(list(cleaned.items())[3:])}


def render_json(obj: Any) -> str:
    """The committed files' exact formatting, so `export --check` compares text, not semantics."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def export_files(check: bool = False) -> list[Path]:
    """Write the schema file; with ``check``, write nothing and return the files that differ."""
    expected = {schema_path(): render_json(export_json_schema())}
    changed = []
    for path, text in expected.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        changed.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return changed
