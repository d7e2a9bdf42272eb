"""`lms report`: the dashboard views from the marts as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lms.settings import get_settings


def report(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write the HTML page.")
    ] = None,
) -> None:
    """Render the admin, teacher and live-class views from the marts into one HTML file."""
    from lms.warehouse.report import write_report

    settings = get_settings()
    path = output or settings.state_dir / "reports" / "warehouse-report.html"
    write_report(path, settings)
    typer.echo(f"report written to {path}")
