"""dbt build time on a simulated school of >= 5 million events, on local PostgreSQL.

Method (measures dbt, not ingestion): the simulator writes the school (events as JSONL, OLTP rows
as Parquet); the events are bulk-loaded with COPY straight into the raw layer of a database of
the benchmark's own (`lms_bench_dbt`, dropped at the end), NOT through the collector, Kafka and
Spark, whose throughput the collector and landing benchmarks measure. OLTP rows get the same
personal-data treatment as the snapshot job (names and birth dates dropped, emails HMAC-hashed).
The newest 1 % of the events (by occurred_at: the next stretch of activity) are held back.

Figures: `dbt_full_build_s` (`dbt build` from empty: models, snapshots, tests),
`dbt_incremental_s` (`dbt build` again after the held-back 1 % land with a fresh loaded_at),
and their ratio `dbt_incremental_vs_full`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from lms.settings import get_settings
from lms.warehouse.sample import create_raw_events, event_rows, insert_events, load_oltp

DATABASE = "lms_bench_dbt"
# 7,000 students x 112 days: about 5.1 million events (4,000 gave 2.92 million).
STUDENTS = int(os.environ.get("LMS_BENCH_DBT_STUDENTS", "7000"))
DAYS = int(os.environ.get("LMS_BENCH_DBT_DAYS", "112"))
COURSES = 8
HELD_BACK = 0.01


# The newest 1 % of events (the next stretch of activity) move aside after loading and land
# again, with a fresh loaded_at, before the incremental run.
_HOLD_BACK = f"""
create table raw.held_back as select * from raw.events
where occurred_at >= (
    select percentile_disc({1 - HELD_BACK}) within group (order by occurred_at) from raw.events
);
delete from raw.events where event_id in (select event_id from raw.held_back);
"""


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"select count(*) from {table}").fetchone()
    return int(row[0]) if row else 0


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
        with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
            create_raw_events(conn, "raw")
            for path in sorted(work.glob("events-*.jsonl")):
                insert_events(conn, "raw", event_rows(path))
                path.unlink()  # the disk is shared: the JSONL is not needed once loaded
            load_oltp(conn, "raw", work / "oltp", base.pii_hash_key)
            conn.execute(_HOLD_BACK)
            conn.execute("analyze")
            total = _count(conn, "raw.events")
            held = _count(conn, "raw.held_back")
        started = time.perf_counter()
        run_dbt(["build", "--full-refresh"], settings)
        full = time.perf_counter() - started
        # the machine is shared: the load during each phase says how much the figure is worth
        load_full = os.getloadavg()
        with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
            # they land now: loaded_at is the landing time, as ingestion stamps it
            conn.execute("update raw.held_back set loaded_at = now()")
            conn.execute("insert into raw.events select * from raw.held_back")
        started = time.perf_counter()
        run_dbt(["build"], settings)
        incremental = time.perf_counter() - started
        load_incremental = os.getloadavg()
        return {
            "dbt_bench_events": float(total + held),
            "dbt_bench_new_events": float(held),
            "dbt_full_load_avg_1m": round(load_full[0], 2),
            "dbt_full_load_avg_5m": round(load_full[1], 2),
            "dbt_incremental_load_avg_1m": round(load_incremental[0], 2),
            "dbt_full_build_s": round(full, 1),
            "dbt_incremental_s": round(incremental, 1),
            "dbt_incremental_vs_full": round(incremental / full, 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"drop database if exists {DATABASE} with (force)")
