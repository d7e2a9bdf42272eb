"""Live engagement: events per minute per course and event type, distinct students, and video
seconds watched (a play's ``watched_s``, counted in the minute the play segment ended).

Two windows in cascade: the first keeps one row per event id within its minute, so an event the
collector accepted twice (a client retry) is counted once. Document id ``<course>|<type>|<minute>``.
"""

from __future__ import annotations

from streaming.config import StreamConfig
from streaming.sql import SOURCE, iso, quote


def views(cfg: StreamConfig) -> list[tuple[str, str]]:
    per_event = f"""
    SELECT window_time, course_id, event_type, event_id,
        MAX(student_id) AS student_id,
        MAX(COALESCE(payload.watched_s, 0.0)) AS watched_s
    FROM TABLE(TUMBLE(TABLE {SOURCE}, DESCRIPTOR(occurred_at), INTERVAL '1' MINUTE))
    WHERE course_id IS NOT NULL
    GROUP BY window_start, window_end, window_time, course_id, event_type, event_id
    """
    return [("engagement_events", per_event)]


def queries(cfg: StreamConfig) -> list[str]:
    return [
        f"""
    SELECT {quote(cfg.index("engagement"))} AS idx,
        CONCAT(course_id, '|', event_type, '|', {iso("window_start")}) AS doc_id,
        CAST(NULL AS BIGINT) AS version,
        JSON_OBJECT(
            'course_id' VALUE course_id,
            'event_type' VALUE event_type,
            'window_start' VALUE {iso("window_start")},
            'window_end' VALUE {iso("window_end")},
            'events' VALUE events,
            'students' VALUE students,
            'video_watch_s' VALUE video_watch_s
        ) AS doc
    FROM (
        SELECT window_start, window_end, course_id, event_type,
            COUNT(*) AS events,
            COUNT(DISTINCT student_id) AS students,
            SUM(watched_s) AS video_watch_s
        FROM TABLE(TUMBLE(TABLE engagement_events, DESCRIPTOR(window_time), INTERVAL '1' MINUTE))
        GROUP BY window_start, window_end, course_id, event_type
    )
    """
    ]
