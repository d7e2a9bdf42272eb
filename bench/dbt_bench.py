"""dbt build time on a simulated school of >= 5 million events, on local PostgreSQL.

Method (measures dbt, not ingestion): the simulator writes the school (events as JSONL, OLTP rows
as Parquet); the events are bulk-loaded with COPY straight into the raw layer of a database of
the benchmark's own (`lms_bench_dbt`, dropped at the end), NOT through the collector, Kafka and
Spark, whose throughput the collector and landing benchmarks measure. OLTP rows get the same
personal-data treatment as the snapshot job (names and birth dates dropped, emails HMAC-hashed).
The newest 1 % of the events (by occurred_at: the next stretch of activity) are held back.

Both builds are the scheduled build of the pipeline flow (`lms.warehouse.SCHEDULED_BUILD`:
`dbt build` without dbt's unit tests, which `make test` runs).
Figures: `dbt_full_build_s` (`dbt build` from empty: models, snapshots, data tests),
`dbt_incremental_s` (`dbt build` again after the held-back 1 % land with a fresh loaded_at),
and their ratio `dbt_incremental_vs_full`. After each build the slowest nodes of dbt's own
run_results.json are printed, so a change shows where the time went.

`LMS_BENCH_DBT_KEEP=1` (developing the project: simulating and loading 5 M events is half the
run): the loaded raw layer is kept as the database `lms_bench_dbt_school`, and the state right
after the full build as `lms_bench_dbt_built`; a later run with the variable set starts from a
copy of the school (CREATE DATABASE ... TEMPLATE) instead of simulating and loading it again.
`dbt_bench_events` is the same either way. Drop them with `LMS_BENCH_DBT_KEEP=drop`.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from lms.settings import get_settings
from lms.warehouse.dbt import SCHEDULED_BUILD
from lms.warehouse.sample import create_raw_events, event_rows, insert_events, load_oltp

DATABASE = "lms_bench_dbt"
# 7,000 students x 112 days: about 5.1 million events (4,000 gave 2.92 million).
STUDENTS = int(os.environ.get("LMS_BENCH_DBT_STUDENTS", "7000"))
DAYS = int(os.environ.get("LMS_BENCH_DBT_DAYS", "112"))
COURSES = 8
HELD_BACK = 0.01
KEEP = os.environ.get("LMS_BENCH_DBT_KEEP", "")
SCHOOL = f"{DATABASE}_school"  # the loaded raw layer, kept between runs with LMS_BENCH_DBT_KEEP
BUILT = f"{DATABASE}_built"  # the state after the full build (for iterating on incremental runs)


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


def _exists(conn: psycopg.Connection[Any], database: str) -> bool:
    return (
        conn.execute("select 1 from pg_database where datname = %s", [database]).fetchone()
        is not None
    )


def _copy(conn: psycopg.Connection[Any], source: str, target: str) -> None:
    """`target` as a file copy of `source` (which nobody may be connected to)."""
    conn.execute(f"drop database if exists {target} with (force)")
    conn.execute(f"create database {target} template {source} strategy file_copy")


def _timed_dbt(args: list[str], settings: Any, label: str) -> tuple[float, float]:
    """Run dbt; return wall seconds and dbt's CPU seconds, and print the slowest nodes."""
    from lms.warehouse import dbt_target_path, run_dbt

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run_dbt(args, settings)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    results = json.loads((dbt_target_path(settings) / "run_results.json").read_text())
    nodes = results["results"]
    by_kind: dict[str, float] = {}
    for node in nodes:
        kind = node["unique_id"].split(".")[0]
        by_kind[kind] = by_kind.get(kind, 0.0) + node["execution_time"]
    sums = ", ".join(f"{kind} {secs:.1f} s" for kind, secs in sorted(by_kind.items()))
    print(
        f"  {label}: {wall:.1f} s wall, dbt's clock {results['elapsed_time']:.1f} s, "
        f"dbt CPU {cpu:.1f} s, load {os.getloadavg()[0]:.2f}; node sums: {sums}",
        flush=True,
    )
    for node in sorted(nodes, key=lambda n: -n["execution_time"])[:20]:
        print(f"    {node['execution_time']:6.2f} s  {node['unique_id']}", flush=True)
    return wall, cpu


def _load_school(work: Path, settings: Any, base: Any) -> None:
    """Simulate the school and load it into the benchmark database's raw layer."""
    from lms.simulator.batch import run_simulation
    from lms.simulator.config import SimulationConfig

    cfg = SimulationConfig(students=STUDENTS, courses=COURSES, days=DAYS, seed=7, invalid_rate=0.0)
    run_simulation(cfg, work, oltp_dsn=None)
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        create_raw_events(conn, "raw")
        for path in sorted(work.glob("events-*.jsonl")):
            insert_events(conn, "raw", event_rows(path))
            path.unlink()  # the disk is shared: the JSONL is not needed once loaded
        load_oltp(conn, "raw", work / "oltp", base.pii_hash_key)
        conn.execute(_HOLD_BACK)
        conn.execute("analyze")


def run() -> dict[str, float]:
    base = get_settings()
    settings = base.model_copy(update={"pg_warehouse_db": DATABASE, "raw_schema": "raw"})
    work = Path(tempfile.mkdtemp(prefix="lms-dbt-bench-"))
    admin = base.pg_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if KEEP == "drop":
            for name in (DATABASE, SCHOOL, BUILT):
                conn.execute(f"drop database if exists {name} with (force)")
            return {}
        reuse = bool(KEEP) and _exists(conn, SCHOOL)
        if reuse:
            print(f"  starting from a copy of {SCHOOL} (LMS_BENCH_DBT_KEEP)", flush=True)
            _copy(conn, SCHOOL, DATABASE)
        else:
            conn.execute(f"drop database if exists {DATABASE} with (force)")
            conn.execute(f"create database {DATABASE}")
    try:
        if not reuse:
            _load_school(work, settings, base)
            if KEEP:
                with psycopg.connect(admin, autocommit=True) as conn:
                    _copy(conn, DATABASE, SCHOOL)
        with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
            total = _count(conn, "raw.events")
            held = _count(conn, "raw.held_back")
        full, full_cpu = _timed_dbt([*SCHEDULED_BUILD, "--full-refresh"], settings, "full build")
        # the machine is shared: the load during each phase says how much the figure is worth
        load_full = os.getloadavg()
        if KEEP:
            with psycopg.connect(admin, autocommit=True) as conn:
                _copy(conn, DATABASE, BUILT)
        with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
            # they land now: loaded_at is the landing time, as ingestion stamps it
            conn.execute("update raw.held_back set loaded_at = now()")
            conn.execute("insert into raw.events select * from raw.held_back")
        incremental, incremental_cpu = _timed_dbt(
            list(SCHEDULED_BUILD), settings, "incremental build"
        )
        load_incremental = os.getloadavg()
        return {
            "dbt_bench_events": float(total + held),
            "dbt_bench_new_events": float(held),
            "dbt_full_load_avg_1m": round(load_full[0], 2),
            "dbt_full_load_avg_5m": round(load_full[1], 2),
            "dbt_incremental_load_avg_1m": round(load_incremental[0], 2),
            "dbt_full_build_s": round(full, 1),
            "dbt_full_build_dbt_cpu_s": round(full_cpu, 1),
            "dbt_incremental_s": round(incremental, 1),
            "dbt_incremental_dbt_cpu_s": round(incremental_cpu, 1),
            "dbt_incremental_vs_full": round(incremental / full, 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not KEEP:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"drop database if exists {DATABASE} with (force)")
