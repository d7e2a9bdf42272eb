"""The OpenAPI description of ``POST /v1/events``: the contract's discriminated union, so every
event type and its payload appear in the docs, with the committed examples.

The route reads its body by hand (one decode, per-event outcomes instead of an all-or-nothing
422), so FastAPI cannot infer this schema; it is injected into the generated document instead.
"""

from __future__ import annotations

from typing import Any

from lms.contract import EVENT_ADAPTER, load_examples
from lms.contract.fields import REF_MARKER, SHARED_DEFS
from lms.errors import LmsError

COMPONENTS = "#/components/schemas/"


def _resolve_markers(node: Any) -> Any:
    # The contract marks shared field types (Id, Uuid, UtcTimestamp) for its own exporter; here
    # they become references to components of the same name.
    if isinstance(node, list):
        return [_resolve_markers(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _resolve_markers(value) for key, value in node.items() if key != REF_MARKER}
    if REF_MARKER in node:
        out["$ref"] = COMPONENTS + node[REF_MARKER]
    return out


def event_schemas(max_events: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(EventBatch schema, components)`` for the request body."""
    generated = EVENT_ADAPTER.json_schema(ref_template=COMPONENTS + "{model}", mode="validation")
    components: dict[str, Any] = {
        name: _resolve_markers(schema) for name, schema in generated.pop("$defs").items()
    }
    components.update({name: dict(schema) for name, schema in SHARED_DEFS.items()})
    components["LmsEvent"] = _resolve_markers(generated)
    components["EventBatch"] = {
        "title": "EventBatch",
        "type": "object",
        "additionalProperties": False,
        "required": ["events"],
        "description": f"Up to {max_events} events of contract v1, of any types, in any order. "
        "Each event is validated and answered on its own.",
        "properties": {
            "events": {
                "type": "array",
                "maxItems": max_events,
                "items": {"$ref": COMPONENTS + "LmsEvent"},
            }
        },
    }
    return {"$ref": COMPONENTS + "EventBatch"}, components


def body_examples() -> dict[str, Any]:
    try:
        examples = load_examples()
    except LmsError:
        return {}  # a checkout without contract/v1/examples still serves its docs
    out: dict[str, Any] = {
        "mixed": {
            "summary": "A batch of several event types",
            "value": {"events": list(examples.values())[:4]},
        }
    }
    for event_type, example in examples.items():
        out[event_type] = {"summary": f"One {event_type} event", "value": {"events": [example]}}
    return out


def install_request_body(openapi: dict[str, Any], path: str, max_events: int) -> dict[str, Any]:
    """Add the request body of ``POST path`` and its component schemas to an OpenAPI document."""
    body_schema, components = event_schemas(max_events)
    openapi.setdefault("components", {}).setdefault("schemas", {}).update(components)
    media: dict[str, Any] = {"schema": body_schema}
    examples = body_examples()
    if examples:
        media["examples"] = examples
    openapi["paths"][path]["post"]["requestBody"] = {
        "required": True,
        "description": 'JSON object `{"events": [...]}` (Content-Type: application/json).',
        "content": {"application/json": media},
    }
    return openapi
