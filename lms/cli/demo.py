"""`lms demo`: the platform end to end on local services, ending with a summary of what is where.

Each step is idempotent, so a second run reuses the services and rewrites the same school.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lms.errors import UsageError
from lms.settings import Settings, get_settings


def _step(title: str) -> float:
    typer.echo(f"\n== {title}", err=True)
    return time.monotonic()


def _done(started: float) -> None:
    typer.echo(f"   ({time.monotonic() - started:.0f} s)", err=True)


def demo(
    students: Annotated[int, typer.Option(help="Students in the simulated school.")] = 2000,
    courses: Annotated[int, typer.Option(help="Courses in the simulated school.")] = 6,
    days: Annotated[int, typer.Option(help="Days of term to simulate.")] = 90,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 7,
) -> None:
    """Start the services, simulate a school, and print where everything is."""
    if students < 1 or courses < 1 or days < 1:
        raise UsageError("--students, --courses and --days must be at least 1")
    settings = get_settings()
    summary: dict[str, Any] = {}

    from lms.services.manager import ServiceManager

    started = _step("services: install what is missing, start, wait for health")
    manager = ServiceManager(settings, report=lambda line: typer.echo(f"   {line}", err=True))
    statuses = manager.up()
    summary["services"] = {s.name: s.address for s in statuses}
    _done(started)

    started = _step(f"simulate a school: {students} students, {courses} courses, {days} days")
    from lms.simulator.batch import run_simulation
    from lms.simulator.config import SimulationConfig

    out_dir = settings.state_dir / "simulations" / "demo"
    cfg = SimulationConfig(students=students, courses=courses, days=days, seed=seed)
    manifest = run_simulation(cfg, out_dir, oltp_dsn=settings.oltp_dsn)
    summary["simulation"] = {
        "directory": str(out_dir),
        "events": manifest["events"]["lines"],
        "valid_events": manifest["events"]["valid_events"],
        "planted": manifest["planted"],
        "oltp_rows": manifest["oltp"]["rows"],
    }
    _done(started)

    started = _step("ingest: the school's events through the collector into Kafka")
    api_key = _demo_api_key(settings)
    collector_url = _ensure_collector(settings)
    from ingestion.post import post_files

    tally = post_files(out_dir, collector_url, api_key)
    summary["collector"] = {
        "url": collector_url,
        "accepted": tally.accepted,
        "duplicate": tally.duplicate,
        "rejected": tally.rejected,
        "reasons": dict(tally.rejected_reasons),
    }
    typer.echo(f"   {tally.line()}", err=True)
    _done(started)

    started = _step("land: Spark → lake (S3 Parquet) and warehouse raw layer; OLTP snapshots")
    from ingestion.landing.events import land
    from ingestion.landing.snapshots import snapshot
    from ingestion.landing.spark import build_session

    spark = build_session(settings, "lms-demo")
    try:
        landed = land(spark, settings)
        snapshots = snapshot(spark, settings)
    finally:
        spark.stop()
    summary["landing"] = {r.query: r.input_rows for r in landed}
    summary["snapshots"] = {r.table: r.rows for r in snapshots}
    summary["raw_counts"] = _raw_counts(settings)
    _done(started)

    started = _step("stream: PyFlink jobs (Kafka → Elasticsearch live indices), in the background")
    from lms.cli.stream import demo_step

    summary["stream"] = demo_step(settings)
    _done(started)

    started = _step("warehouse: dbt build (staging → marts, features, snapshots, tests), report")
    from lms.warehouse.demo import build_warehouse

    summary["warehouse"] = build_warehouse(settings)
    _done(started)

    _print_summary(settings, summary)


def _demo_dir(settings: Settings) -> Path:
    path = settings.state_dir / "demo"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _demo_api_key(settings: Settings) -> str:
    """The demo's own events:write key, created once and kept (mode 600) in the state dir."""
    from lms.auth.manage import create_key
    from lms.auth.store import PostgresKeyStore

    key_file = _demo_dir(settings) / "api-key"
    store = PostgresKeyStore(settings.platform_dsn)
    if key_file.exists():
        from lms.auth.keys import hash_key

        key = key_file.read_text().strip()
        record = store.find_by_hash(hash_key(key))
        if record is not None and not record.is_revoked:
            return key
    key, _ = create_key(store, f"demo-{int(time.time())}", "events:write")
    key_file.touch(mode=0o600)
    key_file.write_text(key + "\n")
    return key


# The demo's collector is found by its pid file; the pid is only trusted (and signalled) while its
# command line still is `lms collector run`, so a reused pid is never touched.
COLLECTOR_MARKER = "collector"


