"""`lms simulate` into the real local PostgreSQL: row counts, foreign keys, and re-runs.

Runs in a scratch database (created and dropped here) because loading truncates the simulator's
tables, and the shared lms_oltp may hold a school someone is looking at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from lms.oltp.migrate import migrate
from lms.settings import get_settings
from lms.simulator.batch import run_simulation
from lms.simulator.config import SimulationConfig

pytestmark = pytest.mark.integration

SCRATCH_DB = "lms_oltp_simulator_test"
CFG = SimulationConfig(students=150, courses=3, days=30, seed=4)

# (child table, column, parent table, column) for every foreign key the schema declares.
FOREIGN_KEYS = (
    ("chapters", "course_id", "courses", "course_id"),
    ("topics", "chapter_id", "chapters", "chapter_id"),
    ("videos", "chapter_id", "chapters", "chapter_id"),
    ("quizzes", "chapter_id", "chapters", "chapter_id"),
    ("questions", "quiz_id", "quizzes", "quiz_id"),
    ("questions", "topic_id", "topics", "topic_id"),
    ("assignments", "chapter_id", "chapters", "chapter_id"),
    ("live_classes", "course_id", "courses", "course_id"),
    ("live_classes", "teacher_id", "teachers", "teacher_id"),
    ("enrollments", "student_id", "students", "student_id"),
    ("enrollments", "course_id", "courses", "course_id"),
    ("course_teachers", "teacher_id", "teachers", "teacher_id"),
)


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    settings = get_settings()
    admin = os.environ.get("LMS_TEST_ADMIN_DSN") or settings.pg_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"drop database if exists {SCRATCH_DB} with (force)")
        conn.execute(f"create database {SCRATCH_DB}")
    scratch = settings.pg_dsn(SCRATCH_DB)
    try:
        yield scratch
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"drop database if exists {SCRATCH_DB} with (force)")


def _counts(dsn: str) -> dict[str, int]:
    tables = (
        "students", "teachers", "courses", "chapters", "topics", "videos", "quizzes",
        "questions", "assignments", "live_classes", "enrollments", "course_teachers",
    )  # fmt: skip
    with psycopg.connect(dsn) as conn:
        return {t: conn.execute(f"select count(*) from lms.{t}").fetchone()[0] for t in tables}  # type: ignore[index]


def test_simulate_loads_oltp_and_reruns(dsn: str, tmp_path: Path) -> None:
    first = run_simulation(CFG, tmp_path / "one", oltp_dsn=dsn, workers=2)
    counts = _counts(dsn)
    assert counts == first["oltp"]["rows"]
    assert counts["students"] == CFG.students
    assert counts["courses"] == CFG.courses
    assert counts["enrollments"] >= CFG.students
    assert all(n > 0 for n in counts.values()), counts

    with psycopg.connect(dsn) as conn:
        for child, col, parent, pcol in FOREIGN_KEYS:
            orphans = conn.execute(
                f"select count(*) from lms.{child} c left join lms.{parent} p "
                f"on c.{col} = p.{pcol} where p.{pcol} is null"
            ).fetchone()
            assert orphans == (0,), (child, col)
        # Personal data lives here: plausible names and unique emails.
        row = conn.execute(
            "select count(distinct email), min(length(full_name)) from lms.students"
        ).fetchone()
        assert row is not None and row[0] == CFG.students and row[1] >= 5
        statuses = dict(
            conn.execute("select status, count(*) from lms.enrollments group by status").fetchall()
        )
        assert set(statuses) <= {"active", "completed", "withdrawn"}
        assert statuses.get("withdrawn", 0) > 0

    # Same school again (truncate and reload in one transaction): no failure, same rows.
    second = run_simulation(CFG, tmp_path / "two", oltp_dsn=dsn, workers=1)
    assert _counts(dsn) == counts == second["oltp"]["rows"]
    # The migrations stay applied and idempotent.
    assert migrate(dsn) == []
