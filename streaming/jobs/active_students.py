"""Active students: distinct students per course (and platform-wide) over a sliding window, plus
each student's last-seen presence per course (the low-latency view).

Window documents: id ``<course>|<window end>`` (``_all`` for platform-wide); a window is published
once the watermark passes its end, so they are the history. Presence documents: id
``<course>|<student>``, one row per event, versioned by event time so an older event never hides a
newer one; the sink writes a student's first event at once and later ones at most once per
``presence_resolution_s`` (see ``udfs.EsSink``). "Active now" is a query over ``last_seen_at``.
"""

from __future__ import annotations

from streaming.config import StreamConfig
from streaming.sql import SOURCE, epoch_ms, iso, quote, seconds

PLATFORM = "_all"


def queries(cfg: StreamConfig) -> list[str]:
    windows = f"""
    SELECT {quote(cfg.index("active-students"))} AS idx,
        CONCAT(course_key, '|', {iso("window_end")}) AS doc_id,
        CAST(NULL AS BIGINT) AS version,
        JSON_OBJECT(
            'course_id' VALUE course_key,
            'window_start' VALUE {iso("window_start")},
            'window_end' VALUE {iso("window_end")},
            'window_s' VALUE {cfg.active_window_s},
            'active_students' VALUE n
        ) AS doc
    FROM (
        SELECT window_start, window_end,
            CASE WHEN GROUPING(course_id) = 1 THEN '{PLATFORM}' ELSE course_id END AS course_key,
            COUNT(DISTINCT student_id) AS n
        FROM TABLE(HOP(TABLE {SOURCE}, DESCRIPTOR(occurred_at),
            {seconds(cfg.active_slide_s)}, {seconds(cfg.active_window_s)}))
        GROUP BY window_start, window_end, GROUPING SETS ((course_id), ())
    )
    WHERE course_key IS NOT NULL
    """
    presence = f"""
    SELECT {quote(cfg.index("presence"))} AS idx,
        CONCAT(course_id, '|', student_id) AS doc_id,
        {epoch_ms("occurred_at")} AS version,
        JSON_OBJECT(
            'course_id' VALUE course_id,
            'student_id' VALUE student_id,
            'last_seen_at' VALUE {iso("occurred_at")},
            'received_at' VALUE received_at,
            'event_id' VALUE event_id,
            'event_type' VALUE event_type
        ) AS doc
    FROM {SOURCE}
    WHERE course_id IS NOT NULL
    """
    return [windows, presence]
