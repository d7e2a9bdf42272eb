"""The demo's steps, in the order `lms demo` runs them; each returns what the summary shows.

Every step is idempotent: a second `lms demo` reuses the running services and processes and
rewrites the same school (the OLTP load truncates, landing and scoring are keyed by ids). The
processes the demo starts in the background (collector, streaming jobs, prediction service) are
recorded by pid under the demo's directory, so `lms demo-down` stops exactly those.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from lms.process import PrefectServerProcess, ServerProcess
from lms.settings import Settings

Report = Callable[[str], None]


@dataclass(frozen=True)
class DemoDirs:
    """Where one demo keeps its files: the school, logs, pid files, API keys, the summary."""

    root: Path

    @property
    def school(self) -> Path:
        return self.root / "school"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def stream(self) -> Path:
        return self.root / "stream"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    def key_file(self, name: str) -> Path:
        return self.root / f"{name}.key"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def create(self) -> DemoDirs:
        for path in (self.root, self.logs, self.run, self.stream):
            path.mkdir(parents=True, exist_ok=True)
        return self


# --- services and keys ---------------------------------------------------------------------


def start_services(settings: Settings, report: Report) -> dict[str, str]:
    from lms.services.manager import ServiceManager

    statuses = ServiceManager(settings, report=report).up()
    return {s.name: s.address for s in statuses}


def api_key(settings: Settings, dirs: DemoDirs, name: str, scopes: str) -> str:
    """The demo's key for ``scopes``, created once and kept (mode 600) in the demo's directory;
    a revoked or unknown one is replaced."""
    from lms.auth.keys import hash_key
    from lms.auth.manage import create_key
    from lms.auth.store import PostgresKeyStore

    store = PostgresKeyStore(settings.platform_dsn)
    path = dirs.key_file(name)
    if path.exists():
        key = path.read_text().strip()
        record = store.find_by_hash(hash_key(key))
        if record is not None and not record.is_revoked:
            return key
    key, _ = create_key(store, f"demo-{name}-{int(time.time())}", scopes)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


# --- background processes ------------------------------------------------------------------

# A pid from a pid file is trusted (and signalled) only while its command line still carries the
# marker: a reused pid is never touched.
MARKERS = {"collector": "collector", "serve": "serve", "prefect": "prefect"}


def _running(dirs: DemoDirs, name: str) -> int | None:
    from lms.services.base import pid_belongs_to, read_pid_file

    pid = read_pid_file(dirs.pid_file(name))
    return pid if pid is not None and pid_belongs_to(pid, MARKERS[name]) else None


def _ensure_server(
    dirs: DemoDirs,
    key: str,
    server: ServerProcess,
    report: Report,
    *,
    wait_s: float,
    start_s: float,
) -> str:
    """``server`` started once, tracked by the pid file ``key``; when the demo's earlier one is
    still running, wait (``wait_s``) until it is ready instead."""
    if _running(dirs, key) is not None:
        _wait_for(dirs, key, server, wait_s)
    else:
        _start_tracked(dirs, key, server, report, start_s)
    return server.url


def _start_tracked(
    dirs: DemoDirs, key: str, server: ServerProcess, report: Report, start_s: float | None
) -> None:
    """Start ``server`` and record its pid in the pid file ``key``: ready within ``start_s``,
    or with None launched only (the caller waits later, with `_wait_for`)."""
    from lms.services.base import write_pid_file

    if start_s is None:
        server.launch()
    else:
        server.start(timeout_s=start_s)
    assert server.pid is not None
    write_pid_file(dirs.pid_file(key), server.pid)
    state = "starting" if start_s is None else "started"
    report(f"{server.name} {state} (pid {server.pid}, log {server.log_path})")


def _wait_for(dirs: DemoDirs, key: str, server: ServerProcess, wait_s: float) -> None:
    """Until ``server``, started earlier and tracked by the pid file ``key``, is ready; at once
    an error with its log if that process has gone."""
    server.wait_ready(wait_s, alive=lambda: _running(dirs, key) is not None)


def ensure_collector(dirs: DemoDirs, report: Report) -> str:
    """The collector on its configured port (LMS_COLLECTOR_PORT), started once."""
    from ingestion.collector.process import CollectorProcess
    from ingestion.collector.settings import get_collector_settings

    port = get_collector_settings().collector_port
    collector = CollectorProcess(port=port, log_path=dirs.logs / "collector.log", env=os.environ)
    return _ensure_server(dirs, "collector", collector, report, wait_s=60, start_s=90)


def ensure_prediction_service(dirs: DemoDirs, report: Report) -> str:
    """`lms serve` on its configured port (LMS_SERVE_PORT), started once, ready when the
    promoted models are loaded."""
    from lms.process import PredictionServiceProcess
    from serving.settings import ServeSettings

    service = PredictionServiceProcess(
        port=ServeSettings().port, log_path=dirs.logs / "serve.log", env=os.environ
    )
    return _ensure_server(dirs, "serve", service, report, wait_s=90, start_s=180)


def _prefect_server(settings: Settings, dirs: DemoDirs) -> PrefectServerProcess:
    home = os.environ.get("PREFECT_HOME") or str(settings.state_dir / "prefect")
    return PrefectServerProcess(
        port=settings.prefect_port,
        log_path=dirs.logs / "prefect.log",
        env={**os.environ, "PREFECT_HOME": home},
    )


def launch_prefect_server(settings: Settings, dirs: DemoDirs, report: Report) -> dict[str, Any]:
    """The pipeline flow's Prefect server (API and UI), launched without waiting: its start-up
    (a database migration and a web app, tens of seconds on a busy machine) overlaps ingest and
    landing. A server named by PREFECT_API_URL is used as it is."""
    if os.environ.get("PREFECT_API_URL"):
        return {"api": os.environ["PREFECT_API_URL"], "ui": None, "own": False}
    server = _prefect_server(settings, dirs)
    if _running(dirs, "prefect") is None:
        _start_tracked(dirs, "prefect", server, report, start_s=None)
    return {"api": server.api_url, "ui": server.url, "own": True}


def background_pid_files(dirs: DemoDirs) -> list[Path]:
    """The pid files of what the demo has started in the background so far."""
    return sorted([*dirs.run.glob("*.pid"), *dirs.stream.glob("*.pid")])


def stop_processes(settings: Settings, dirs: DemoDirs, report: Report) -> None:
    """Stop what the demo started in the background: prediction service, collector, Prefect
    server, streaming."""
    import signal

    from lms.cli.stream import stop_detached
    from lms.services.base import terminate

    for name, label in (
        ("serve", "prediction service"),
        ("collector", "collector"),
        ("prefect", "Prefect server"),
    ):
        pid = _running(dirs, name)
        if pid is not None:
            terminate(pid, MARKERS[name], signal.SIGTERM, 20)
            report(f"{label:<18} stopped (pid {pid})")
        dirs.pid_file(name).unlink(missing_ok=True)
    for stopped in stop_detached(settings, directory=dirs.stream):
        report(f"{'streaming':<18} stopped {stopped}")


# --- the data path -------------------------------------------------------------------------


def simulate(settings: Settings, dirs: DemoDirs, cfg: Any) -> dict[str, Any]:
    from lms.simulator.batch import run_simulation

    manifest = run_simulation(cfg, dirs.school, oltp_dsn=settings.oltp_dsn)
    return {
        "directory": str(dirs.school),
        "events": manifest["events"]["lines"],
        "valid_events": manifest["events"]["valid_events"],
        "invalid_events": manifest["events"]["invalid"],
        "planted": manifest["planted"],
        "oltp_rows": manifest["oltp"]["rows"],
    }


# The demo replays a whole term through the live jobs in minutes, far faster than a school
# produces it; at normal priority that backlog takes half the machine from landing and dbt. At a
# lower priority the jobs get the cores the batch steps leave idle, and catch up in the
# background (the summary says how far behind they are).
DEMO_STREAM_NICE = 10


def start_streaming(settings: Settings, dirs: DemoDirs) -> dict[str, Any]:
    """Every PyFlink job in one background process; it reads the topic from its start, so it
    can be started before the events arrive."""
    from lms.cli.stream import start_detached

    nice = DEMO_STREAM_NICE if settings.stream_nice is None else settings.stream_nice
    pid, log = start_detached(settings, ["all"], directory=dirs.stream, nice=nice)
    return {
        "pid": pid,
        "log": str(log),
        "nice": nice,
        "index_prefix": settings.stream_index_prefix,
        "es": settings.es_base_url,
    }


def stream_lag(settings: Settings) -> int | None:
    """Events on the raw topic the live jobs have not processed yet, by the Kafka offsets they
    committed (Flink commits them at each checkpoint); None when Kafka does not answer."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    servers = settings.kafka_bootstrap_servers
    try:
        admin = KafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=10_000)
        try:
            group = settings.stream_group_id
            committed = admin.list_group_offsets({group: None}).get(group, {})
        finally:
            admin.close()
        consumer = KafkaConsumer(bootstrap_servers=servers)
        try:
            topic = settings.kafka_topic_raw
            parts = [TopicPartition(topic, n) for n in consumer.partitions_for_topic(topic) or ()]
            starts, ends = consumer.beginning_offsets(parts), consumer.end_offsets(parts)
        finally:
            consumer.close()
    except KafkaError:
        return None
    done = {p: committed[p].offset if p in committed else starts[p] for p in parts}
    return sum(max(0, ends[p] - done[p]) for p in parts)


