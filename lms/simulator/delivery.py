"""Delivery noise and arrival order: what a collector would actually receive from a shard.

- every event arrives a little after it occurred (network latency);
- late: whole sessions from buffering mobile clients arrive hours later (decided per session in
  ``behaviour``), so they land out of order among other students' events;
- duplicates: a retried delivery repeats an event byte for byte (same event_id) minutes later;
- invalid: producer bugs at ``invalid_rate``: an extra, broken copy of a real event that must fail
  the contract (missing field, wrong type, unknown type, negative number, bad timestamp...).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from lms.simulator.behaviour import TYPE_PREFIX, RawEvents
from lms.simulator.encoding import event_heads, id_of, uuid4_strings

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
    """A shard's events in arrival order, plus what was planted."""

    lines: list[str]
    arrival_ms: np.ndarray  # aligned with lines (not sorted)
    occurred_ms: np.ndarray  # aligned with lines
    counts: dict[str, int]
    n_valid: int
    late_ids: list[str] = field(default_factory=list)
    late_delay_ms: list[int] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)
    invalid: list[tuple[str | None, str, str]] = field(default_factory=list)
    attendance: list[tuple[str, str, int, int, bool]] = field(default_factory=list)

    def in_arrival_order(self) -> DeliveredShard:
        order = np.argsort(self.arrival_ms, kind="stable")
        self.lines = [self.lines[k] for k in order.tolist()]
        self.arrival_ms = self.arrival_ms[order]
        self.occurred_ms = self.occurred_ms[order]
        return self


def deliver(
    raw: RawEvents, rng: np.random.Generator, duplicate_rate: float, invalid_rate: float
) -> DeliveredShard:
    """Ids, timestamps and delivery noise for a shard. Lines stay in generation order (with
    duplicates and invalid copies appended); ``arrival_ms`` says where each belongs, and the
    caller sorts once, globally (see ``school.merge``) or per shard (``DeliveredShard.in_arrival_order``)."""
    records = raw.records
    n = len(records)
    ts = np.fromiter(map(itemgetter(0), records), dtype=np.int64, count=n)
    delay = np.fromiter(map(itemgetter(1), records), dtype=np.int64, count=n)
    counts = Counter(map(itemgetter(2), records))
    heads = event_heads(rng, ts)
    # One f-string per line: a single allocation, the cheapest way to assemble it in Python.
    lines = [
        f"{h}{TYPE_PREFIX[e]}{c}{s}{p}}}"
        for h, (_, _, e, c, s, p) in zip(heads, records, strict=True)
    ]
    latency = rng.lognormal(np.log(300.0), 0.8, size=n).astype(np.int64)
    arrival = ts + delay + latency

    late = np.flatnonzero(delay > 0)
    out = DeliveredShard(
        lines=lines,
        arrival_ms=arrival,
        occurred_ms=ts,
        counts={t: counts.get(t, 0) for t in TYPE_PREFIX},
        n_valid=n,
        late_ids=[id_of(heads[k]) for k in late.tolist()],
        late_delay_ms=delay[late].tolist(),
        attendance=raw.attendance,
    )

    dup = np.flatnonzero(rng.random(n) < duplicate_rate)
    dup_arrival = arrival[dup] + rng.integers(1_000, 900_000, size=len(dup))
    out.duplicate_ids = [id_of(heads[k]) for k in dup.tolist()]
    extra_lines = [lines[k] for k in dup.tolist()]

    bad = np.flatnonzero(rng.random(n) < invalid_rate)
    kinds = rng.integers(len(INVALID_KINDS), size=len(bad))
    new_ids = uuid4_strings(rng, len(bad))
    for k, kind, new_id in zip(bad.tolist(), kinds.tolist(), new_ids, strict=True):
        line, reason, event_id = corrupt(lines[k], INVALID_KINDS[kind], new_id)
        out.invalid.append((event_id, reason, line))
        extra_lines.append(line)
    bad_arrival = arrival[bad] + rng.integers(10, 5_000, size=len(bad))

    lines.extend(extra_lines)
    out.arrival_ms = np.concatenate([arrival, dup_arrival, bad_arrival])
    out.occurred_ms = np.concatenate([ts, ts[dup], ts[bad]])
    return out
