"""Land a simulated school's files straight into a PostgreSQL raw schema, with COPY.

For the benchmark and for tests that need a raw layer of their own in seconds: the path through
the collector, Kafka and Spark is what ingestion's own tests and benchmarks cover. The rows get
what ingestion gives them: events de-duplicated by event_id with `received_at` and `loaded_at`
stamped, and OLTP rows with the snapshot job's personal-data treatment (names and dates of birth
dropped, emails HMAC-hashed).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

from ingestion.landing.columns import RAW_COLUMNS
from lms.oltp import OLTP_TABLES
from lms.settings import Settings

# The warehouse raw table: the landed columns plus dbt's loaded_at_field.
COLUMNS = (*RAW_COLUMNS, "loaded_at")
_DROPPED = ("full_name", "date_of_birth")
_NUMERIC = ("final_score", "pass_pct", "reading_time_s", "max_points")


def event_rows(path: Path) -> Iterator[list[Any]]:
    """The raw rows (in `COLUMNS` order) of one simulator JSONL file; the simulator's planted
    invalid lines (no id or no time) are skipped, as the collector would reject them."""
    for n, line in enumerate(path.read_bytes().splitlines()):
        event = orjson.loads(line)
        if "event_id" not in event or "occurred_at" not in event:
            continue
        occurred = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
        received = occurred + timedelta(seconds=2)
        yield [
            event["event_id"],
            event.get("event_type"),
            event.get("schema_version", "1.0"),
            occurred.isoformat(),
            received.isoformat(),
            event.get("student_id"),
            event.get("course_id") or "",
            event.get("session_id"),
            orjson.dumps(event.get("client")).decode(),
            orjson.dumps(event.get("payload")).decode(),
            0,
            n,
            occurred.date().isoformat(),
            (received + timedelta(minutes=5)).isoformat(),
        ]


def insert_events(conn: psycopg.Connection[Any], raw_schema: str, rows: Iterable[list[Any]]) -> int:
    """COPY rows into a temporary stage, then add the event ids not yet in `<raw>.events` (the
    simulator plants client retries: the same id twice). Returns the rows offered."""
    conn.execute(f"create temp table if not exists stage (like {raw_schema}.events)")
    conn.execute("truncate stage")
    count = 0
    with conn.cursor().copy(
        f"copy stage ({', '.join(COLUMNS)}) from stdin with (format csv, null '')"
    ) as copy:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            writer.writerow(row)
            count += 1
            if count % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer.seek(0)
                buffer.truncate()
        copy.write(buffer.getvalue())
    conn.execute(
        f"insert into {raw_schema}.events select distinct on (event_id) * from stage "
        "on conflict do nothing"
    )
    return count


def _pg_type(value: Any, name: str) -> str:
    if name.endswith("_at"):
        return "timestamptz"
    if name in ("starts_on", "ends_on"):
        return "date"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float) or name in _NUMERIC:
        return "numeric"
    return "text"


def load_oltp(conn: psycopg.Connection[Any], raw_schema: str, oltp_dir: Path, key: str) -> None:
    """`<raw>.oltp_<table>` from the simulator's Parquet files, as the snapshot job writes them."""
    import pyarrow.parquet as pq

    taken_at = datetime.now(UTC)
    for table in OLTP_TABLES:
        rows = []
        for record in pq.read_table(oltp_dir / f"{table}.parquet").to_pylist():
            for name in _DROPPED:
                record.pop(name, None)
            if "email" in record:
                email = str(record.pop("email")).lower().encode()
                record["email_hash"] = hmac.new(key.encode(), email, hashlib.sha256).hexdigest()
            # the OLTP database stamps these on insert; the simulator's files do not carry them
            record.setdefault("created_at", taken_at)
            record.setdefault("updated_at", taken_at)
            record["_snapshot_at"] = taken_at
            rows.append(record)
        names = list(rows[0])
        conn.execute(f"drop table if exists {raw_schema}.oltp_{table}")
        conn.execute(
            f"create table {raw_schema}.oltp_{table} ("
            + ", ".join(f"{n} {_pg_type(rows[0][n], n)}" for n in names)
            + ")"
        )
        with conn.cursor().copy(
            f"copy {raw_schema}.oltp_{table} ({', '.join(names)}) from stdin"
        ) as copy:
            for row in rows:
                copy.write_row([row[n] for n in names])


def create_raw_events(conn: psycopg.Connection[Any], raw_schema: str) -> None:
    """The raw events table exactly as the landing job creates it."""
    from ingestion.landing.warehouse import EVENTS_DDL

    conn.execute(EVENTS_DDL.format(RAW_SCHEMA=raw_schema))


def land_school(settings: Settings, school_dir: Path) -> int:
    """Land a simulated school (`lms simulate` output with OLTP as Parquet) into
    `settings.raw_schema` of the warehouse database. Returns the events in `<raw>.events`."""
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        create_raw_events(conn, settings.raw_schema)
        for path in sorted(school_dir.glob("events-*.jsonl")):
            insert_events(conn, settings.raw_schema, event_rows(path))
        load_oltp(conn, settings.raw_schema, school_dir / "oltp", settings.pii_hash_key)
        conn.execute(f"analyze {settings.raw_schema}.events")
        row = conn.execute(f"select count(*) from {settings.raw_schema}.events").fetchone()
    return int(row[0]) if row else 0
