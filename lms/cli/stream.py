"""`lms stream run JOB|all | list | status | stop`: the PyFlink jobs (Kafka → Elasticsearch).

The jobs run in their own environment, ``streaming/.venv``, as a child process of this command
(``streaming/.venv/bin/python -m streaming.run``). Before launching, this side does what needs
the platform: it resolves the Kafka connector jar with Maven (into ~/.m2 and the shared cache,
once) and exports the reference data the jobs look events up against (questions' reading
times, quizzes' pass marks, course teachers, live-class schedules) from the OLTP database, or
from a simulation's OLTP files with ``--reference-dir``.

Local runs use a Flink mini-cluster inside that process. Checkpoints go to
``LMS_STREAM_CHECKPOINT_DIR`` (default ``<state>/checkpoints/stream``); a restart resumes from the
newest one (state and Kafka offsets), so no window is published twice under another id.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from lms.errors import LmsError, UsageError
from lms.settings import REPO_ROOT, Settings, get_settings

app = typer.Typer(no_args_is_help=True, help="Real-time jobs: PyFlink from Kafka to Elasticsearch.")

STREAM_PYTHON = REPO_ROOT / "streaming" / ".venv" / "bin" / "python"
KAFKA_CONNECTOR = "5.0.0-2.2"
JOBS = ("active-students", "engagement", "attendance", "cheating", "triggers", "late-events")
JOB_HELP = {
    "active-students": "distinct students per course over a sliding window; last-seen presence",
    "engagement": "events per minute per course and type; video watch time per minute",
    "attendance": "who is in each live class, minutes and share per student",
    "cheating": "fast answers, tab switching, concurrent sessions (alerts with evidence)",
    "triggers": "failed quiz -> review chapter; idle student -> re-engagement for the teacher",
    "late-events": "events behind the watermark, counted per type and hour",
}


def connector_jars(report: Any = None) -> list[Path]:
    """The Kafka SQL connector jar, fetched with Maven once (idempotent)."""
    from lms.services.base import TOOLS_DIR, cache_root, maven_copy_dependencies

    out = cache_root() / "downloads" / f"flink-kafka-{KAFKA_CONNECTOR}"
    maven_copy_dependencies(
        TOOLS_DIR / "maven" / "flink-kafka" / "pom.xml",
        out,
        report or (lambda line: typer.echo(line, err=True)),
        f"Flink Kafka SQL connector {KAFKA_CONNECTOR}",
        {"flink.kafka.version": KAFKA_CONNECTOR},
    )
    jars = sorted(out.glob("flink-sql-connector-kafka-*.jar"))
    if not jars:
        raise LmsError(f"no Flink Kafka connector jar in {out} after the Maven download")
    return jars


def _text(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None:
        return None
    try:
        return float(value) if not isinstance(value, str | int | bool) else value
    except (TypeError, ValueError):
        return str(value)


def build_reference(tables: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The jobs' look-up data from OLTP rows (courses, course_teachers, quizzes, questions,
    chapters/topics, live_classes). No personal data: ids, dates and numbers only."""
    teachers: dict[str, list[str]] = {}
    for row in tables.get("course_teachers", []):
        teachers.setdefault(row["course_id"], []).append(row["teacher_id"])
    courses = {
        row["course_id"]: {
            "teacher_ids": sorted(teachers.get(row["course_id"], [])),
            "starts_on": _text(row["starts_on"])[:10],
            "ends_on": _text(row["ends_on"])[:10],
        }
        for row in tables.get("courses", [])
    }
    chapter_topics: dict[str, list[str]] = {}
    for row in tables.get("topics", []):
        chapter_topics.setdefault(row["chapter_id"], []).append(row["topic_id"])
    quizzes = {
        row["quiz_id"]: {"chapter_id": row["chapter_id"], "pass_pct": _text(row.get("pass_pct"))}
        for row in tables.get("quizzes", [])
    }
    questions = {
        row["question_id"]: {
            "quiz_id": row["quiz_id"],
            "topic_id": row["topic_id"],
            "reading_time_s": float(row["reading_time_s"]),
        }
        for row in tables.get("questions", [])
    }
    live_classes = {}
    for row in tables.get("live_classes", []):
        live_classes[row["live_class_id"]] = {
            "course_id": row["course_id"],
            "starts_at": _instant(row["starts_at"]),
            "ends_at": _instant(row["ends_at"]),
        }
        course = courses.get(row["course_id"])
        if course is not None and row.get("teacher_id"):
            course["teacher_ids"] = sorted({*course["teacher_ids"], row["teacher_id"]})
    return {
        "courses": courses,
        "quizzes": quizzes,
        "questions": questions,
        "live_classes": live_classes,
        "chapter_topics": chapter_topics,
    }


