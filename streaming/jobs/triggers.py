"""Recommendation triggers:

- ``review_chapter`` (for the student): a quiz submitted below its pass mark → review the quiz's
  chapter (and its topics) before retrying. Id ``review_chapter|<attempt>``.
- ``re_engage`` (for the teacher): no event from a student in a course for N days while the
  course is still running. A session window per (student, course) with an N-day gap closes when
  event time passes the last activity plus N days. Id ``re_engage|<student>|<course>|<last activity>``.
"""

from __future__ import annotations

from streaming.config import StreamConfig
from streaming.sql import SOURCE, iso, quote, seconds


def views(cfg: StreamConfig) -> list[tuple[str, str]]:
    course_events = f"""
    SELECT occurred_at, student_id, course_id, CONCAT(student_id, '|', course_id) AS enrolment
    FROM {SOURCE} WHERE course_id IS NOT NULL
    """
    return [("course_events", course_events)]


def queries(cfg: StreamConfig) -> list[str]:
    t = cfg.thresholds
    review = f"""
    SELECT {quote(cfg.index("triggers"))} AS idx,
        CONCAT('review_chapter|', attempt_id) AS doc_id,
        CAST(NULL AS BIGINT) AS version,
        JSON_OBJECT(
            'trigger_type' VALUE 'review_chapter',
            'audience' VALUE 'student',
            'status' VALUE 'open',
            'student_id' VALUE student_id,
            'course_id' VALUE course_id,
            'chapter_id' VALUE chapter_id,
            'quiz_id' VALUE quiz_id,
            'detected_at' VALUE {iso("occurred_at")},
            'message' VALUE CONCAT('Review chapter ', chapter_id, ' before retrying quiz ', quiz_id),
            'evidence' VALUE JSON_OBJECT('event_id' VALUE event_id, 'attempt_id' VALUE attempt_id,
                'score' VALUE score, 'max_score' VALUE max_score, 'pass_pct' VALUE pass_pct)
        ) AS doc
    FROM (
        SELECT occurred_at, event_id, student_id, course_id,
            payload.attempt_id AS attempt_id, payload.quiz_id AS quiz_id,
            payload.chapter_id AS chapter_id, payload.score AS score,
            payload.max_score AS max_score, quiz_pass_pct(payload.quiz_id) AS pass_pct
        FROM {SOURCE}
        WHERE event_type = 'quiz_submit' AND payload.max_score > 0
            AND payload.attempt_id IS NOT NULL
    )
    WHERE 100 * score / max_score < pass_pct
    """
    idle = f"""
    SELECT {quote(cfg.index("triggers"))} AS idx,
        CONCAT('re_engage|', student_id, '|', course_id, '|', {iso("last_activity")}) AS doc_id,
        CAST(NULL AS BIGINT) AS version,
        JSON_OBJECT(
            'trigger_type' VALUE 're_engage',
            'audience' VALUE 'teacher',
            'status' VALUE 'open',
            'student_id' VALUE student_id,
            'course_id' VALUE course_id,
            'detected_at' VALUE {iso("window_end")},
            'last_activity_at' VALUE {iso("last_activity")},
            'message' VALUE CONCAT('No activity in ', course_id, ' for {t.idle_days:g} days'),
            'evidence' VALUE JSON_OBJECT('idle_days' VALUE {t.idle_days},
                'events_before' VALUE n_events, 'first_activity_at' VALUE {iso("window_start")})
        ) AS doc
    FROM (
        SELECT window_start, window_end, enrolment,
            MAX(student_id) AS student_id, MAX(course_id) AS course_id,
            MAX(occurred_at) AS last_activity, COUNT(*) AS n_events
        FROM TABLE(SESSION(TABLE course_events PARTITION BY enrolment, DESCRIPTOR(occurred_at),
            {seconds(t.idle_days * 86_400)}))
        GROUP BY window_start, window_end, enrolment
    )
    WHERE course_running(course_id, window_end)
    """
    return [review, idle]
