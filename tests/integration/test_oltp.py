"""The OLTP migrations against the real local PostgreSQL (`lms services up postgres`).

Runs on the shared lms_oltp database: migrations are idempotent, and every row a test writes is
written inside a transaction that is rolled back, so the database is left as found.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import psycopg
import pytest

from lms.errors import LmsError
from lms.oltp.migrate import connect, discover, migrate, status
from lms.settings import get_settings

pytestmark = pytest.mark.integration

TABLES = {
    "students", "teachers", "courses", "chapters", "topics", "videos", "quizzes", "questions",
    "assignments", "live_classes", "enrollments", "course_teachers",
}  # fmt: skip


@pytest.fixture(scope="module")
def dsn() -> str:
    # LMS_TEST_OLTP_DSN points the test at another database (e.g. a scratch cluster).
    dsn = os.environ.get("LMS_TEST_OLTP_DSN") or get_settings().oltp_dsn
    try:
        connect(dsn).close()
    except LmsError as exc:
        pytest.fail(f"{exc}")
    return dsn


@pytest.fixture(scope="module")
def migrated(dsn: str) -> str:
    migrate(dsn)
    return dsn


@pytest.fixture
def tx(migrated: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection inside a transaction that is always rolled back."""
    conn = psycopg.connect(migrated)
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


def test_migrate_twice_is_idempotent(dsn: str) -> None:
    migrate(dsn)
    assert migrate(dsn) == []
    statuses = status(dsn)
    assert [s.version for s in statuses] == [m.version for m in discover()]
    assert all(s.applied for s in statuses)


def test_concurrent_runners_do_not_collide(dsn: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(dsn)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_tables_and_bookkeeping_exist(tx: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = tx.execute(
        "select table_name from information_schema.tables where table_schema = 'lms'"
    ).fetchall()
    assert {r[0] for r in rows} == TABLES | {"schema_migrations"}
    for table in TABLES:
        columns = {
            r[0]: r[1]
            for r in tx.execute(
                "select column_name, is_nullable from information_schema.columns "
                "where table_schema = 'lms' and table_name = %s",
                (table,),
            ).fetchall()
        }
        assert columns["created_at"] == "NO" and columns["updated_at"] == "NO", table


def test_foreign_keys_checks_and_indexes(tx: psycopg.Connection[tuple[object, ...]]) -> None:
    def constraints(kind: str) -> set[str]:
        rows = tx.execute(
            "select conrelid::regclass::text from pg_constraint c "
            "join pg_namespace n on n.oid = c.connamespace "
            "where n.nspname = 'lms' and c.contype = %s",
            (kind,),
        ).fetchall()
        return {str(r[0]).removeprefix("lms.") for r in rows}

    assert constraints("f") == TABLES - {"students", "teachers", "courses"}
    assert {"enrollments", "courses", "course_teachers", "questions"} <= constraints("c")

    # Every foreign key's first column leads some index (else deletes on the parent scan the
    # child); for topics' (chapter_id, course_id) key, chapter_id alone is already selective.
    unindexed = tx.execute(
        """
        select c.conrelid::regclass::text, c.conname
        from pg_constraint c
        join pg_namespace n on n.oid = c.connamespace
        where n.nspname = 'lms' and c.contype = 'f'
          and not exists (
              select 1 from pg_index i
              where i.indrelid = c.conrelid and i.indkey[0] = c.conkey[1]
          )
        """
    ).fetchall()
    assert unindexed == []

    for table in TABLES:
        indexed = tx.execute(
            "select count(*) from pg_indexes where schemaname = 'lms' and tablename = %s "
            "and indexdef like %s",
            (table, "%(updated_at)%"),
        ).fetchone()
        assert indexed is not None and indexed[0] == 1, table
        triggers = tx.execute(
            "select count(*) from pg_trigger t join pg_class c on c.oid = t.tgrelid "
            "join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'lms' and c.relname = %s and not t.tgisinternal",
            (table,),
        ).fetchone()
        assert triggers is not None and triggers[0] == 1, table


def _seed(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(
        """
        insert into lms.students (student_id, full_name, email, country, date_of_birth,
                                  created_at, updated_at)
        values ('it_stu_1', 'Ada Test', 'ada.it@example.org', 'FR', '2004-05-06',
                '2000-01-01', '2000-01-01');
        insert into lms.courses (course_id, code, title, subject, level, starts_on, ends_on)
        values ('it_crs_1', 'IT-CRS-1', 'Integration', 'math', 'beginner',
                '2026-01-05', '2026-06-30');
        """
    )


def test_bad_status_rejected(tx: psycopg.Connection[tuple[object, ...]]) -> None:
    _seed(tx)
    with pytest.raises(psycopg.errors.CheckViolation), tx.transaction():
        tx.execute(
            "insert into lms.enrollments (enrollment_id, student_id, course_id, status, enrolled_at)"
            " values ('it_enr_1', 'it_stu_1', 'it_crs_1', 'paused', now())"
        )
    with pytest.raises(psycopg.errors.CheckViolation), tx.transaction():
        # completed needs completed_at; the status and its timestamp cannot disagree.
        tx.execute(
            "insert into lms.enrollments (enrollment_id, student_id, course_id, status, enrolled_at)"
            " values ('it_enr_1', 'it_stu_1', 'it_crs_1', 'completed', now())"
        )
    with pytest.raises(psycopg.errors.ForeignKeyViolation), tx.transaction():
        tx.execute(
            "insert into lms.enrollments (enrollment_id, student_id, course_id, enrolled_at)"
            " values ('it_enr_1', 'it_stu_404', 'it_crs_1', now())"
        )
    tx.execute(
        "insert into lms.enrollments (enrollment_id, student_id, course_id, status, enrolled_at,"
        " completed_at, final_score) values ('it_enr_1', 'it_stu_1', 'it_crs_1', 'completed',"
        " '2026-01-05', '2026-06-30', 87.5)"
    )


def test_updated_at_bumps_on_change_only(tx: psycopg.Connection[tuple[object, ...]]) -> None:
    _seed(tx)  # inserted with updated_at 2000-01-01

    def updated_at() -> object:
        row = tx.execute(
            "select updated_at = '2000-01-01'::timestamptz, updated_at = now() "
            "from lms.students where student_id = 'it_stu_1'"
        ).fetchone()
        return row

    tx.execute("update lms.students set full_name = full_name where student_id = 'it_stu_1'")
    assert updated_at() == (True, False)  # no real change, no bump
    tx.execute("update lms.students set full_name = 'Ada T.' where student_id = 'it_stu_1'")
    assert updated_at() == (False, True)
    # An explicit old value does not win: extraction must see every change.
    tx.execute(
        "update lms.students set country = 'BE', updated_at = '1999-01-01'"
        " where student_id = 'it_stu_1'"
    )
    assert updated_at() == (False, True)


def test_unreachable_server_is_one_clear_line() -> None:
    with pytest.raises(LmsError, match=r"127\.0\.0\.1:1 .*lms services up postgres"):
        status("postgresql://lms:x@127.0.0.1:1/lms_oltp")
