"""Cheating signals, each alert carrying the thresholds it was judged with and the events that
fired it:

- ``fast_answers``: in one quiz attempt, at least N answers faster than a share of the question's
  reading time, most of them correct (someone who cannot have read the question, yet is right);
- ``tab_switching``: at least N ``tab_hidden`` events during one quiz attempt;
- ``concurrent_sessions``: while a quiz attempt runs, another session of the same student from a
  different network.

Attempt signals are a running aggregate per attempt id (no window to wait for: an alert appears
as soon as its thresholds are met, and is updated while the attempt goes on; its version is the
number of events seen). Document ids: ``<type>|<attempt>`` (concurrent:
``<type>|<student>|<attempt>``).
"""

from __future__ import annotations

import json

from streaming.config import StreamConfig
from streaming.sql import SOURCE, iso, quote, seconds


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
    client_events = f"""
    SELECT occurred_at, student_id, course_id, session_id,
        client.network_id AS network_id, client.device AS device,
        payload.quiz_id AS quiz_id, payload.attempt_id AS attempt_id
    FROM {SOURCE} WHERE client.network_id IS NOT NULL
    """
    return [
        ("quiz_activity", activity),
        ("attempt_signals", signals),
        ("client_events", client_events),
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
    window_s = t.concurrent_window_min * 60
    concurrent_rows = f"""
        SELECT window_start, window_end, student_id,
            MAX(CASE WHEN attempt_id IS NOT NULL THEN course_id END) AS course_id,
            MAX(quiz_id) AS quiz_id, MAX(attempt_id) AS attempt_id,
            COUNT(DISTINCT network_id) AS n_networks,
            COUNT(DISTINCT session_id) AS n_sessions,
            -- With two networks, the smallest and largest (network, session) pairs are two
            -- different sessions: the evidence, without keeping every event in the window.
            MIN(CONCAT(network_id, '|', session_id, '|', device)) AS first_session,
            MAX(CONCAT(network_id, '|', session_id, '|', device)) AS second_session
        FROM TABLE(HOP(TABLE client_events,
            DESCRIPTOR(occurred_at), {seconds(window_s // 2)}, {seconds(window_s)}))
        GROUP BY window_start, window_end, student_id
    """
    concurrent = _alert(
        cfg,
        "concurrent_sessions",
        "CONCAT('concurrent_sessions|', student_id, '|', attempt_id)",
        "CAST(NULL AS BIGINT)",
        {"concurrent_window_min": t.concurrent_window_min, "networks_min": 2},
        "JSON_OBJECT('networks' VALUE n_networks, 'sessions' VALUE n_sessions)",
        "JSON_ARRAY(first_session, second_session)",
    ) + (
        f"\n    FROM ({concurrent_rows})"
        "\n    WHERE n_networks >= 2 AND n_sessions >= 2 AND attempt_id IS NOT NULL"
    )
    return [fast, tabs, concurrent]
