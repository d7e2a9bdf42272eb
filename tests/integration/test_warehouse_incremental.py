"""Incremental runs of the activity, as-of feature and report models equal a full rebuild.

A tiny simulated school is landed into a raw schema of its own (`lms.warehouse.sample`) with some
events held back: the newest ones (the next stretch of activity) and a scattering of old ones
(late events, some of which join two of a student's sessions into one). The events fact, the
sessionised events, daily activity, sessions, answers, the as-of feature marts, chapter moves,
the live-class and quiz-attempt events, per-student topic scores and the reports built from
them are built, the held-back events land, and an incremental run
follows. A full rebuild of the same models into other schemas must hold exactly
the same rows (only the run stamps and watermarks may differ).
"""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from lms.settings import Settings, get_settings
from lms.warehouse import dbt_target_path, run_dbt
from lms.warehouse.sample import land_school

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DBT_SCHEMAS = ("staging", "intermediate", "marts", "features", "snapshots", "analytics")
SELECT = [
    "--select",
    "+fct_sessions",
    "+student_course_asof",
    "+student_topic_asof",
    "+rpt_engagement_heatmap",
    "+rpt_time_per_module",
    "+rpt_chapter_dropoff",
    "+chapter_transitions",
    "+fct_live_class_attendance",
    "+fct_quiz_attempts",
    "+rpt_topic_weak_scores",
]
# model -> its run stamps and watermarks (the columns that may differ)
MODELS: dict[str, tuple[str, ...]] = {
    "marts.fct_events": (),
    "intermediate.int_events_sessionised": ("sessionised_at",),
    "intermediate.int_student_course_daily": ("sessionised_at",),
    "marts.fct_sessions": ("sessionised_at",),
    "marts.fct_question_answers": (),
    "intermediate.int_student_course_asof_activity": ("daily_watermark",),
    "intermediate.int_student_topic_asof_answers": ("events_watermark", "computed_at"),
    "features.student_course_asof": (),
    # the horizon a row's labels were last judged against: only rows it changes get a newer one
    "features.student_topic_asof": ("computed_at", "horizon_date"),
    "intermediate.int_chapter_moves": (),
    "intermediate.int_student_chapters_reached": (),
    "features.chapter_transitions": ("computed_at", "enrollment_updated_at"),
    "intermediate.int_student_chapter_hours": ("sessionised_at",),
    "marts.rpt_engagement_heatmap": ("sessionised_at",),
    "marts.rpt_time_per_module": ("sessionised_at",),
    "marts.rpt_chapter_dropoff": (),
    "intermediate.int_live_class_moves": (),
    "marts.fct_live_class_attendance": (),
    "intermediate.int_quiz_attempt_events": (),
    "marts.fct_quiz_attempts": (),
    "intermediate.int_student_topic_scores": (),
    "marts.rpt_topic_weak_scores": (),
}
# Events moved aside before the first build: the newest 2 %, 1 in 40 of the older ones, and
# 30 that bridge a gap of more than the session inactivity limit (30 minutes), so that without
# them the first build splits a session that their late arrival joins again.
_HOLD_BACK = """
create table {raw}.held_back as select * from {raw}.events
where occurred_at >= (
        select percentile_disc(0.98) within group (order by occurred_at) from {raw}.events
    )
    or abs(hashtext(event_id::text)) % 40 = 0
    or event_id in (
        select event_id from (
            select
                event_id,
                occurred_at - lag(occurred_at) over w as before,
                lead(occurred_at) over w - occurred_at as after
            from {raw}.events
            window w as (partition by student_id order by occurred_at, event_id)
        ) as gaps
        where before < interval '30 minutes' and after < interval '30 minutes'
            and before + after > interval '30 minutes'
        order by event_id
        limit 30
    );
delete from {raw}.events where event_id in (select event_id from {raw}.held_back);
"""


