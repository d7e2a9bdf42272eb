"""`lms keys create | list | revoke`: API keys for the platform's APIs (stored hashed in PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from lms.auth.manage import create_key, list_keys, revoke_key
from lms.auth.scopes import SCOPES
from lms.auth.store import PostgresKeyStore
from lms.settings import get_settings

app = typer.Typer(
    no_args_is_help=True,
    help="API keys for the collector and the prediction API (stored as SHA-256 digests).",
)

_SCOPE_HELP = "; ".join(f"{name}: {meaning}" for name, meaning in SCOPES.items())


def _store() -> PostgresKeyStore:
    return PostgresKeyStore(get_settings().platform_dsn)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="Unique label, e.g. collector-web.")],
    scopes: Annotated[
        str, typer.Option("--scopes", help=f"Comma-separated scopes. {_SCOPE_HELP}.")
    ],
    teacher_id: Annotated[
        str | None,
        typer.Option("--teacher-id", help="Restrict the key to one teacher's courses (read APIs)."),
    ] = None,
) -> None:
    """Create a key and print it once: store it now, only its prefix is ever shown again."""
    key, record = create_key(_store(), name, scopes, teacher_id=teacher_id)
    typer.echo(key)
    restriction = f", teacher {record.teacher_id}" if record.teacher_id else ""
    typer.echo(
        f"created API key {record.name!r} (id {record.id}, prefix {record.prefix}, "
        f"scopes {','.join(record.scopes)}{restriction}); it is shown only this once",
        err=True,
    )


@app.command("list")
def list_() -> None:
    """List keys: name, prefix, scopes, created, revoked, last used (never the keys)."""
    records = list_keys(_store())
    if not records:
        typer.echo("no API keys yet; create one with `lms keys create --name NAME --scopes S1,S2`")
        return
    header = f"{'id':>4}  {'name':<24} {'prefix':<9} {'scopes':<32} {'created':<21} {'revoked':<21} last used"
    typer.echo(header)
    for r in records:
        scopes = ",".join(r.scopes) + (f" (teacher {r.teacher_id})" if r.teacher_id else "")
        typer.echo(
            f"{r.id:>4}  {r.name:<24} {r.prefix:<9} {scopes:<32} {_when(r.created_at):<21} "
            f"{_when(r.revoked_at):<21} {_when(r.last_used_at)}"
        )


@app.command()
def revoke(
    name_or_id: Annotated[str, typer.Argument(help="The key's name, id or prefix.")],
) -> None:
    """Revoke a key (idempotent); running APIs refuse it within their key cache TTL (30 s)."""
    record = revoke_key(_store(), name_or_id)
    typer.echo(
        f"revoked API key {record.name!r} (prefix {record.prefix}) at {_when(record.revoked_at)}"
    )
