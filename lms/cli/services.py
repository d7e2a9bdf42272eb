"""`lms services up | down | status | logs`: the platform's local services.

Services: postgres, kafka, s3, elasticsearch, bigquery (aliases pg, es, bq). See docs/services.md.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Annotated

import typer

from lms.errors import UsageError
from lms.services.base import ServiceStatus, display_path
from lms.services.manager import SERVICE_NAMES, ServiceManager, default_reporter, resolve_names
from lms.settings import get_settings

app = typer.Typer(
    no_args_is_help=True,
    help=f"Local services on 127.0.0.1: {', '.join(SERVICE_NAMES)}.",
)

NamesArg = Annotated[
    list[str] | None,
    typer.Argument(
        help=f"Services ({', '.join(SERVICE_NAMES)}; aliases pg, es, bq). Default: all.",
        show_default=False,
    ),
]


def _manager() -> ServiceManager:
    return ServiceManager(get_settings(), report=default_reporter())


def _row(st: ServiceStatus) -> str:
    pid = str(st.pid) if st.pid else "-"
    line = f"{st.name:<13} {st.health:<9} {st.address:<24} pid {pid:<8} log {display_path(Path(st.log))}"
    if st.detail:
        line += f"  ({st.detail})"
    return line


@app.command()
def up(
    names: NamesArg = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds to wait for each service to become healthy (default per service)."
        ),
    ] = None,
) -> None:
    """Install what is missing, start the services and wait until they are healthy."""
    chosen = resolve_names(names)
    manager = _manager()
    started = time.monotonic()
    statuses = manager.up(chosen, timeout=timeout)
    if all(st.action == "already running" for st in statuses):
        typer.echo(f"all {len(statuses)} requested services already healthy; nothing to do")
    else:
        typer.echo(f"ready in {time.monotonic() - started:.0f}s:")
    for st in statuses:
        typer.echo(_row(st))


@app.command()
def down(
    names: NamesArg = None,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the services' data (irreversible).")
    ] = False,
) -> None:
    """Stop the services this project started (data kept unless --purge)."""
    chosen = resolve_names(names)
    statuses = _manager().down(chosen, purge=purge)
    for st in statuses:
        typer.echo(f"{st.name:<13} {st.action}{'; data deleted' if purge else ''}")


@app.command()
def status(
    names: NamesArg = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print {"services": [...], "all_healthy": bool} as JSON.'),
    ] = False,
) -> None:
    """Each service's address, health, pid and log. Exit 1 unless all requested are healthy."""
    chosen = resolve_names(names)
    statuses = _manager().status(chosen)
    all_healthy = all(st.healthy for st in statuses)
    if as_json:
        typer.echo(
            json.dumps(
                {"services": [st.to_dict() for st in statuses], "all_healthy": all_healthy},
                indent=2,
            )
        )
    else:
        for st in statuses:
            typer.echo(_row(st))
    if not all_healthy:
        raise typer.Exit(1)


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="The service whose log to show.")],
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many last lines.")] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
) -> None:
    """Print the end of a service's log (the file under <state>/logs)."""
    if lines < 0:
        raise UsageError("--lines must be >= 0")
    path = _manager().log_path(name)
    if not path.exists():
        typer.echo(f"{display_path(path)} does not exist yet (the service was never started)")
        return
    with open(path, "rb") as fh:
        tail = deque(fh, maxlen=lines) if lines else deque()
        for raw in tail:
            sys.stdout.write(raw.decode(errors="replace"))
        sys.stdout.flush()
        if not follow:
            return
        try:
            while True:
                chunk = fh.read()
                if chunk:
                    sys.stdout.write(chunk.decode(errors="replace"))
                    sys.stdout.flush()
                else:
                    # The file may have been replaced (purge): reopen when it shrank.
                    if os.path.getsize(path) < fh.tell():
                        fh.seek(0)
                    time.sleep(0.5)
        except KeyboardInterrupt:
            return