def _instant(value: Any) -> str:
    """A timestamp as ISO-8601 UTC (naive values are UTC: the OLTP columns are timestamptz)."""
    import pandas as pd

    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    text: str = stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[:-3] + "Z"


REFERENCE_TABLES = (
    "courses",
    "course_teachers",
    "topics",
    "quizzes",
    "questions",
    "live_classes",
)


def reference_from_dir(directory: Path) -> dict[str, Any]:
    """From a simulation's OLTP Parquet files (``lms simulate --no-oltp``: ``<out>/oltp``)."""
    import pandas as pd

    base = directory / "oltp" if (directory / "oltp").is_dir() else directory
    tables = {}
    for name in REFERENCE_TABLES:
        path = base / f"{name}.parquet"
        if not path.exists():
            raise UsageError(f"{path} not found: point --reference-dir at a simulation's folder")
        tables[name] = pd.read_parquet(path).to_dict("records")
    return build_reference(tables)


def reference_from_oltp(settings: Settings) -> dict[str, Any]:
    import psycopg
    from psycopg.rows import dict_row

    columns = {
        "courses": "course_id, starts_on, ends_on",
        "course_teachers": "course_id, teacher_id",
        "topics": "topic_id, chapter_id",
        "quizzes": "quiz_id, chapter_id, pass_pct",
        "questions": "question_id, quiz_id, topic_id, reading_time_s",
        "live_classes": "live_class_id, course_id, teacher_id, starts_at, ends_at",
    }
    try:
        with psycopg.connect(settings.oltp_dsn, connect_timeout=10) as conn:
            cur = conn.cursor(row_factory=dict_row)
            tables = {}
            for name, cols in columns.items():
                tables[name] = cur.execute(f"select {cols} from lms.{name}").fetchall()
    except psycopg.Error as exc:
        raise LmsError(
            f"cannot read reference data from the OLTP database ({type(exc).__name__}); "
            "start it with `lms services up postgres`, or pass --reference-dir"
        ) from None
    return build_reference(tables)


def stream_dir(settings: Settings) -> Path:
    path = settings.state_dir / "stream"
    path.mkdir(parents=True, exist_ok=True)
    return path


def job_env(
    settings: Settings, reference: Path, jars: list[Path], extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "LMS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap_servers,
            "LMS_KAFKA_TOPIC_RAW": settings.kafka_topic_raw,
            "LMS_ES_URL": settings.es_base_url,
            "LMS_STREAM_INDEX_PREFIX": settings.stream_index_prefix,
            "LMS_STATE_DIR": str(settings.state_dir),
            "LMS_STREAM_REFERENCE": str(reference),
            "LMS_STREAM_JARS": ",".join(str(j) for j in jars),
            # The jobs import `streaming` from the repository root.
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    env.setdefault(
        "LMS_STREAM_CHECKPOINT_DIR", (settings.state_dir / "checkpoints" / "stream").as_uri()
    )
    env.update(extra or {})
    return env


def launch(
    settings: Settings,
    jobs: list[str],
    *,
    reference_dir: Path | None = None,
    reference: dict[str, Any] | None = None,
    fresh: bool = False,
    log_path: Path | None = None,
    extra_env: dict[str, str] | None = None,
    nice: int = 0,
) -> subprocess.Popen[bytes]:
    """Start the jobs as a child process in their own session; the caller owns the pid.

    Reference data: ``reference`` as given, else from ``reference_dir``, else from the OLTP db.
    ``nice`` lowers the CPU priority of the jobs' processes (the JVM and the Python workers
    inherit it)."""
    if not STREAM_PYTHON.exists():
        raise LmsError(f"{STREAM_PYTHON} is missing: run `make setup` to create streaming/.venv")
    unknown = [j for j in jobs if j not in (*JOBS, "all")]
    if unknown:
        raise UsageError(f"unknown job {unknown[0]!r}; known: {', '.join(JOBS)} or all")
    jars = connector_jars()
    if reference is None:
        reference = (
            reference_from_dir(reference_dir) if reference_dir else reference_from_oltp(settings)
        )
    ref_path = stream_dir(settings) / "reference.json"
    ref_path.write_text(json.dumps(reference))
    cmd = [str(STREAM_PYTHON), "-m", "streaming.run", *jobs]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]  # nice execs the command: the pid stays the job's
    if fresh:
        cmd.append("--fresh")
    out = log_path.open("ab") if log_path else None
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=job_env(settings, ref_path, jars, extra_env),
        stdout=out,
        stderr=subprocess.STDOUT if out else None,
        start_new_session=True,
    )
    if nice:
        _lower_session_priority(proc.pid, nice)
    return proc


