"""`lms report`: the admin, teacher and live-class dashboard views, read from the marts and
rendered into one self-contained HTML page (inline SVG, inline CSS, one inline script that
only counts what was drawn), for a quick look without a BI tool."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import psycopg

from lms.errors import LmsError
from lms.settings import Settings, get_settings
from lms.warehouse.charts import bar_chart, heatmap, line_chart, table

CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { margin-bottom: 0; } h2 { border-bottom: 2px solid #3366cc; padding-bottom: 4px; margin-top: 40px; }
h3 { margin-top: 24px; } .meta { color: #666; }
svg.chart { display: block; margin: 8px 0 16px; font-size: 11px; } svg .title { font-weight: 600; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; } th { background: #f3f5fa; }
.empty { color: #999; font-style: italic; } .band-high { color: #dc3912; font-weight: 600; }
"""

# After load, count what the browser actually drew; a headless test reads these attributes.
SCRIPT = """
document.addEventListener('DOMContentLoaded', function () {
  var drawn = document.querySelectorAll('svg.chart rect.bar, svg.chart rect.cell, svg.chart polyline.line').length;
  document.body.setAttribute('data-rendered-marks', String(drawn));
  document.body.setAttribute('data-rendered-sections', String(document.querySelectorAll('section[data-rows]').length));
});
"""


def _rows(conn: psycopg.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql).fetchall()


def _section(key: str, title: str, n_rows: int, body: str) -> str:
    return f'<section id="{key}" data-rows="{n_rows}"><h3>{escape(title)}</h3>{body}</section>'


def _f(value: Any) -> float:
    return float(value) if value is not None else 0.0


def render(settings: Settings | None = None) -> str:
    """The report as one HTML string, from the marts of `settings` (schema prefix included)."""
    settings = settings or get_settings()
    marts = f"{settings.dbt_schema_prefix}marts"
    try:
        conn = psycopg.connect(settings.warehouse_dsn)
    except psycopg.OperationalError as exc:
        raise LmsError(f"cannot reach the warehouse ({exc}); is PostgreSQL up?") from exc
    with conn:
        exists = conn.execute(
            "select count(*) from information_schema.tables where table_schema = %s",
            (marts,),
        ).fetchone()
        if not exists or not exists[0]:
            raise LmsError(f"no marts in schema {marts}: run `lms warehouse build` first")
        parts = [_admin(conn, marts), _teacher(conn, marts), _live(conn, marts)]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>LMS warehouse report</title>"
        f"<style>{CSS}</style><script>{SCRIPT}</script></head><body>"
        "<h1>LMS warehouse report</h1>"
        f"<p class='meta'>Generated {generated} from schema {escape(marts)} of "
        f"{escape(settings.pg_warehouse_db)}. Times are UTC.</p>"
        + "".join(parts)
        + "</body></html>"
    )


def _admin(conn: psycopg.Connection[Any], marts: str) -> str:
    trends = _rows(
        conn,
        f"select course_id, week_start, avg_quiz_score_pct, n_active_students "
        f"from {marts}.rpt_performance_trends order by week_start",
    )
    score_series: dict[str, list[tuple[str, float]]] = defaultdict(list)
    active_series: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for course, week, score, active in trends:
        if score is not None:
            score_series[course].append((str(week), _f(score)))
        active_series[course].append((str(week), _f(active)))
    courses = _rows(
        conn,
        f"select course_code, n_enrolled, n_completed, n_withdrawn, completion_rate, "
        f"withdrawal_rate, avg_final_score, avg_quiz_score_pct, avg_score_gain_pct "
        f"from {marts}.rpt_course_effectiveness order by course_code",
    )
    dropoff = _rows(
        conn,
        f"select c.course_code, d.chapter_position, d.reached_share "
        f"from {marts}.rpt_chapter_dropoff d join {marts}.dim_course c using (course_id) "
        f"order by c.course_code, d.chapter_position",
    )
    teachers = _rows(
        conn,
        f"select teacher_id, n_courses, n_students, completion_rate, avg_quiz_score_pct, "
        f"avg_course_rating, live_presence_rate from {marts}.rpt_teacher_performance "
        f"order by teacher_id",
    )
    paths = _rows(
        conn,
        f"select course_id, from_position, to_position, n_students, n_transitions "
        f"from {marts}.rpt_learning_paths order by n_transitions desc limit 12",
    )
    cells = _rows(
        conn,
        f"select iso_day_of_week, hour_of_day, sum(n_events) from {marts}.rpt_engagement_heatmap "
        f"group by 1, 2",
    )
    return "<h2>Admin</h2>" + "".join(
        [
            _section(
                "performance-trends",
                "Student performance trends (weekly)",
                len(trends),
                line_chart(dict(score_series), title="Average quiz score (%) by week")
                + line_chart(dict(active_series), title="Active students by week"),
            ),
            _section(
                "course-effectiveness",
                "Course effectiveness",
                len(courses),
                table(
                    [
                        "course",
                        "enrolled",
                        "completed",
                        "withdrawn",
                        "completion",
                        "withdrawal",
                        "avg final",
                        "avg quiz %",
                        "score gain %",
                    ],
                    [list(r) for r in courses],
                )
                + bar_chart(
                    [(r[0], _f(r[5]) * 100) for r in courses], title="Withdrawal rate", unit=" %"
                ),
            ),
            _section(
                "chapter-dropoff",
                "Drop-off by chapter (share of enrolled students who reached it)",
                len(dropoff),
                bar_chart(
                    [(f"{c} ch.{p}", _f(s) * 100) for c, p, s in dropoff],
                    title="Reached chapter",
                    unit=" %",
                ),
            ),
            _section(
                "teacher-performance",
                "Teacher performance",
                len(teachers),
                table(
                    [
                        "teacher",
                        "courses",
                        "students",
                        "completion",
                        "avg quiz %",
                        "rating",
                        "live presence",
                    ],
                    [list(r) for r in teachers],
                ),
            ),
            _section(
                "learning-paths",
                "Learning paths: most frequent chapter moves",
                len(paths),
                table(
                    ["course", "from ch.", "to ch.", "students", "moves"], [list(r) for r in paths]
                ),
            ),
            _section(
                "engagement-heatmap",
                "Engagement heatmap (events by hour of week, UTC)",
                len(cells),
                heatmap({(int(d), int(h)): _f(n) for d, h, n in cells}, title="Events"),
            ),
        ]
    )


