"""`lms simulate`: a deterministic simulated school (OLTP rows, events, truth), or a live stream."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from lms.errors import UsageError


def _parse_date(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise UsageError(f"--start must be a date like 2026-01-05 (got {value!r})") from None


def simulate(
    students: Annotated[int, typer.Option(help="Number of students.")] = 2000,
    courses: Annotated[int, typer.Option(help="Number of courses.")] = 8,
    days: Annotated[int, typer.Option(help="Simulated days from --start.")] = 120,
    seed: Annotated[int, typer.Option(help="Random seed: same arguments + seed, same bytes.")] = 7,
    start: Annotated[
        str, typer.Option(help="First simulated day (UTC), YYYY-MM-DD.")
    ] = "2026-01-05",
    name: Annotated[
        str | None, typer.Option(help="Simulation name (default: seed-<seed>).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output directory (default <state_dir>/simulations/<name>)."),
    ] = None,
    oltp: Annotated[
        bool,
        typer.Option(
            "--oltp/--no-oltp",
            help="Load OLTP rows into PostgreSQL (truncate and reload), or write Parquet under --out.",
        ),
    ] = True,
    cheater_share: Annotated[float, typer.Option(help="Share of students who cheat.")] = 0.01,
    late_rate: Annotated[float, typer.Option(help="Share of events delivered hours late.")] = 0.02,
    duplicate_rate: Annotated[
        float, typer.Option(help="Share of events delivered twice (same event_id).")
    ] = 0.005,
    invalid_rate: Annotated[
        float, typer.Option(help="Rate of extra events that break the contract.")
    ] = 0.001,
    part_lines: Annotated[int, typer.Option(help="Lines per JSONL part file.")] = 1_000_000,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: CPU count); output is the same.")
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Emit events stamped now at --rate events/s.")
    ] = False,
    rate: Annotated[float, typer.Option(help="Live: events per second.")] = 100.0,
    duration: Annotated[
        float | None, typer.Option(help="Live: stop after this many seconds (default: Ctrl-C).")
    ] = None,
    live_out: Annotated[
        str, typer.Option(help="Live: JSONL destination, a file path or '-' for stdout.")
    ] = "-",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
) -> None:
    """Simulate a school: OLTP rows, the event stream a collector would receive, and the truth."""
    from lms.simulator.config import SimulationConfig

    if live and rate <= 0:
        raise UsageError(f"--rate must be positive (got {rate})")
    if duration is not None and duration <= 0:
        raise UsageError(f"--duration must be positive (got {duration})")
    if part_lines < 1:
        raise UsageError(f"--part-lines must be at least 1 (got {part_lines})")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1 (got {workers})")
    cfg = SimulationConfig(
        students=students,
        courses=courses,
        days=days,
        seed=seed,
        start=_parse_date(start),
        cheater_share=cheater_share,
        late_rate=late_rate,
        duplicate_rate=duplicate_rate,
        invalid_rate=invalid_rate,
    )
    if live:
        _run_live(cfg, rate, duration, live_out)
        return
    _run_batch(cfg, name, out, oltp, part_lines, workers, quiet)


def _run_live(cfg: object, rate: float, duration: float | None, live_out: str) -> None:
    from lms.simulator.config import SimulationConfig
    from lms.simulator.live import run_live

    assert isinstance(cfg, SimulationConfig)
    if live_out == "-":
        summary = run_live(cfg, rate, duration, sys.stdout.buffer)
        target = "stdout"
    else:
        path = Path(live_out)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = path.open("ab")
        except OSError as exc:
            raise UsageError(f"cannot write to --live-out {path}: {exc.strerror or exc}") from None
        with fh:
            summary = run_live(cfg, rate, duration, fh)
        target = str(path)
    typer.echo(summary.line(target), err=True)


def _run_batch(
    cfg: object,
    name: str | None,
    out: Path | None,
    oltp: bool,
    part_lines: int,
    workers: int | None,
    quiet: bool,
) -> None:
    from lms.settings import get_settings
    from lms.simulator.config import SimulationConfig
    from lms.simulator.output import ensure_writable

    assert isinstance(cfg, SimulationConfig)
    settings = get_settings()
    directory = out or settings.state_dir / "simulations" / (name or f"seed-{cfg.seed}")
    # Before the heavy imports: a typo in --out should fail in a blink.
    ensure_writable(directory)

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from lms.simulator.batch import run_simulation

    console = Console(stderr=True)
    # A bar on a terminal; on a pipe or CI log, a plain line every ~10% of the shards.
    progress = Progress(
        TextColumn("simulate"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} shards, {task.fields[lines]:,} events"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    )
    step = max(1, cfg.n_shards // 10)
    with progress:
        task = progress.add_task("shards", total=cfg.n_shards, lines=0)

        def on_progress(done: int, total: int, lines: int) -> None:
            progress.update(task, completed=done, lines=lines)
            if not quiet and not console.is_terminal and (done % step == 0 or done == total):
                typer.echo(f"simulate: {done}/{total} shards, {lines:,} events", err=True)

        manifest = run_simulation(
            cfg,
            directory,
            oltp_dsn=settings.oltp_dsn if oltp else None,
            workers=workers,
            part_lines=part_lines,
            on_progress=on_progress,
        )
    events = manifest["events"]
    timings = manifest["timings_s"]
    rate = events["lines"] / timings["generate"] if timings["generate"] else 0.0
    typer.echo(
        f"simulated {cfg.students:,} students, {cfg.courses} courses, {cfg.days} days: "
        f"{events['lines']:,} lines ({events['late']:,} late, {events['duplicates']:,} duplicates, "
        f"{events['invalid']:,} invalid) in {timings['total']:.1f} s ({rate:,.0f} events/s generated); "
        f"OLTP -> {manifest['oltp']['target']}; output in {directory}",
        err=True,
    )
