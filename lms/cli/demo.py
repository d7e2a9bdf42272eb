"""`lms demo`: the platform end to end on local services, ending with a summary of what is where.

Each step is idempotent, so a second run reuses the services and rewrites the same school.
"""

from __future__ import annotations

import json
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

    _print_summary(settings, summary)


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
        "Next: lms --help; docs/architecture.md",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