def _teacher(conn: psycopg.Connection[Any], marts: str) -> str:
    at_risk = _rows(
        conn,
        f"select student_id, course_id, risk_band, risk_source, days_inactive, "
        f"avg_quiz_score_pct, is_inactive, is_low_scoring, is_declining, is_behind "
        f"from {marts}.rpt_students_at_risk where risk_band in ('high', 'medium') "
        f"order by case risk_band when 'high' then 0 else 1 end, rule_points desc, days_inactive desc "
        f"limit 25",
    )
    counts = _rows(
        conn,
        f"select risk_band, count(*) from {marts}.rpt_students_at_risk group by 1 order by 1",
    )
    weak = _rows(
        conn,
        f"select w.topic_name, avg(w.share_correct), sum(case when w.is_weak then 1 else 0 end) "
        f"from {marts}.rpt_topic_weak_scores w group by w.topic_name "
        f"order by 2 limit 15",
    )
    modules = _rows(
        conn,
        f"select c.course_code, t.chapter_position, avg(t.time_on_task_min) "
        f"from {marts}.rpt_time_per_module t join {marts}.dim_course c using (course_id) "
        f"group by 1, 2 order by 1, 2",
    )
    risk_rows = []
    for sid, cid, band, source, days, quiz, inactive, low, declining, behind in at_risk:
        reasons = [
            name
            for name, flag in (
                ("inactive", inactive),
                ("low scores", low),
                ("declining", declining),
                ("behind", behind),
            )
            if flag
        ]
        risk_rows.append([sid, cid, band, source, days, quiz, ", ".join(reasons)])
    return "<h2>Teacher</h2>" + "".join(
        [
            _section(
                "students-at-risk",
                "Students at risk",
                len(at_risk),
                bar_chart([(b, _f(n)) for b, n in counts], title="Active enrollments by risk band")
                + table(
                    [
                        "student",
                        "course",
                        "risk",
                        "source",
                        "days inactive",
                        "avg quiz %",
                        "reasons",
                    ],
                    risk_rows,
                ),
            ),
            _section(
                "topic-weak-scores",
                "Topic-wise scores (weakest first)",
                len(weak),
                bar_chart(
                    [(str(t), _f(s) * 100) for t, s, _ in weak], title="Share correct", unit=" %"
                )
                + table(["topic", "share correct", "students weak"], [list(r) for r in weak]),
            ),
            _section(
                "time-per-module",
                "Time spent per module (average minutes per student)",
                len(modules),
                bar_chart(
                    [(f"{c} ch.{p}", _f(m)) for c, p, m in modules], title="Minutes", unit=" min"
                ),
            ),
        ]
    )


def _live(conn: psycopg.Connection[Any], marts: str) -> str:
    sessions = _rows(
        conn,
        f"select live_class_id, starts_at, n_invited, n_joined, n_present, presence_rate "
        f"from {marts}.rpt_live_class_attendance order by starts_at",
    )
    students = _rows(
        conn,
        f"select student_id, course_id, n_live_classes, n_present, presence_rate "
        f"from {marts}.rpt_live_attendance_by_student order by presence_rate, student_id limit 15",
    )
    return "<h2>Live classes</h2>" + "".join(
        [
            _section(
                "live-attendance-sessions",
                "Attendance per session",
                len(sessions),
                bar_chart(
                    [(str(c), _f(r) * 100) for c, _, _, _, _, r in sessions if r is not None],
                    title="Present",
                    unit=" %",
                ),
            ),
            _section(
                "live-attendance-students",
                "Attendance per student (lowest first)",
                len(students),
                table(
                    ["student", "course", "classes", "present", "rate"], [list(r) for r in students]
                ),
            ),
        ]
    )


def write_report(path: Path, settings: Settings | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(settings), encoding="utf-8")
    return path
