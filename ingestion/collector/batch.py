"""One request's batch, from body bytes to Kafka records and per-event outcomes (no I/O here).

Hot path: the whole list is screened in one pydantic-core call that validates like the contract
models without building them (``lms.contract.validate.invalid_indices``; the common, all-valid
case pays no per-event Python overhead); only the failing events are re-checked one by one for
their reason code. Valid events are forwarded as the client's own JSON object with
``received_at`` set, not re-dumped from the models: it is cheaper and keeps the producer's values
exactly (the contract is strict, so the object holds nothing the schema does not allow).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ingestion.collector.dedup import RecentIds
from ingestion.collector.producer import Record
from ingestion.collector.redact import redact_event, redact_unknown
from lms.contract import check_event
from lms.contract.validate import invalid_indices

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"

# Rejected events larger than this are not copied whole into the dead-letter topic: the record
# keeps the start of the event so an operator can still recognise the producer.
DEAD_LETTER_MAX_EVENT_BYTES = 256 * 1024
DEAD_LETTER_EXCERPT_CHARS = 4096


class BatchError(Exception):
    """The request as a whole is unusable: 400 (shape) or 413 (size)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def parse_batch(body: bytes, max_events: int) -> list[Any]:
    """Decode ``{"events": [...]}``; the list's items are checked later, one by one."""
    if not body.strip():
        raise BatchError(400, 'empty body: send a JSON object {"events": [...]}')
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson's message gives the position, not the content.
        raise BatchError(400, f"malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BatchError(
            400, f'body should be a JSON object {{"events": [...]}}, got {_kind(document)}'
        )
    if "events" not in document:
        raise BatchError(400, 'body has no "events" field: send {"events": [...]}')
    extra = [key for key in document if key != "events"]
    if extra:
        shown = ", ".join(repr(key[:40]) for key in extra[:3])
        raise BatchError(400, f'unknown field(s) {shown} in body: only "events" is allowed')
    events = document["events"]
    if not isinstance(events, list):
        raise BatchError(400, f'"events" should be an array of events, got {_kind(events)}')
    if len(events) > max_events:
        raise BatchError(
            413, f"{len(events)} events in one request; the limit is {max_events}: split the batch"
        )
    return events


def received_at_now() -> str:
    """UTC, microseconds, 'Z' suffix: the contract's timestamp format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _short_id(value: Any) -> str | None:
    # Echo only what could be an id: a rejected event's event_id may be anything, of any size.
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


@dataclass(slots=True)
class Outcome:
    index: int
    event_id: str | None
    status: str
    reason: str | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "event_id": self.event_id,
            "status": self.status,
            "reason": self.reason,
        }
        if self.message is not None:
            out["message"] = self.message
        return out


@dataclass(slots=True)
class PreparedBatch:
    outcomes: list[Outcome]
    records: list[Record] = field(default_factory=list)
    # Event ids to remember as accepted once Kafka acknowledged the records.
    accepted_ids: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {ACCEPTED: 0, DUPLICATE: 0, REJECTED: 0}
        for outcome in self.outcomes:
            counts[outcome.status] += 1
        return counts

    def response(self) -> bytes:
        counts = self.counts()
        return orjson.dumps(
            {
                "accepted": counts[ACCEPTED],
                "duplicate": counts[DUPLICATE],
                "rejected": counts[REJECTED],
                "results": [outcome.as_dict() for outcome in self.outcomes],
            }
        )


def dead_letter_value(
    event: Any,
    index: int,
    reason: str,
    message: str,
    field_name: str | None,
    received_at: str,
    key_name: str,
) -> bytes:
    redacted = redact_unknown(event)
    raw = orjson.dumps(redacted)
    record: dict[str, Any] = {
        "reason": reason,
        "message": message,
        "field": field_name,
        "received_at": received_at,
        "api_key": key_name,
        "index": index,
        "event_id": _short_id(event.get("event_id")) if isinstance(event, dict) else None,
        "event": redacted,
    }
    if len(raw) > DEAD_LETTER_MAX_EVENT_BYTES:
        record["event"] = None
        record["event_bytes"] = len(raw)
        record["event_excerpt"] = raw[:DEAD_LETTER_EXCERPT_CHARS].decode("utf-8", "replace")
    return orjson.dumps(record)


def prepare_batch(
    events: list[Any],
    *,
    recent: RecentIds,
    raw_topic: str,
    dead_letter_topic: str,
    key_name: str,
    received_at: str | None = None,
) -> PreparedBatch:
    """Validate, de-duplicate, stamp and serialise; decide every event's outcome except the
    final one (which depends on Kafka acknowledging the records)."""
    stamp = received_at or received_at_now()
    invalid = invalid_indices(events) if events else set()
    outcomes: list[Outcome] = []
    records: list[Record] = []
    accepted_ids: list[str] = []
    in_batch: set[str] = set()
    seen = recent.seen
    dumps = orjson.dumps
    for index, event in enumerate(events):
        if index in invalid:
            result = check_event(event, index)
            if not result.ok:
                reason = result.reason or "invalid"
                message = result.message or "invalid event"
                records.append(
                    (
                        dead_letter_topic,
                        key_name.encode(),
                        dead_letter_value(
                            event, index, reason, message, result.field, stamp, key_name
                        ),
                    )
                )
                outcomes.append(
                    Outcome(
                        index,
                        _short_id(event.get("event_id")) if isinstance(event, dict) else None,
                        REJECTED,
                        reason,
                        message,
                    )
                )
                continue
        event_id: str = event["event_id"]
        # UUIDs are case-insensitive; the event keeps the producer's spelling.
        dedup_key = event_id.lower()
        if dedup_key in in_batch:
            outcomes.append(Outcome(index, event_id, DUPLICATE, "repeated_in_batch"))
            continue
        if seen(dedup_key):
            outcomes.append(Outcome(index, event_id, DUPLICATE, "recently_accepted"))
            continue
        in_batch.add(dedup_key)
        event["received_at"] = stamp
        redact_event(event)
        records.append((raw_topic, event["student_id"].encode(), dumps(event)))
        accepted_ids.append(dedup_key)
        outcomes.append(Outcome(index, event_id, ACCEPTED))
    return PreparedBatch(outcomes, records, accepted_ids)
