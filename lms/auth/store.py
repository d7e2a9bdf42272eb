"""Where API keys live: PostgreSQL (``platform.api_keys``) in every environment, or memory in tests.

The table is created by :func:`migrate`, a small idempotent migration runner that any process may
call (the collector at startup, ``lms keys`` before its first query): an advisory lock makes two
processes starting together apply each step once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from lms.errors import LmsError, UsageError

SCHEMA = "platform"
COMPONENT = "auth"
# Any stable 64-bit number: serialises concurrent migrations of the platform schema.
_MIGRATION_LOCK = 7_311_002_001

# (version, name, SQL). Append new steps; never edit an applied one.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "create api_keys",
        """
        create table platform.api_keys (
            id bigint generated always as identity primary key,
            name text not null unique
                constraint api_keys_name_format check (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
            prefix text not null unique,
            hash text not null unique,
            scopes text[] not null constraint api_keys_scopes_not_empty check (cardinality(scopes) > 0),
            teacher_id text null,
            created_at timestamptz not null default now(),
            revoked_at timestamptz null,
            last_used_at timestamptz null
        );
        comment on table platform.api_keys is
            'API keys of every platform API; only the SHA-256 digest of a key is stored';
        """,
    ),
)

_COLUMNS = "id, name, prefix, scopes, teacher_id, created_at, revoked_at, last_used_at"


class KeyStoreUnavailable(LmsError):
    """The key store cannot be reached; callers answer 503, never 401 (the key may be fine)."""


class DuplicateKeyName(UsageError):
    pass


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One stored key, without its digest (nothing outside the store needs it)."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    teacher_id: str | None
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class KeyStore(Protocol):
    def create(
        self, name: str, prefix: str, key_hash: str, scopes: Sequence[str], teacher_id: str | None
    ) -> ApiKeyRecord:
        """Insert a key; raise DuplicateKeyName when the name (or prefix) is taken."""
        ...

    def find_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        """The key with this digest (revoked or not); records the use of an active key."""
        ...

    def list_keys(self) -> list[ApiKeyRecord]: ...

    def revoke(self, name_or_id: str) -> ApiKeyRecord:
        """Revoke by name, numeric id or prefix; raise UsageError when no key matches."""
        ...


class InMemoryKeyStore:
    """A KeyStore in a dict, for unit tests and for APIs run without PostgreSQL in tests."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, ApiKeyRecord]] = {}  # name -> (hash, record)
        self._lock = threading.Lock()
        self.lookups = 0

    def create(
        self, name: str, prefix: str, key_hash: str, scopes: Sequence[str], teacher_id: str | None
    ) -> ApiKeyRecord:
        with self._lock:
            if name in self._rows or any(r.prefix == prefix for _, r in self._rows.values()):
                raise DuplicateKeyName(_duplicate_message(name))
            record = ApiKeyRecord(
                id=len(self._rows) + 1,
                name=name,
                prefix=prefix,
                scopes=tuple(scopes),
                teacher_id=teacher_id,
                created_at=datetime.now(UTC),
            )
            self._rows[name] = (key_hash, record)
            return record

    def find_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        with self._lock:
            self.lookups += 1
            for name, (stored_hash, record) in self._rows.items():
                if stored_hash == key_hash:
                    if record.revoked_at is None:
                        record = replace(record, last_used_at=datetime.now(UTC))
                        self._rows[name] = (stored_hash, record)
                    return record
            return None

    def list_keys(self) -> list[ApiKeyRecord]:
        with self._lock:
            return sorted((record for _, record in self._rows.values()), key=lambda r: r.id)

    def revoke(self, name_or_id: str) -> ApiKeyRecord:
        with self._lock:
            # Same precedence as PostgreSQL: name, then id, then prefix.
            for attribute in ("name", "id", "prefix"):
                for name, (stored_hash, record) in self._rows.items():
                    if str(getattr(record, attribute)) != name_or_id:
                        continue
                    if record.revoked_at is None:
                        record = replace(record, revoked_at=datetime.now(UTC))
                        self._rows[name] = (stored_hash, record)
                    return record
        raise UsageError(_not_found_message(name_or_id))


def _duplicate_message(name: str) -> str:
    return (
        f"an API key named {name!r} already exists (names stay taken after revocation); "
        "choose another name, see `lms keys list`"
    )


def _not_found_message(name_or_id: str) -> str:
    return f"no API key named {name_or_id!r} (nor with that id or prefix); see `lms keys list`"


def _where(dsn: str) -> str:
    # Host, port and database only: a DSN carries the password and must not reach a message.
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "the configured PostgreSQL"
    return (
        f"PostgreSQL {info.get('host', '?')}:{info.get('port', '5432')}/{info.get('dbname', '?')}"
    )


def migrate(conn: psycopg.Connection[Any]) -> list[str]:
    """Create the ``platform`` schema and apply pending auth steps; return the names applied."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(f"create schema if not exists {SCHEMA}")
        conn.execute(
            f"""
            create table if not exists {SCHEMA}.schema_migrations (
                component text not null,
                version int not null,
                name text not null,
                applied_at timestamptz not null default now(),
                primary key (component, version)
            )
            """
        )
        rows = conn.execute(
            f"select version from {SCHEMA}.schema_migrations where component = %s", (COMPONENT,)
        ).fetchall()
        done = {row[0] for row in rows}
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            conn.execute(sql)
            conn.execute(
                f"insert into {SCHEMA}.schema_migrations (component, version, name) "
                "values (%s, %s, %s)",
                (COMPONENT, version, name),
            )
            applied_now.append(f"{COMPONENT} {version}: {name}")
    return applied_now


def _record(row: tuple[Any, ...]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row[0],
        name=row[1],
        prefix=row[2],
        scopes=tuple(row[3]),
        teacher_id=row[4],
        created_at=row[5],
        revoked_at=row[6],
        last_used_at=row[7],
    )


class PostgresKeyStore:
    """Keys in ``platform.api_keys``. One short connection per call: lookups are rare because
    verified keys are cached by :class:`lms.auth.verify.KeyVerifier`, and a short connection
    survives a database restart without reconnect logic."""

    def __init__(self, dsn: str, *, connect_timeout_s: int = 5) -> None:
        self._dsn = dsn
        self._connect_timeout_s = connect_timeout_s
        self._migrated = False
        self._lock = threading.Lock()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=self._connect_timeout_s
            )
        except psycopg.OperationalError:
            raise KeyStoreUnavailable(
                f"cannot reach {_where(self._dsn)} for API keys; start it with "
                "`lms services up` or point LMS_PLATFORM_DSN at the platform database"
            ) from None
        if not self._migrated:
            with self._lock:
                if not self._migrated:
                    try:
                        migrate(conn)
                    except BaseException:
                        conn.close()
                        raise
                    self._migrated = True
        return conn

    def migrate(self) -> list[str]:
        with self._connect() as conn:
            return migrate(conn)

    def create(
        self, name: str, prefix: str, key_hash: str, scopes: Sequence[str], teacher_id: str | None
    ) -> ApiKeyRecord:
        with self._connect() as conn:
            try:
                row = conn.execute(
                    f"insert into {SCHEMA}.api_keys (name, prefix, hash, scopes, teacher_id) "
                    f"values (%s, %s, %s, %s, %s) returning {_COLUMNS}",
                    (name, prefix, key_hash, list(scopes), teacher_id),
                ).fetchone()
            except pg_errors.UniqueViolation:
                raise DuplicateKeyName(_duplicate_message(name)) from None
        assert row is not None
        return _record(row)

    def find_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        try:
            with self._connect() as conn:
                row = conn.execute(
                    f"select {_COLUMNS} from {SCHEMA}.api_keys where hash = %s", (key_hash,)
                ).fetchone()
                if row is None:
                    return None
                record = _record(row)
                if record.revoked_at is None:
                    # Once per cache miss, not per request: "last used" is accurate to the
                    # verifier's cache TTL, which is what an operator deciding to revoke needs.
                    conn.execute(
                        f"update {SCHEMA}.api_keys set last_used_at = now() where id = %s",
                        (record.id,),
                    )
                return record
        except psycopg.OperationalError:
            raise KeyStoreUnavailable(f"lost the connection to {_where(self._dsn)}") from None

    def list_keys(self) -> list[ApiKeyRecord]:
        with self._connect() as conn:
            rows = conn.execute(f"select {_COLUMNS} from {SCHEMA}.api_keys order by id").fetchall()
        return [_record(row) for row in rows]

    def revoke(self, name_or_id: str) -> ApiKeyRecord:
        with self._connect() as conn:
            # One row at most, a name winning over an id or prefix that happens to be equal.
            row = conn.execute(
                f"""
                with target as (
                    select id from {SCHEMA}.api_keys
                    where name = %(v)s or prefix = %(v)s or id::text = %(v)s
                    order by (name = %(v)s) desc, (id::text = %(v)s) desc
                    limit 1
                )
                update {SCHEMA}.api_keys set revoked_at = coalesce(revoked_at, now())
                where id = (select id from target)
                returning {_COLUMNS}
                """,
                {"v": name_or_id},
            ).fetchone()
        if row is None:
            raise UsageError(_not_found_message(name_or_id))
        return _record(row)
