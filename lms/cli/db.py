"""`lms db`: create and upgrade the OLTP schema (lms_oltp) with the numbered SQL migrations."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    no_args_is_help=True,
    help="The OLTP database (lms_oltp): apply migrations, show which ran.",
)

DsnOption = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        help="PostgreSQL URL; defaults to the OLTP database from LMS_PG_* settings.",
        show_default=False,
    ),
]


def _dsn(dsn: str | None) -> str:
    from lms.settings import get_settings

    return dsn or get_settings().oltp_dsn


@app.command()
def migrate(dsn: DsnOption = None) -> None:
    """Apply pending migrations (safe to re-run; concurrent runners wait for each other)."""
    from lms.oltp.migrate import migrate as run_migrations

    applied = run_migrations(_dsn(dsn))
    if not applied:
        typer.echo("OLTP schema is up to date")
        return
    for migration in applied:
        typer.echo(f"applied {migration.version:04d}_{migration.name}")
    typer.echo(f"{len(applied)} migration(s) applied")


@app.command()
def status(dsn: DsnOption = None) -> None:
    """List migrations with when each was applied, or `pending`."""
    from lms.oltp.migrate import status as migration_status

    statuses = migration_status(_dsn(dsn))
    for item in statuses:
        when = item.applied_at.isoformat(timespec="seconds") if item.applied_at else "pending"
        typer.echo(f"{item.version:04d}  {item.name:<28}  {when}")
    pending = sum(not item.applied for item in statuses)
    typer.echo(f"{pending} pending" if pending else "up to date")