def _ensure_collector(settings: Settings) -> str:
    """Start the collector for the demo (once), tracked by a pid file so demo-down can stop it."""
    from ingestion.collector.process import CollectorProcess, wait_ready
    from ingestion.collector.settings import get_collector_settings
    from lms.services.base import pid_belongs_to, read_pid_file, write_pid_file

    port = get_collector_settings().collector_port
    pid_file = settings.state_dir / "run" / "collector.pid"
    log = settings.state_dir / "logs" / "collector.log"
    pid = read_pid_file(pid_file)
    if pid is not None and pid_belongs_to(pid, COLLECTOR_MARKER):
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout_s=60, log_path=log)
        return url
    collector = CollectorProcess(port=port, log_path=log, env=os.environ)
    collector.start(timeout_s=60)
    assert collector.pid is not None
    write_pid_file(pid_file, collector.pid)
    typer.echo(f"   collector started (pid {collector.pid}, log {log})", err=True)
    return collector.url


def _raw_counts(settings: Settings) -> dict[str, int]:
    import psycopg

    with psycopg.connect(settings.warehouse_dsn) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = %s "
                "order by table_name",
                (settings.raw_schema,),
            )
        ]
        return {
            t: conn.execute(f"select count(*) from {settings.raw_schema}.{t}").fetchone()[0]  # type: ignore[index]
            for t in tables
        }


def demo_down() -> None:
    """Stop what `lms demo` started: its collector, then the local services (data kept)."""
    from lms.services.base import pid_belongs_to, read_pid_file, terminate
    from lms.services.manager import ServiceManager

    settings = get_settings()
    pid_file = settings.state_dir / "run" / "collector.pid"
    pid = read_pid_file(pid_file)
    if pid is not None and pid_belongs_to(pid, COLLECTOR_MARKER):
        terminate(pid, COLLECTOR_MARKER, signal.SIGTERM, 20)
        typer.echo(f"collector     stopped (pid {pid})")
    pid_file.unlink(missing_ok=True)
    from lms.cli.stream import demo_down_step

    demo_down_step(settings)
    ServiceManager(settings, report=typer.echo).down()


def _print_summary(settings: Settings, summary: dict[str, Any]) -> None:
    sim = summary["simulation"]
    lines = [
        "",
        "LMS platform demo: what is where",
        "",
        "Services (lms services status):",
        *(f"  {name:<14} {address}" for name, address in summary["services"].items()),
        "",
        "OLTP (PostgreSQL):",
        f"  {settings.pg_dsn(settings.pg_oltp_db).replace(settings.pg_password, '***')}",
        "  schema lms: "
        + ", ".join(f"{table} {rows:,}" for table, rows in sim["oltp_rows"].items()),
        "",
        "Simulated event stream (JSONL, arrival order):",
        f"  {sim['directory']}",
        f"  {sim['events']:,} lines ({sim['valid_events']:,} contract-valid)",
        f"  truth: {Path(sim['directory']) / 'truth'}",
        f"  planted: {json.dumps(sim['planted'].get('cohorts', {}))}, "
        f"cheaters {sim['planted'].get('cheaters', 0)}",
        "",
        f"Collector: {summary['collector']['url']}/v1/events (OpenAPI: /docs)",
        f"  accepted {summary['collector']['accepted']:,}, duplicate "
        f"{summary['collector']['duplicate']:,}, rejected (dead-lettered) "
        f"{summary['collector']['rejected']:,}",
        f"  Kafka {settings.kafka_bootstrap_servers}: topics {settings.kafka_topic_raw}, "
        f"{settings.kafka_topic_dead_letter}",
        "",
        "Lake (S3 at " + settings.s3_endpoint_url + "):",
        f"  {settings.lake_root}/events/event_date=…/event_type=…/  "
        f"({summary['landing'].get('land_events_lake', 0):,} events landed this run)",
        f"  {settings.lake_root}/oltp/<table>/snapshot_date=…/  (personal data removed)",
        "",
        "Warehouse raw layer (PostgreSQL "
        + settings.pg_dsn().replace(settings.pg_password, "***")
        + "):",
        *(
            f"  {settings.raw_schema}.{table:<22} {rows:,} rows"
            for table, rows in summary["raw_counts"].items()
        ),
        "",
        f"Streaming jobs (lms stream status; pid {summary['stream']['pid']}): "
        f"{summary['stream']['indices']} on {summary['stream']['es']}",
        f"  log {summary['stream']['log']}; live API: uvicorn serving.app:app_factory --factory",
        "",
        "Warehouse (dbt; schemas staging, intermediate, marts, features, snapshots):",
        *(f"  {t:<32} {n:,} rows" for t, n in summary["warehouse"]["rows"].items()),
        f"  report: {summary['warehouse']['report']}  (lms report)",
        f"  docs: {summary['warehouse']['dbt_docs']}",
        "",
        "Next: lms --help; docs/architecture.md",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
