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

import operator
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
    """A shard's delivered lines in arrival order (ties keep generation order), plus what was
    planted. Line ``k`` is ``heads[k] + sessions[k] + bodies[k]``; an invalid line has no head
    (``has_head[k]`` is false) and sits whole in ``sessions[k]``."""

    heads: np.ndarray  # (lines, HEAD_LEN) uint8
    has_head: np.ndarray  # bool per line
    sessions: list[str]
    bodies: list[str]
    arrival_ms: np.ndarray  # sorted
    occurred_ms: np.ndarray  # aligned with the lines
    counts: dict[str, int]
    n_valid: int
    late_ids: list[str] = field(default_factory=list)
    late_delay_ms: list[int] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)
    invalid: list[tuple[str | None, str, str]] = field(default_factory=list)
    attendance: list[tuple[str, str, int, int, bool]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.bodies)

    def _head_strings(self) -> list[str]:
        n = len(self.bodies)
        text = self.heads.tobytes().decode("ascii")
        ends = range(HEAD_LEN, (n + 1) * HEAD_LEN, HEAD_LEN)
        heads = list(map(text.__getitem__, map(slice, range(0, n * HEAD_LEN, HEAD_LEN), ends)))
        for k in np.flatnonzero(~self.has_head).tolist():
            heads[k] = ""
        return heads

    def rest_text(self) -> str:
        """What follows the head of every line, newline-terminated, as one string."""
        n = len(self.bodies)
        parts: list[str] = [""] * (3 * n)
        parts[0::3] = self.sessions
        parts[1::3] = self.bodies
        parts[2::3] = ["\n"] * n
        return "".join(parts)

    @property
    def lines(self) -> list[str]:
        return [
            h + s + b
            for h, s, b in zip(self._head_strings(), self.sessions, self.bodies, strict=True)
        ]


def deliver(
    raw: RawEvents, rng: np.random.Generator, duplicate_rate: float, invalid_rate: float
) -> DeliveredShard:
    """Ids, timestamps and delivery noise for a shard, in arrival order."""
    records = raw.records
    n = len(records) + sum(len(b.bodies) for b in raw.blocks)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return DeliveredShard(
            heads=np.zeros((0, HEAD_LEN), dtype=np.uint8),
            has_head=np.zeros(0, dtype=bool),
            sessions=[],
            bodies=[],
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
    for k, kind, new_id in zip(bad.tolist(), kinds.tolist(), new_ids, strict=True):
        head = head_rows(ids[k : k + 1], ts[k : k + 1]).tobytes().decode()
        whole = head + sessions[k] + bodies[k]
        line, reason, event_id = corrupt(whole, INVALID_KINDS[kind], new_id)
        invalid.append((event_id, reason, line))
    bad_arrival = arrival[bad] + rng.integers(10, 5_000, size=len(bad))

    # Line sources: the events, their duplicates, then the invalid copies (ties in arrival time
    # keep this order).
    src = np.concatenate([np.arange(n), dup, np.full(len(bad), -1)])
    all_arrival = np.concatenate([arrival, dup_arrival, bad_arrival])
    all_occurred = np.concatenate([ts, ts[dup], ts[bad]])
    order = np.argsort(all_arrival, kind="stable")
    src_sorted = src[order]
    has_head = src_sorted >= 0
    ext_sessions = sessions
    ext_bodies = bodies
    ext_sessions.extend(ext_sessions[k] for k in dup.tolist())
    ext_bodies.extend(ext_bodies[k] for k in dup.tolist())
    ext_sessions.extend(row[2] for row in invalid)
    ext_bodies.extend([""] * len(invalid))
    pick = operator.itemgetter(*order.tolist())
    m = len(order)
    out_sessions = list(pick(ext_sessions)) if m > 1 else [ext_sessions[int(order[0])]]
    out_bodies = list(pick(ext_bodies)) if m > 1 else [ext_bodies[int(order[0])]]
    return DeliveredShard(
        heads=head_rows(ids[np.where(has_head, src_sorted, 0)], all_occurred[order]),
        has_head=has_head,
        sessions=out_sessions,
        bodies=out_bodies,
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