def _drop(settings: Settings, prefixes: list[str]) -> None:
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {settings.raw_schema} cascade")
        for prefix in prefixes:
            for schema in DBT_SCHEMAS:
                conn.execute(f'drop schema if exists "{prefix}{schema}" cascade')


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings naming a raw schema of its own that holds a tiny school minus the held-back
    events (in `<raw>.held_back`)."""
    from lms.simulator.batch import run_simulation
    from lms.simulator.config import SimulationConfig

    run = uuid.uuid4().hex[:8]
    settings = get_settings().model_copy(
        update={"raw_schema": f"raw_inc_{run}", "dbt_schema_prefix": f"inc{run}_"}
    )
    full = settings.model_copy(update={"dbt_schema_prefix": f"full{run}_"})
    out = tmp_path_factory.mktemp("school")
    run_simulation(
        SimulationConfig(students=25, courses=2, days=21, seed=3, invalid_rate=0.0),
        out,
        oltp_dsn=None,
        workers=1,
    )
    try:
        assert land_school(settings, out) > 1000
        with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
            conn.execute(_HOLD_BACK.format(raw=settings.raw_schema))
        yield settings
    finally:
        _drop(settings, [settings.dbt_schema_prefix, full.dbt_schema_prefix])
        for each in (settings, full):
            shutil.rmtree(dbt_target_path(each), ignore_errors=True)


def _rows(
    conn: psycopg.Connection[Any], relation: str, stamps: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    schema, table = relation.split(".")
    names = [
        row[0]
        for row in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s and column_name <> all(%s) "
            "order by ordinal_position",
            (schema, table, list(stamps)),
        ).fetchall()
    ]
    assert names, relation
    columns = ", ".join(names)
    rows = conn.execute(f"select {columns} from {relation}").fetchall()
    # in the order of their exact columns (floats, rounded coarsely, only break ties)
    return sorted(
        rows,
        key=lambda row: (
            repr(tuple(None if isinstance(v, float) else v for v in row)),
            repr(tuple(round(v, 3) for v in row if isinstance(v, float))),
        ),
    )


def _same(left: tuple[Any, ...], right: tuple[Any, ...]) -> bool:
    """Equal rows; floats within 1e-9 (relative): float sums depend on the order rows are added
    in, and rounding both to a fixed number of digits still splits values at a boundary."""
    return len(left) == len(right) and all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        if isinstance(a, float) and isinstance(b, float)
        else a == b
        for a, b in zip(left, right, strict=True)
    )


def _older_than_newest(conn: psycopg.Connection[Any], relation: str, stamp: str) -> int:
    """Rows of `relation` not written by the newest run (an older `stamp`): kept, not recomputed."""
    row = conn.execute(
        f"select count(*) from {relation} where {stamp} < (select max({stamp}) from {relation})"
    ).fetchone()
    return row[0] if row else 0


def _assert_equal_to_full(
    conn: psycopg.Connection[Any],
    school: Settings,
    full: Settings,
    models: dict[str, tuple[str, ...]] = MODELS,
) -> None:
    """Every model of `models` holds the same rows in the incremental schemas as in the rebuilt
    (the failure names every model that differs, not just the first)."""
    failures = []
    for model, stamps in models.items():
        incremental = _rows(conn, f"{school.dbt_schema_prefix}{model}", stamps)
        rebuilt = _rows(conn, f"{full.dbt_schema_prefix}{model}", stamps)
        if len(incremental) != len(rebuilt):
            failures.append((model, len(incremental), len(rebuilt)))
            continue
        differing = [
            (mine, theirs)
            for mine, theirs in zip(incremental, rebuilt, strict=True)
            if not _same(mine, theirs)
        ]
        if differing:
            failures.append((model, differing[:3]))
    assert not failures, ([failure[0] for failure in failures], failures)


def test_incremental_runs_equal_a_full_rebuild(school: Settings) -> None:
    raw = school.raw_schema
    sessionised = f"{school.dbt_schema_prefix}intermediate.int_events_sessionised"
    run_dbt(["run", *SELECT], school)
    with psycopg.connect(school.warehouse_dsn, autocommit=True) as conn:
        held = conn.execute(f"select count(*) from {raw}.held_back").fetchone()
        assert held and held[0] > 50
        conn.execute(
            f"create table {raw}.first_sessions as "
            f"select event_id, activity_session_id from {sessionised}"
        )
        # they land now, with the landing time as ingestion stamps it
        conn.execute(
            f"insert into {raw}.events select event_id, event_type, schema_version, occurred_at, "
            "received_at, student_id, course_id, session_id, client, payload, kafka_partition, "
            f"kafka_offset, event_date, now() from {raw}.held_back"
        )
    run_dbt(["run", *SELECT], school)
    run_dbt(["run", *SELECT], school)  # a re-run with nothing new changes nothing

    full = school.model_copy(
        update={"dbt_schema_prefix": school.dbt_schema_prefix.replace("inc", "full", 1)}
    )
    run_dbt(["run", "--full-refresh", *SELECT], full)

    with psycopg.connect(school.warehouse_dsn) as conn:
        # the late events changed earlier events' sessions (the hard case) ...
        moved = conn.execute(
            f"select count(*) from {raw}.first_sessions as first "
            f"inner join {sessionised} as now using (event_id) "
            "where first.activity_session_id <> now.activity_session_id"
        ).fetchone()
        assert moved and moved[0] > 0
        # ... and the runs were incremental: most rows were not recomputed
        assert _older_than_newest(conn, sessionised, "sessionised_at") > 0
        topic_rows = f"{school.dbt_schema_prefix}features.student_topic_asof"
        assert _older_than_newest(conn, topic_rows, "computed_at") > 0
        _assert_equal_to_full(conn, school, full)


# OLTP changes between two runs with no new events: a final score revised across success_score
# (when the school has one), an active enrollment completed with a score, another withdrawn
# (its as-of rows after the withdrawal leave the spine).
_OUTCOME_CHANGES = (
    "update {raw}.oltp_enrollments set final_score = 100 - final_score, updated_at = now() "
    "where enrollment_id = (select min(enrollment_id) from {raw}.oltp_enrollments "
    "where final_score is not null)",
    "update {raw}.oltp_enrollments set status = 'completed', final_score = 72, "
    "completed_at = enrolled_at + interval '15 days', updated_at = now() "
    "where enrollment_id = (select min(enrollment_id) from {raw}.oltp_enrollments "
    "where status = 'active')",
    "update {raw}.oltp_enrollments set status = 'withdrawn', "
    "withdrawn_at = enrolled_at + interval '8 days', updated_at = now() "
    "where enrollment_id = (select max(enrollment_id) from {raw}.oltp_enrollments "
    "where status = 'active')",
)
# A course restructure: the first two chapters of a course swap positions.
_RESTRUCTURE = """
with two as (
    select chapter_id, position from {raw}.oltp_chapters
    where course_id = (select min(course_id) from {raw}.oltp_chapters)
    order by position
    limit 2
)
update {raw}.oltp_chapters set
    position = (select min(position) + max(position) from two) - position,
    updated_at = now()
