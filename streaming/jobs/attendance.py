"""Live class attendance: per live class and student, the join/leave intervals, minutes present,
share of the scheduled class and whether the student is in the class now.

One aggregate per (class, student) over every join/leave event (no window: a class may run for
hours and a leave may arrive late); see :mod:`streaming.attendance` for how missing joins and
leaves are read. Document id ``<class>|<student>``, versioned by the number of distinct events.
"""

from __future__ import annotations

from streaming.config import StreamConfig
from streaming.sql import SOURCE, epoch_ms, quote


def queries(cfg: StreamConfig) -> list[str]:
    return [
        f"""
    SELECT {quote(cfg.index("attendance"))} AS idx,
        CONCAT(live_class_id, '|', student_id) AS doc_id,
        a.v AS version,
        a.doc AS doc
    FROM (
        SELECT payload.live_class_id AS live_class_id, student_id,
            attendance_doc(payload.live_class_id, student_id, course_id,
                {epoch_ms("occurred_at")},
                event_type, event_id) AS a
        FROM {SOURCE}
        WHERE event_type IN ('live_class_join', 'live_class_leave')
            AND payload.live_class_id IS NOT NULL
        GROUP BY payload.live_class_id, student_id
    )
    """
    ]
