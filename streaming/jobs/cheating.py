"""Cheating signals, each alert carrying the thresholds it was judged with and the events that
fired it:

- ``fast_answers``: in one quiz attempt, at least N answers faster than a share of the question's
  reading time, most of them correct (someone who cannot have read the question, yet is right);
- ``tab_switching``: at least N ``tab_hidden`` events during one quiz attempt;
- ``concurrent_sessions``: while a quiz attempt runs, another session of the same student, from a
  different network, has a quiz page of the same course open (a second device on the quiz:
  someone helping). Another session doing something else at the same time (following a live
  class on the phone while the quiz runs on the laptop) is ordinary and does not count, nor do
  two sessions one after the other (a switch of device): only views inside the attempt's span.

Attempt signals are a running aggregate per attempt id (no window to wait for: an alert appears
as soon as its thresholds are met, and is updated while the attempt goes on; its version is the
number of events seen). Document ids: ``<type>|<attempt>`` (concurrent:
``<type>|<student>|<attempt>``).
"""

from __future__ import annotations

import json

from streaming.config import StreamConfig
from streaming.sql import SOURCE, iso, quote


def views(cfg: StreamConfig) -> list[tuple[str, str]]:
    t = cfg.thresholds
    activity = f"""
    SELECT occurred_at, event_id, event_type, student_id, course_id, session_id,
        payload.attempt_id AS attempt_id, payload.quiz_id AS quiz_id,
        payload.question_id AS question_id, payload.is_correct AS is_correct,
        payload.time_taken_s AS time_taken_s, payload.hidden_s AS hidden_s,
        reading_s,
        event_type = 'question_answer' AND reading_s IS NOT NULL
            AND payload.time_taken_s < {t.fast_answer_ratio} * reading_s AS is_fast
    FROM (
        SELECT *, CASE WHEN event_type = 'question_answer'
            THEN reading_time_s(payload.question_id) END AS reading_s
        FROM {SOURCE}
        WHERE payload.attempt_id IS NOT NULL
            AND event_type IN ('question_answer', 'tab_hidden', 'tab_visible')
    )
    """
    signals = f"""
    SELECT MIN(occurred_at) AS window_start, MAX(occurred_at) AS window_end, attempt_id,
        COUNT(*) AS n_events,
        MAX(student_id) AS student_id, MAX(course_id) AS course_id, MAX(quiz_id) AS quiz_id,
        COUNT(DISTINCT CASE WHEN event_type = 'question_answer' THEN event_id END) AS n_answers,
        COUNT(DISTINCT CASE WHEN is_fast THEN event_id END) AS n_fast,
        COUNT(DISTINCT CASE WHEN is_fast AND is_correct THEN event_id END) AS n_fast_correct,
        COUNT(DISTINCT CASE WHEN event_type = 'tab_hidden' THEN event_id END) AS n_hidden,
        CONCAT('[', COALESCE(LISTAGG(CASE WHEN is_fast THEN JSON_OBJECT(
            'event_id' VALUE event_id, 'question_id' VALUE question_id,
            'occurred_at' VALUE {iso("occurred_at")}, 'time_taken_s' VALUE time_taken_s,
            'reading_time_s' VALUE reading_s, 'is_correct' VALUE is_correct) END), ''), ']')
            AS fast_evidence,
        CONCAT('[', COALESCE(LISTAGG(CASE WHEN event_type <> 'question_answer' THEN JSON_OBJECT(
            'event_id' VALUE event_id, 'event_type' VALUE event_type,
            'occurred_at' VALUE {iso("occurred_at")}, 'hidden_s' VALUE hidden_s) END), ''), ']')
            AS tab_evidence
    FROM quiz_activity
    GROUP BY attempt_id
    """
    # The span of each attempt (its first to its last event), in the session that took it.
    spans = f"""
    SELECT attempt_id, MAX(student_id) AS student_id, MAX(course_id) AS course_id,
        MAX(quiz_id) AS quiz_id, MAX(session_id) AS session_id, MAX(network_id) AS network_id,
        MIN(occurred_at) AS started_at, MAX(occurred_at) AS ended_at
    FROM (
        SELECT payload.attempt_id AS attempt_id, student_id, course_id, session_id,
            payload.quiz_id AS quiz_id, client.network_id AS network_id,
            CAST(occurred_at AS TIMESTAMP_LTZ(3)) AS occurred_at
        FROM {SOURCE}
        WHERE payload.attempt_id IS NOT NULL AND client.network_id IS NOT NULL
            AND event_type IN ('quiz_start', 'question_answer', 'quiz_submit')
    )
    GROUP BY attempt_id
    """
    quiz_pages = f"""
    SELECT CAST(occurred_at AS TIMESTAMP_LTZ(3)) AS occurred_at, event_id, student_id,
        course_id, session_id, client.network_id AS network_id, client.device AS device,
        payload.path AS path
    FROM {SOURCE}
    WHERE event_type = 'page_view' AND payload.page_type = 'quiz'
        AND client.network_id IS NOT NULL AND course_id IS NOT NULL
    """
    return [
        ("quiz_activity", activity),
        ("attempt_signals", signals),
        ("attempt_spans", spans),
        ("quiz_pages", quiz_pages),
    ]