def ingest(settings: Settings, dirs: DemoDirs, report: Report) -> dict[str, Any]:
    from ingestion.post import post_files

    key = api_key(settings, dirs, "events", "events:write")
    url = ensure_collector(dirs, report)
    tally = post_files(dirs.school, url, key)
    report(tally.line())
    return {
        "url": url,
        "accepted": tally.accepted,
        "duplicate": tally.duplicate,
        "rejected": tally.rejected,
        "reasons": dict(tally.rejected_reasons),
        "topics": [settings.kafka_topic_raw, settings.kafka_topic_dead_letter],
    }


@contextlib.contextmanager
def output_to(log: Path, report: Report) -> Iterator[None]:
    """Send everything written to this process's stdout and stderr to ``log`` meanwhile.

    File descriptors, not ``sys.stdout``: the JVM Spark starts inherits them, and its Ivy report,
    warnings and stack traces would otherwise bury the demo's own lines.
    """
    report(f"output: {log}")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with log.open("ab") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def land(settings: Settings, dirs: DemoDirs, report: Report) -> dict[str, Any]:
    """Spark: Kafka → lake (Parquet on S3) and the warehouse raw layer; OLTP snapshots."""
    from ingestion.landing.run import land_all

    with output_to(dirs.logs / "land.log", report):
        landed, snapshots = land_all(settings, "lms-demo")
    return {
        "queries": {r.query: r.input_rows for r in landed},
        "snapshots": {r.table: r.rows for r in snapshots},
        "raw_counts": raw_counts(settings),
        "lake": f"{settings.lake_root}/events/",
    }


