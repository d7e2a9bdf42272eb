"""Delivery noise and arrival order: what a collector would actually receive from a shard.

- every event arrives a little after it occurred (network latency);
- late: whole sessions from buffering mobile clients arrive hours later (decided per session in
  ``behaviour``), so they land out of order among other students' events;
- duplicates: a retried delivery repeats an event byte for byte (same event_id) minutes later;
- invalid: producer bugs at ``invalid_rate``: an extra, broken copy of a real event that must fail
  the contract (missing field, wrong type, unknown type, negative number, bad timestamp...).

A line is three pieces: the fixed-width head (event id and occurred_at, built for the whole shard
in numpy), the session part (student, session and client, shared by every event of a session) and
the event body (type, course and payload) from ``behaviour``. Lines are only ever assembled in bulk,
with one ``str.join`` per shard.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from lms.simulator.behaviour import RawEvents
from lms.simulator.encoding import (
    EVENT_TYPES,
    HEAD_LEN,
    head_rows,
    uuid4_strings,
    uuid_bytes,
    uuid_strings,
)

NUMERIC_FIELDS = (
    "position_s",
    "watched_s",
    "score",
    "time_taken_s",
    "depth_pct",
    "visible_s",
    "word_count",
    "duration_s",
    "points",
)
INVALID_KINDS = (
    "missing_field:session_id",
    "missing_field:payload",
    "missing_event_id",
    "bad_type:client",
    "bad_type:student_id",
    "unknown_event_type",
    "negative_value",
    "bad_timestamp",
    "unsupported_schema_version",
    "unexpected_field",
)


def corrupt(line: str, kind: str, new_id: str) -> tuple[str, str, str | None]:
    """A broken copy of a valid event line: (line, reason, event_id or None)."""
    doc: dict[str, Any] = orjson.loads(line)
    doc["event_id"] = new_id
    reason = kind
    if kind == "missing_field:session_id":
        del doc["session_id"]
    elif kind == "missing_field:payload":
        del doc["payload"]
    elif kind == "missing_event_id":
        del doc["event_id"]
    elif kind == "bad_type:client":
        doc["client"] = doc["client"]["device"]
    elif kind == "bad_type:student_id":
        doc["student_id"] = int(doc["student_id"].split("_")[1])
    elif kind == "unknown_event_type":
        doc["event_type"] = "video_rewind"
    elif kind == "negative_value":
        numeric = [k for k in NUMERIC_FIELDS if k in doc["payload"]]
        if numeric:
            doc["payload"][numeric[0]] = -abs(doc["payload"][numeric[0]]) - 1
            reason = f"negative_value:{numeric[0]}"
        else:
            doc["occurred_at"] = "2026-13-45 25:61"
            reason = "bad_timestamp"
    elif kind == "bad_timestamp":
        # Local time without an offset: a common client bug.
        doc["occurred_at"] = doc["occurred_at"].replace("T", " ").rstrip("Z")
    elif kind == "unsupported_schema_version":
        doc["schema_version"] = "2.0"
    elif kind == "unexpected_field":
        doc["payload"]["ip_address"] = "203.0.113.7"
    else:  # pragma: no cover - INVALID_KINDS is exhaustive
        raise ValueError(kind)
    return orjson.dumps(doc).decode(), reason, doc.get("event_id")


@dataclass
class DeliveredShard:
    """A shard's delivered lines, plus what was planted.

    The text is kept as *entries* in generation order: one per event (head row ``k`` of
    :meth:`heads`, then ``sessions[k] + bodies[k]``), then one per invalid line (whole, in
    ``sessions``, no head). The lines in arrival order (ties keep generation order, duplicates and
    invalid copies after the events) are ``entry[k]`` for ``k`` in ``line_entry``; a duplicate
    is its event's entry a second time."""

    ids: np.ndarray  # (events, 16) uuid bytes
    event_ms: np.ndarray  # occurred ms per event
    sessions: list[str]  # per entry
    bodies: list[str]  # per entry
    line_entry: np.ndarray  # per line, arrival order
    has_head: np.ndarray  # per line: false for the invalid ones
    arrival_ms: np.ndarray  # per line, sorted
    occurred_ms: np.ndarray  # per line
    counts: dict[str, int]
    n_valid: int
    late_ids: list[str] = field(default_factory=list)
    late_delay_ms: list[int] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)
    invalid: list[tuple[str | None, str, str]] = field(default_factory=list)
    attendance: list[tuple[str, str, int, int, bool]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.line_entry)

    def heads(self) -> np.ndarray:
        """The head of every event, ``HEAD_LEN`` bytes a row, in generation order."""
        return head_rows(self.ids, self.event_ms)

    def rest_text(self) -> str:
        """What follows the head in every entry, newline-terminated, as one string."""
        n = len(self.bodies)
        parts: list[str] = [""] * (3 * n)
        parts[0::3] = self.sessions
        parts[1::3] = self.bodies
        parts[2::3] = ["\n"] * n
        return "".join(parts)

    @property
    def lines(self) -> list[str]:
        """Every line as a string, in arrival order (for live mode: small shards)."""
        heads = self.heads().view(f"S{HEAD_LEN}").ravel().tolist()
        out = []
        for entry, has_head in zip(self.line_entry.tolist(), self.has_head.tolist(), strict=True):
            head = heads[entry].decode() if has_head else ""
            out.append(head + self.sessions[entry] + self.bodies[entry])
        return out