where chapter_id in (select chapter_id from two)
"""
# Known gap, left out of the comparison after the restructure: int_student_course_daily keeps
# the chapter positions its days were summed with (it does not rebuild after a restructure),
# and the as-of sums and features built from them inherit that.
_STALE_AFTER_RESTRUCTURE = {
    "intermediate.int_student_course_daily": ("max_chapter_position",),
    "intermediate.int_student_course_asof_activity": ("max_chapter_position",),
    "features.student_course_asof": ("f_max_chapter_position", "f_chapter_progress_share"),
}


def test_oltp_changes_reach_the_incremental_marts(school: Settings) -> None:
    """Enrollment outcomes, a withdrawal and a restructure, with no new events, still make the
    incremental runs equal a full rebuild (the marts copy outcomes and chapter positions)."""
    raw = school.raw_schema
    run_dbt(["run", *SELECT], school)
    with psycopg.connect(school.warehouse_dsn, autocommit=True) as conn:
        changed = [conn.execute(sql.format(raw=raw)).rowcount for sql in _OUTCOME_CHANGES]
        assert changed[1:] == [1, 1], changed
    run_dbt(["run", *SELECT], school)
    with psycopg.connect(school.warehouse_dsn, autocommit=True) as conn:
        transitions = f"{school.dbt_schema_prefix}features.chapter_transitions"
        # the outcome change rewrote some pairs, not the table
        assert _older_than_newest(conn, transitions, "computed_at") > 0
        assert conn.execute(_RESTRUCTURE.format(raw=raw)).rowcount == 2
    run_dbt(["run", *SELECT], school)

    full = school.model_copy(
        update={"dbt_schema_prefix": school.dbt_schema_prefix.replace("inc", "full", 1)}
    )
    run_dbt(["run", "--full-refresh", *SELECT], full)
    models = {
        model: stamps + _STALE_AFTER_RESTRUCTURE.get(model, ()) for model, stamps in MODELS.items()
    }
    with psycopg.connect(school.warehouse_dsn) as conn:
        _assert_equal_to_full(conn, school, full, models)
