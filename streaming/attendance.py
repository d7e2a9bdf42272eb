"""Live-class attendance of one student in one class, from their join/leave events.

Pure logic (unit-tested without Flink), used by the attendance job's aggregate function.

How gaps in the event stream are read:
- a join while already in the class (a duplicate, or a second device) changes nothing;
- a leave without a join before it: the join was lost, so presence is counted from the class
  start (``inferred_join``);
- no leave after the last join (a closed laptop lid sends nothing): the student counts as present
  until the scheduled end (``missing_leave``; ``in_class`` stays true until then, the API compares
  it with the clock).
Minutes count only inside the scheduled class time when the schedule is known.
"""

from __future__ import annotations

from typing import Any

from streaming.reference import iso_ms

JOIN = "live_class_join"
LEAVE = "live_class_leave"


def attendance(
    events: list[tuple[int, str, str]], schedule: tuple[int, int] | None
) -> dict[str, Any]:
    """``events`` are (occurred epoch ms, event_type, event_id), in any order, maybe repeated."""
    unique = sorted({event_id: (ts, kind, event_id) for ts, kind, event_id in events}.values())
    start, end = schedule if schedule else (None, None)
    intervals: list[tuple[int, int]] = []
    joined_at: int | None = None
    inferred_join = False
    joins = 0
    for ts, kind, _ in unique:
        if kind == JOIN:
            if joined_at is None:
                joined_at = ts
                joins += 1
        elif kind == LEAVE:
            if joined_at is not None:
                intervals.append((joined_at, ts))
                joined_at = None
            elif start is not None and ts > start and not intervals:
                intervals.append((start, ts))
                inferred_join = True
    missing_leave = joined_at is not None
    if joined_at is not None:
        intervals.append((joined_at, max(joined_at, end) if end is not None else joined_at))

    def clip(a: int, b: int) -> float:
        if start is not None and end is not None:
            a, b = max(a, start), min(b, end)
        return max(0, b - a) / 60_000.0

    minutes = sum(clip(a, b) for a, b in intervals)
    duration = (end - start) / 60_000.0 if start is not None and end is not None else None
    leaves = [ts for ts, kind, _ in unique if kind == LEAVE]
    return {
        "first_join_at": iso_ms(intervals[0][0]) if intervals else None,
        "last_leave_at": iso_ms(max(leaves)) if leaves else None,
        "in_class": missing_leave,
        "minutes": round(minutes, 3),
        "attendance_share": round(min(1.0, minutes / duration), 4) if duration else None,
        "joins": joins,
        "missing_leave": missing_leave,
        "inferred_join": inferred_join,
        "events": len(unique),
        "intervals": [[iso_ms(a), iso_ms(b)] for a, b in intervals],
        "class_starts_at": iso_ms(start) if start is not None else None,
        "class_ends_at": iso_ms(end) if end is not None else None,
    }