def _alert(
    cfg: StreamConfig,
    alert_type: str,
    doc_id: str,
    version: str,
    thresholds: dict[str, float],
    metrics: str,
    evidence: str,
) -> str:
    # LISTAGG builds JSON text (nested by the sink); JSON_* functions nest by themselves.
    evidence_key = "evidence" if evidence.startswith("JSON_") else "evidence_json"
    return f"""
    SELECT {quote(cfg.index("alerts"))} AS idx,
        {doc_id} AS doc_id,
        {version} AS version,
        JSON_OBJECT(
            'alert_type' VALUE '{alert_type}',
            'status' VALUE 'open',
            'student_id' VALUE student_id,
            'course_id' VALUE course_id,
            'quiz_id' VALUE quiz_id,
            'attempt_id' VALUE attempt_id,
            'detected_at' VALUE {iso("window_end")},
            'window_start' VALUE {iso("window_start")},
            'window_end' VALUE {iso("window_end")},
            'thresholds_json' VALUE {quote(json.dumps(thresholds))},
            'metrics' VALUE {metrics},
            '{evidence_key}' VALUE {evidence}
        ) AS doc"""


def queries(cfg: StreamConfig) -> list[str]:
    t = cfg.thresholds
    fast = _alert(
        cfg,
        "fast_answers",
        "CONCAT('fast_answers|', attempt_id)",
        "n_events",
        {
            "fast_answer_ratio": t.fast_answer_ratio,
            "fast_answer_min": t.fast_answer_min,
            "fast_answer_accuracy": t.fast_answer_accuracy,
        },
        "JSON_OBJECT('answers' VALUE n_answers, 'fast_answers' VALUE n_fast, "
        "'fast_correct' VALUE n_fast_correct)",
        "fast_evidence",
    ) + (
        f"\n    FROM attempt_signals WHERE n_fast >= {t.fast_answer_min}"
        f" AND n_fast_correct >= {t.fast_answer_accuracy} * n_fast"
    )
    tabs = (
        _alert(
            cfg,
            "tab_switching",
            "CONCAT('tab_switching|', attempt_id)",
            "n_events",
            {"tab_hidden_min": t.tab_hidden_min},
            "JSON_OBJECT('answers' VALUE n_answers, 'tab_hidden' VALUE n_hidden)",
            "tab_evidence",
        )
        + f"\n    FROM attempt_signals WHERE n_hidden >= {t.tab_hidden_min}"
    )
    # Quiz pages of another session on another network inside an attempt's span. A regular
    # join: the span grows while the attempt runs, and the aggregate over the join's changes
    # keeps one row per attempt (its count of views only grows: the document's version).
    concurrent_rows = f"""
        SELECT s.attempt_id, MAX(s.student_id) AS student_id, MAX(s.course_id) AS course_id,
            MAX(s.quiz_id) AS quiz_id, MIN(s.started_at) AS window_start,
            MAX(s.ended_at) AS window_end,
            MAX(CONCAT(s.network_id, '|', s.session_id)) AS attempt_session,
            COUNT(DISTINCT p.event_id) AS n_views,
            COUNT(DISTINCT p.session_id) AS n_sessions,
            COUNT(DISTINCT p.network_id) AS n_networks,
            CONCAT('[', LISTAGG(JSON_OBJECT(
                'event_id' VALUE p.event_id, 'occurred_at' VALUE {iso("p.occurred_at")},
                'session_id' VALUE p.session_id, 'network_id' VALUE p.network_id,
                'device' VALUE p.device, 'path' VALUE p.path)), ']') AS other_views
        FROM attempt_spans AS s
        JOIN quiz_pages AS p
            ON p.student_id = s.student_id AND p.course_id = s.course_id
            AND p.session_id <> s.session_id AND p.network_id <> s.network_id
            AND p.occurred_at >= s.started_at AND p.occurred_at <= s.ended_at
        GROUP BY s.attempt_id
    """
    concurrent = (
        _alert(
            cfg,
            "concurrent_sessions",
            "CONCAT('concurrent_sessions|', student_id, '|', attempt_id)",
            "n_views",
            {"concurrent_views_min": t.concurrent_views_min, "networks_min": 2},
            "JSON_OBJECT('quiz_page_views' VALUE n_views, 'other_sessions' VALUE n_sessions, "
            "'other_networks' VALUE n_networks, 'attempt_session' VALUE attempt_session)",
            "other_views",
        )
        + f"\n    FROM ({concurrent_rows})\n    WHERE n_views >= {max(1, t.concurrent_views_min)}"
    )
    return [fast, tabs, concurrent]