def raw_counts(settings: Settings) -> dict[str, int]:
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
            t: int(
                conn.execute(f'select count(*) from "{settings.raw_schema}"."{t}"').fetchone()[0]
            )  # type: ignore[index]
            for t in tables
        }


def pipeline(
    settings: Settings, dirs: DemoDirs, report: Report, prefect: Mapping[str, Any]
) -> dict[str, Any]:
    """The ML pipeline flow without its landing stage (done above): raw expectations → dbt
    build → feature expectations → train/evaluate/register → batch score → at-risk mart; on
    the Prefect server ``prefect`` (from `launch_prefect_server`)."""
    from flows.pipeline import pipeline_flow  # first: it sets Prefect's home

    if prefect["own"]:
        # Launched without waiting (above); if it died on the way, say so now, with its log.
        _wait_for(dirs, "prefect", _prefect_server(settings, dirs), 180)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        output_to(dirs.logs / "pipeline.log", report),
        temporary_settings(updates={PREFECT_API_URL: prefect["api"]}),
    ):
        result = pipeline_flow(
            land_events=False, validate_data=True, truth_dir=str(dirs.school / "truth")
        )
    return {"models": result["trained"], "scored": result["scored"]}


WAREHOUSE_TABLES = (
    "marts.fct_events",
    "marts.fct_quiz_attempts",
    "marts.dim_student",
    "features.student_course_asof",
    "marts.rpt_students_at_risk",
)


