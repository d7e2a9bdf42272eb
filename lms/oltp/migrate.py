"""Apply the numbered SQL migrations in `lms/oltp/migrations/` to the OLTP database.

Forward-only and idempotent: ``lms.schema_migrations`` records what ran, each migration runs in
its own transaction (PostgreSQL DDL is transactional, so a failing file leaves no trace), and a
session advisory lock makes a second runner wait instead of racing the first.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from lms.errors import LmsError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_FILENAME_RE = re.compile(r"^(?P<version>[0-9]{4})_(?P<name>[a-z0-9_]+)\.sql$")
# Any constant shared by all runners; pg_advisory_lock keys are bigint.
_LOCK_KEY = 0x6C6D_735F_6F6C_7470  # "lms_oltp"
LOCK_TIMEOUT_S = 60.0

_BOOTSTRAP = """
create schema if not exists lms;
create table if not exists lms.schema_migrations (
    version int primary key,
    name text not null,
    applied_at timestamptz not null default now()
);
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path

    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    version: int
    name: str
    applied_at: datetime | None

    @property
    def applied(self) -> bool:
        return self.applied_at is not None


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations on disk in version order; refuses misnamed files and duplicate versions."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME_RE.match(path.name)
        if match is None:
            raise LmsError(f"migration {path} should be named NNNN_lowercase_name.sql")
        version = int(match["version"])
        if version in migrations:
            raise LmsError(f"two migrations share version {version:04d}: {path.name}")
        migrations[version] = Migration(version, match["name"], path)
    return [migrations[v] for v in sorted(migrations)]


def _where(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"{host}:{port}"


def connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection[TupleRow]:
    """Open a connection; a failure becomes one line naming host:port and what to do."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=5)
    except psycopg.OperationalError as exc:
        lines = str(exc).strip().splitlines()
        # libpq's first line ends with the cause after the last "failed: " (its own prefix
        # repeats host and port, which the message already names).
        detail = lines[0].rsplit("failed: ", 1)[-1].strip() if lines else type(exc).__name__
        lowered = detail.lower()
        if "password" in lowered or "authentication" in lowered:
            hint = "check LMS_PG_USER and LMS_PG_PASSWORD"
        elif "does not exist" in lowered:
            hint = "create it with `lms services up postgres`"
        else:
            hint = "is it running? start it with `lms services up postgres`"
        raise LmsError(
            f"cannot connect to PostgreSQL at {_where(dsn)} ({detail}); {hint}"
        ) from None


def _lock(conn: psycopg.Connection[TupleRow], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        row = conn.execute("select pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()
        if row is not None and row[0]:
            return
        if time.monotonic() >= deadline:
            raise LmsError(
                f"another migration runner has held the lock for {timeout_s:.0f}s; "
                "wait for it to finish, then retry"
            )
        time.sleep(0.2)


def _applied(conn: psycopg.Connection[TupleRow]) -> dict[int, tuple[str, datetime]]:
    exists = conn.execute("select to_regclass('lms.schema_migrations') is not null").fetchone()
    if exists is None or not exists[0]:
        return {}
    rows = conn.execute("select version, name, applied_at from lms.schema_migrations").fetchall()
    return {cast(int, v): (cast(str, n), cast(datetime, a)) for v, n, a in rows}


def migrate(
    dsn: str, *, directory: Path = MIGRATIONS_DIR, lock_timeout_s: float = LOCK_TIMEOUT_S
) -> list[Migration]:
    """Apply pending migrations in order; returns those applied now (empty when up to date)."""
    migrations = discover(directory)
    applied_now: list[Migration] = []
    with connect(dsn) as conn:
        _lock(conn, lock_timeout_s)
        try:
            with conn.transaction():
                conn.execute(_BOOTSTRAP)
            done = _applied(conn)
            for migration in migrations:
                if migration.version in done:
                    recorded = done[migration.version][0]
                    if recorded != migration.name:
                        raise LmsError(
                            f"migration {migration.version:04d} is recorded as {recorded!r} but "
                            f"the file is {migration.path.name}; applied migrations must not be "
                            "renamed or replaced, add a new one instead"
                        )
                    continue
                try:
                    with conn.transaction():
                        # bytes: a file's text is not a LiteralString, and without parameters
                        # psycopg sends it as one simple query, so multi-statement files work.
                        conn.execute(migration.sql().encode())
                        conn.execute(
                            "insert into lms.schema_migrations (version, name) values (%s, %s)",
                            (migration.version, migration.name),
                        )
                except psycopg.Error as exc:
                    raise LmsError(
                        f"migration {migration.path.name} failed and was rolled back: "
                        f"{str(exc).strip().splitlines()[0]}"
                    ) from exc
                applied_now.append(migration)
        finally:
            # Closing the session releases the lock anyway; never let unlocking hide an error.
            with contextlib.suppress(psycopg.Error):
                conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def status(dsn: str, *, directory: Path = MIGRATIONS_DIR) -> list[MigrationStatus]:
    """Every migration on disk (and any recorded but missing on disk), applied or pending."""
    with connect(dsn) as conn:
        done = _applied(conn)
    statuses = {
        m.version: MigrationStatus(m.version, m.name, done.get(m.version, (m.name, None))[1])
        for m in discover(directory)
    }
    for version, (name, applied_at) in done.items():
        statuses.setdefault(version, MigrationStatus(version, name, applied_at))
    return [statuses[v] for v in sorted(statuses)]