def _lower_session_priority(pid: int, nice: int) -> None:
    """Where the kernel groups processes by session for scheduling (autogroup, on by default on
    desktop and many server kernels), a process's own nice only ranks it within its session: the
    job's new session would still get an equal share of the cores beside the caller's. Give the
    session itself the lower priority too; without autogroup there is no such file and the
    processes' nice is what counts."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(f"{nice}\n")


def stop_pid(pid: int, timeout_s: float = 30.0) -> bool:
    """SIGTERM the job's process group (the Python driver, its JVM and Python workers)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.3)
    os.killpg(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_detached(
    settings: Settings,
    jobs: list[str],
    reference_dir: Path | None = None,
    directory: Path | None = None,
    nice: int = 0,
) -> tuple[int, Path]:
    """Start in the background (the demo's way): pid file + log under ``directory`` (default
    <state>/stream)."""
    name = "all" if "all" in jobs else "-".join(jobs)
    where = directory or stream_dir(settings)
    where.mkdir(parents=True, exist_ok=True)
    pidf = where / f"{name}.pid"
    if pidf.exists() and _alive(int(pidf.read_text())):
        return int(pidf.read_text()), where / f"{name}.log"
    log_path = where / f"{name}.log"
    proc = launch(settings, jobs, reference_dir=reference_dir, log_path=log_path, nice=nice)
    pidf.write_text(str(proc.pid))
    return proc.pid, log_path


def stop_detached(settings: Settings, directory: Path | None = None) -> list[str]:
    stopped = []
    for pidf in sorted((directory or stream_dir(settings)).glob("*.pid")):
        pid = int(pidf.read_text())
        if _alive(pid) and stop_pid(pid):
            stopped.append(f"{pidf.stem} (pid {pid})")
        pidf.unlink(missing_ok=True)
    return stopped


@app.command()
def run(
    jobs: Annotated[list[str], typer.Argument(help=f"Job names, or all ({', '.join(JOBS)}).")],
    reference_dir: Annotated[
        Path | None,
        typer.Option(help="Read reference data from a simulation folder instead of the OLTP db."),
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Ignore earlier checkpoints (start from committed offsets).")
    ] = False,
    detach: Annotated[
        bool, typer.Option(help="Run in the background (pid file and log in <state>/stream).")
    ] = False,
) -> None:
    """Run jobs on a local Flink mini-cluster until interrupted (or --detach)."""
    settings = get_settings()
    if detach:
        pid, log_path = start_detached(
            settings, jobs, reference_dir, nice=settings.stream_nice or 0
        )
        typer.echo(f"streaming jobs running, pid {pid}, log {log_path}")
        return
    proc = launch(
        settings, jobs, reference_dir=reference_dir, fresh=fresh, nice=settings.stream_nice or 0
    )
    # The jobs run in their own process group: pass a stop request on to all of it.
    signal.signal(signal.SIGTERM, lambda *_: stop_pid(proc.pid))
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        stop_pid(proc.pid)
        raise
    if code != 0:
        raise LmsError(f"streaming jobs exited with status {code} (see the output above)")


@app.command("list")
def list_jobs() -> None:
    """The jobs and what each publishes."""
    for name in JOBS:
        typer.echo(f"{name:<16} {JOB_HELP[name]}")


@app.command()
def status() -> None:
    """Background jobs started with --detach (or by the demo)."""
    settings = get_settings()
    found = False
    for pidf in sorted(stream_dir(settings).glob("*.pid")):
        pid = int(pidf.read_text())
        state = "running" if _alive(pid) else "not running"
        typer.echo(f"{pidf.stem:<16} pid {pid} {state}")
        found = True
    if not found:
        typer.echo("no background streaming jobs")


@app.command()
def stop() -> None:
    """Stop the background jobs by their pid files."""
    stopped = stop_detached(get_settings())
    typer.echo("stopped: " + ", ".join(stopped) if stopped else "nothing to stop")