def warehouse(settings: Settings, dirs: DemoDirs) -> dict[str, Any]:
    """Row counts of the headline tables and the static HTML report."""
    from lms.warehouse.dbt import dbt_target_path
    from lms.warehouse.report import write_report

    report_path = write_report(dirs.root / "warehouse-report.html", settings)
    prefix = settings.dbt_schema_prefix
    counts: dict[str, int] = {}
    with psycopg.connect(settings.warehouse_dsn) as conn:
        for table in WAREHOUSE_TABLES:
            schema, name = table.split(".")
            exists = conn.execute(
                "select 1 from information_schema.tables where table_schema = %s "
                "and table_name = %s",
                (prefix + schema, name),
            ).fetchone()
            if exists:
                row = conn.execute(f'select count(*) from "{prefix}{schema}"."{name}"').fetchone()
                counts[prefix + table] = int(row[0]) if row else 0
        at_risk = conn.execute(
            f'select risk_band, count(*) from "{prefix}marts".rpt_students_at_risk '
            "group by risk_band order by risk_band"
        ).fetchall()
    return {
        "rows": counts,
        "at_risk_bands": {band: int(n) for band, n in at_risk},
        "report": str(report_path),
        "dbt_docs": str(dbt_target_path(settings) / "index.html"),
    }


def live_counts(settings: Settings) -> dict[str, int]:
    """Documents per live index the streaming jobs have written so far."""
    try:
        response = httpx.get(
            f"{settings.es_base_url}/_cat/indices/{settings.stream_index_prefix}*",
            params={"format": "json", "h": "index,docs.count"},
            timeout=10,
        )
        response.raise_for_status()
    except httpx.HTTPError:
        return {}
    return {row["index"]: int(row["docs.count"] or 0) for row in response.json()}


# --- serving and the example calls ---------------------------------------------------------

SERVE_SCOPES = "predictions:read,alerts:read,live:read"


def serve(settings: Settings, dirs: DemoDirs, report: Report) -> dict[str, Any]:
    key = api_key(settings, dirs, "lms-backend", SERVE_SCOPES)
    url = ensure_prediction_service(dirs, report)
    return {
        "url": url,
        "key_file": str(dirs.key_file("lms-backend")),
        "scopes": SERVE_SCOPES,
        "examples": example_calls(settings, url, key),
    }


def riskiest(settings: Settings) -> tuple[str, str] | None:
    """The (student, course) with the highest dropout risk in the latest batch scores."""
    with psycopg.connect(settings.warehouse_dsn) as conn:
        row = conn.execute(
            f'select student_id, course_id from "{settings.ml_schema}".student_course_scores '
            f'where as_of_date = (select max(as_of_date) from "{settings.ml_schema}".'
            "student_course_scores) order by dropout_risk desc, student_id limit 1"
        ).fetchone()
    return (str(row[0]), str(row[1])) if row else None


def example_calls(settings: Settings, url: str, key: str) -> list[dict[str, Any]]:
    """Three calls an LMS makes, against the running service, with their real answers."""
    pick = riskiest(settings)
    if pick is None:
        return []
    student, course = pick
    paths = [
        f"/v1/students/{student}/courses/{course}/dropout-risk",
        f"/v1/students/{student}/courses/{course}/next-chapters?k=3",
        f"/v1/courses/{course}/at-risk?limit=3",
    ]
    calls = []
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as client:
        for path in paths:
            response = client.get(path)
            calls.append(
                {
                    "path": path,
                    "status": response.status_code,
                    "model_version": response.headers.get("x-model-version"),
                    "body": response.json(),
                }
            )
    return calls


def environment_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """The LMS_* settings this demo ran with (no secrets), for the summary."""
    hidden = ("PASSWORD", "KEY", "SECRET", "TOKEN", "DSN")
    return {
        k: v
        for k, v in sorted(environ.items())
        if k.startswith("LMS_") and not any(h in k for h in hidden)
    }
