"""The committed example events, one per event type (`contract/v1/examples/<event_type>.json`)."""

from __future__ import annotations

import json
from typing import Any

from lms.contract.models import EVENT_TYPES
from lms.contract.schema import examples_dir
from lms.errors import LmsError


def load_example(event_type: str) -> dict[str, Any]:
    if event_type not in EVENT_TYPES:
        raise LmsError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    path = examples_dir() / f"{event_type}.json"
    try:
        example: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LmsError(f"example for {event_type} missing at {path}") from None
    return example


def load_examples() -> dict[str, dict[str, Any]]:
    """Every example, keyed by event type, in contract order."""
    return {event_type: load_example(event_type) for event_type in EVENT_TYPES}
