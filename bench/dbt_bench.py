"""dbt build time on a simulated school of >= 5 million events, on local PostgreSQL.

Method (measures dbt, not ingestion): the simulator writes the school (events as JSONL, OLTP rows
as Parquet); the events are bulk-loaded with COPY straight into the raw layer of a database of
the benchmark's own (`lms_bench_dbt`, dropped at the end), NOT through the collector, Kafka and
Spark, whose throughput the collector and landing benchmarks measure. OLTP rows get the same
personal-data treatment as the snapshot job (names and birth dates dropped, emails HMAC-hashed).
1 % of the events, picked at random, are held back.

Figures: `dbt_full_build_s` (`dbt build` from empty: models, snapshots, tests),
`dbt_incremental_s` (`dbt build` again after the held-back 1 % land with a fresh loaded_at),
and their ratio `dbt_incremental_vs_full`.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from ingestion.landing.columns import RAW_COLUMNS
from lms.settings import get_settings

DATABASE = "lms_bench_dbt"
STUDENTS = int(os.environ.get("LMS_BENCH_DBT_STUDENTS", "4000"))
DAYS = int(os.environ.get("LMS_BENCH_DBT_DAYS", "112"))
COURSES = 8
HELD_BACK = 0.01
# The warehouse raw table: the landed columns plus dbt's loaded_at_field.
COLUMNS = (*RAW_COLUMNS, "loaded_at")


def _rows(path: Path, held: list[list[Any]], rng: random.Random) -> Any:
    for n, line in enumerate(path.read_bytes().splitlines()):
        event = json.loads(line)
        if "event_id" not in event or "occurred_at" not in event:
            continue
        occurred = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
        received = occurred + timedelta(seconds=2)
        row = [
            event["event_id"],
            event.get("event_type"),
            event.get("schema_version", "1.0"),
            occurred.isoformat(),
            received.isoformat(),
            event.get("student_id"),
            event.get("course_id") or "",
            event.get("session_id"),
            json.dumps(event.get("client")),
            json.dumps(event.get("payload")),
            0,
            n,
            occurred.date().isoformat(),
            (received + timedelta(minutes=5)).isoformat(),
        ]
        if rng.random() < HELD_BACK:
            held.append(row)
        else:
            yield row


def _load_oltp(conn: psycopg.Connection[Any], oltp_dir: Path, key: str) -> None:
    import pyarrow.parquet as pq

    from lms.oltp import OLTP_TABLES

    taken_at = datetime.now(UTC)
    for table in OLTP_TABLES:
        frame = pq.read_table(oltp_dir / f"{table}.parquet").to_pylist()
        rows = []
        for record in frame:
            record.pop("full_name", None)
            record.pop("date_of_birth", None)
            if "email" in record:
                email = str(record.pop("email")).lower().encode()
                record["email_hash"] = hmac.new(key.encode(), email, hashlib.sha256).hexdigest()
            # the OLTP database stamps these on insert; the simulator's files do not carry them
            record.setdefault("created_at", taken_at)
            record.setdefault("updated_at", taken_at)
            record["_snapshot_at"] = taken_at
            rows.append(record)
        names = list(rows[0])
        conn.execute(
            f"create table raw.oltp_{table} ("
            + ", ".join(f"{n} {_pg_type(rows[0][n], n)}" for n in names)
            + ")"
        )
        with conn.cursor().copy(f"copy raw.oltp_{table} ({', '.join(names)}) from stdin") as copy:
            for row in rows:
                copy.write_row([row[n] for n in names])


def _pg_type(value: Any, name: str) -> str:
    if name.endswith("_at"):
        return "timestamptz"
    if name in ("starts_on", "ends_on"):
        return "date"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float) or name in (
        "final_score",
        "pass_pct",
        "reading_time_s",
        "max_points",
    ):
        return "numeric"
    return "text"


def run() -> dict[str, float]:
    from lms.simulator.batch import run_simulation
    from lms.simulator.config import SimulationConfig
    from lms.warehouse import run_dbt

    base = get_settings()
    settings = base.model_copy(update={"pg_warehouse_db": DATABASE, "raw_schema": "raw"})
    work = Path(tempfile.mkdtemp(prefix="lms-dbt-bench-"))
    admin = base.pg_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"drop database if exists {DATABASE} with (force)")
        conn.execute(f"create database {DATABASE}")
    try:
        cfg = SimulationConfig(
            students=STUDENTS, courses=COURSES, days=DAYS, seed=7, invalid_rate=0.0
        )
        run_simulation(cfg, work, oltp_dsn=None)
        held: list[list[Any]] = []
        rng = random.Random(7)
        with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
            from ingestion.landing.warehouse import EVENTS_DDL

            conn.execute(EVENTS_DDL.format(RAW_SCHEMA="raw"))
            loaded = 0
            for path in sorted(work.glob("events-*.jsonl")):
                # duplicates the simulator plants (retries) are dropped by a staging table
                conn.execute("create temp table if not exists stage (like raw.events)")
                conn.execute("truncate stage")
                count = _copy_into(conn, "stage", _rows(path, held, rng))
                conn.execute(
                    "insert into raw.events select distinct on (event_id) * from stage on conflict do nothing"
                )
                loaded += count
            _load_oltp(conn, work / "oltp", base.pii_hash_key)
            conn.execute("analyze")
            total = conn.execute("select count(*) from raw.events").fetchone()[0]  # type: ignore[index]
        started = time.perf_counter()
        run_dbt(["build", "--full-refresh"], settings)
        full = time.perf_counter() - started
        now = datetime.now(UTC).isoformat()
        with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
            for row in held:
                row[-1] = now
            conn.execute("create temp table stage (like raw.events)")
            _copy_into(conn, "stage", held)
            conn.execute(
                "insert into raw.events select distinct on (event_id) * from stage on conflict do nothing"
            )
        started = time.perf_counter()
        run_dbt(["build"], settings)
        incremental = time.perf_counter() - started
        return {
            "dbt_bench_events": float(total),
            "dbt_full_build_s": round(full, 1),
            "dbt_incremental_s": round(incremental, 1),
            "dbt_incremental_vs_full": round(incremental / full, 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"drop database if exists {DATABASE} with (force)")


def _copy_into(conn: psycopg.Connection[Any], table: str, rows: Any) -> int:
    count = 0
    with conn.cursor().copy(
        f"copy {table} ({', '.join(COLUMNS)}) from stdin with (format csv, null '')"
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
    return count