def deliver(
    raw: RawEvents, rng: np.random.Generator, duplicate_rate: float, invalid_rate: float
) -> DeliveredShard:
    """Ids, timestamps and delivery noise for a shard, in arrival order."""
    records = raw.records
    n = len(records) + sum(len(b.bodies) for b in raw.blocks)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return DeliveredShard(
            ids=np.zeros((0, 16), dtype=np.uint8),
            event_ms=empty,
            sessions=[],
            bodies=[],
            line_entry=empty,
            has_head=np.zeros(0, dtype=bool),
            arrival_ms=empty,
            occurred_ms=empty,
            counts={t: 0 for t in EVENT_TYPES},
            n_valid=0,
            attendance=raw.attendance,
        )
    counts: Counter[str] = Counter()
    ts_parts: list[np.ndarray] = []
    delay_parts: list[np.ndarray] = []
    sessions: list[str] = []
    bodies: list[str] = []
    if records:
        ts_col, delay_col, type_col, session_col, body_col = zip(*records, strict=True)
        ts_parts.append(np.asarray(ts_col, dtype=np.int64))
        delay_parts.append(np.asarray(delay_col, dtype=np.int64))
        counts.update(type_col)
        sessions.extend(session_col)
        bodies.extend(body_col)
    for block in raw.blocks:
        ts_parts.append(block.ts)
        delay_parts.append(block.delay)
        counts[block.etype] += len(block.bodies)
        sessions.extend(block.sessions)
        bodies.extend(block.bodies)
    ts = np.concatenate(ts_parts)
    delay = np.concatenate(delay_parts)
    ids = uuid_bytes(rng, n)
    latency = rng.lognormal(np.log(300.0), 0.8, size=n).astype(np.int64)
    arrival = ts + delay + latency

    late = np.flatnonzero(delay > 0)
    late_ids = uuid_strings(ids[late])

    dup = np.flatnonzero(rng.random(n) < duplicate_rate)
    dup_arrival = arrival[dup] + rng.integers(1_000, 900_000, size=len(dup))
    duplicate_ids = uuid_strings(ids[dup])

    bad = np.flatnonzero(rng.random(n) < invalid_rate)
    kinds = rng.integers(len(INVALID_KINDS), size=len(bad))
    new_ids = uuid4_strings(rng, len(bad))
    invalid: list[tuple[str | None, str, str]] = []
    bad_heads = head_rows(ids[bad], ts[bad]).view(f"S{HEAD_LEN}").ravel().tolist()
    for k, kind, new_id, head in zip(bad.tolist(), kinds.tolist(), new_ids, bad_heads, strict=True):
        whole = head.decode() + sessions[k] + bodies[k]
        line, reason, event_id = corrupt(whole, INVALID_KINDS[kind], new_id)
        invalid.append((event_id, reason, line))
    bad_arrival = arrival[bad] + rng.integers(10, 5_000, size=len(bad))

    # Lines: the events, their duplicates, then the invalid copies (ties in arrival time keep
    # this order). Only the index is sorted; the text stays in generation order.
    entry = np.concatenate([np.arange(n), dup, n + np.arange(len(bad))])
    all_arrival = np.concatenate([arrival, dup_arrival, bad_arrival])
    all_occurred = np.concatenate([ts, ts[dup], ts[bad]])
    order = np.argsort(all_arrival, kind="stable")
    line_entry = entry[order]
    sessions.extend(row[2] for row in invalid)
    bodies.extend([""] * len(invalid))
    return DeliveredShard(
        ids=ids,
        event_ms=ts,
        sessions=sessions,
        bodies=bodies,
        line_entry=line_entry,
        has_head=line_entry < n,
        arrival_ms=all_arrival[order],
        occurred_ms=all_occurred[order],
        counts={t: counts.get(t, 0) for t in EVENT_TYPES},
        n_valid=n,
        late_ids=late_ids,
        late_delay_ms=delay[late].tolist(),
        duplicate_ids=duplicate_ids,
        invalid=invalid,
        attendance=raw.attendance,
    )
