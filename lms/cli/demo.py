"""`lms demo` / `lms demo-down`: the platform end to end on local services.

services → simulate a school → start the streaming jobs → post the events through the collector →
land them with Spark → the ML pipeline flow (expectations, dbt build, train, register, score) →
the prediction service → a summary of what is where, with example API calls and their answers.
Each step is idempotent, so a second run reuses the services and rewrites the same school.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lms.errors import UsageError
from lms.settings import get_settings

DIR_HELP = "Where the demo keeps its school, logs, pid files and keys (default <state>/demo)."


def _report(line: str) -> None:
    typer.echo(f"   {line}", err=True)


def demo(
    students: Annotated[int, typer.Option(help="Students in the simulated school.")] = 2000,
    courses: Annotated[int, typer.Option(help="Courses in the simulated school.")] = 6,
    days: Annotated[int, typer.Option(help="Days of term to simulate.")] = 90,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 7,
    directory: Annotated[Path | None, typer.Option("--dir", help=DIR_HELP)] = None,
) -> None:
    """Run the whole platform on a simulated school and print where everything is."""
    if students < 1 or courses < 1 or days < 1:
        raise UsageError("--students, --courses and --days must be at least 1")
    from lms.demo import cpu, steps
    from lms.demo.summary import render
    from lms.simulator.config import SimulationConfig

    settings = get_settings()
    dirs = steps.DemoDirs(directory or settings.state_dir / "demo").create()
    summary: dict[str, Any] = {"timings": {}, "cpu_s": {}}

    def step(key: str, title: str, fn: Any, *args: Any) -> Any:
        typer.echo(f"\n== {title}", err=True)
        started, cpu_before = time.monotonic(), cpu.sample()
        try:
            result = fn(*args)
        except BaseException:
            if steps.background_pid_files(dirs):
                # left running for their logs and state; say how to stop them before the error
                typer.echo(
                    "   the demo's background processes keep running: "
                    f"lms demo-down --dir {dirs.root} stops them",
                    err=True,
                )
            raise
        summary["timings"][key] = round(time.monotonic() - started, 1)
        # what shared the cores during the step: its wall time alone does not say
        summary["cpu_s"][key] = cpu.used_between(cpu_before, cpu.sample())
        typer.echo(f"   ({summary['timings'][key]:.0f} s)", err=True)
        return result

    summary["services"] = step(
        "services",
        "services: install what is missing, start, wait for health",
        steps.start_services,
        settings,
        _report,
    )
    cfg = SimulationConfig(students=students, courses=courses, days=days, seed=seed)
    summary["simulation"] = step(
        "simulate",
        f"simulate a school: {students} students, {courses} courses, {days} days",
        steps.simulate,
        settings,
        dirs,
        cfg,
    )
    summary["stream"] = step(
        "stream",
        "stream: PyFlink jobs (Kafka → Elasticsearch live indices), in the background",
        steps.start_streaming,
        settings,
        dirs,
    )
    summary["prefect"] = step(
        "prefect",
        "orchestration: a Prefect server (API and UI) for the pipeline flow, in the background",
        steps.launch_prefect_server,
        settings,
        dirs,
        _report,
    )
    summary["collector"] = step(
        "ingest",
        "ingest: the school's events through the collector into Kafka",
        steps.ingest,
        settings,
        dirs,
        _report,
    )
    summary["landing"] = step(
        "land",
        "land: Spark → lake (S3 Parquet) and warehouse raw layer; OLTP snapshots",
        steps.land,
        settings,
        dirs,
        _report,
    )
    trained = step(
        "pipeline",
        "pipeline flow (Prefect): expectations → dbt build → train → register → score",
        steps.pipeline,
        settings,
        dirs,
        _report,
        summary["prefect"],
    )
    summary["models"], summary["scored"] = trained["models"], trained["scored"]
    summary["warehouse"] = step(
        "report", "warehouse: headline tables and the HTML report", steps.warehouse, settings, dirs
    )
    summary["serve"] = step(
        "serve",
        "serve: the prediction service, and three calls an LMS makes",
        steps.serve,
        settings,
        dirs,
        _report,
    )
    summary["live"] = steps.live_counts(settings)
    summary["stream"]["lag"] = steps.stream_lag(settings)
    summary["settings"] = steps.environment_overrides(os.environ)
    summary["summary_file"] = str(dirs.summary)
    dirs.summary.write_text(json.dumps(summary, indent=2, default=str))
    sys.stdout.write(render(settings, summary))


def demo_down(
    directory: Annotated[Path | None, typer.Option("--dir", help=DIR_HELP)] = None,
    keep_services: Annotated[
        bool, typer.Option(help="Stop only the demo's own processes, not the services.")
    ] = False,
) -> None:
    """Stop what `lms demo` started: prediction service, collector, Prefect server, streaming
    jobs, services."""
    from lms.demo import steps
    from lms.services.manager import ServiceManager

    settings = get_settings()
    dirs = steps.DemoDirs(directory or settings.state_dir / "demo")
    steps.stop_processes(settings, dirs, typer.echo)
    if not keep_services:
        ServiceManager(settings, report=typer.echo).down()
