"""`lms warehouse`: build the dbt project, check it with Great Expectations, generate its docs."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer

from lms.errors import LmsError, UsageError
from lms.settings import Settings, get_settings

app = typer.Typer(
    no_args_is_help=True,
    help="The dbt warehouse: build (dbt build), check (Great Expectations), docs.",
)

TARGETS = ("postgres", "bigquery", "bigquery_emulator")


def _settings(target: str | None) -> Settings:
    settings = get_settings()
    if target is None:
        return settings
    if target not in TARGETS:
        raise UsageError(f"unknown dbt target {target!r}; choose from {', '.join(TARGETS)}")
    return settings.model_copy(update={"dbt_target": target})


def _show_dbt_output() -> None:
    """dbt's lines go to the lms.warehouse logger; show them on stderr as they come."""
    logger = logging.getLogger("lms.warehouse")
    if not any(getattr(h, "_lms_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._lms_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


TargetOption = Annotated[
    str | None, typer.Option(help="dbt target: postgres (default, LMS_DBT_TARGET) or bigquery.")
]


@app.command()
def build(
    select: Annotated[
        list[str] | None, typer.Option("--select", "-s", help="dbt node selection (repeatable).")
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option(help="Rebuild incremental models from scratch.")
    ] = False,
    target: TargetOption = None,
) -> None:
    """Run `dbt build`: models, snapshots and every dbt test, in dependency order."""
    from lms.warehouse import run_dbt

    args = ["build"]
    for item in select or []:
        args += ["--select", item]
    if full_refresh:
        args.append("--full-refresh")
    _show_dbt_output()
    run_dbt(args, _settings(target))
    typer.echo("warehouse built")


@app.command()
def check(
    suite: Annotated[
        list[str] | None,
        typer.Argument(help="Suites to run (default: all). See `lms warehouse suites`."),
    ] = None,
) -> None:
    """Run Great Expectations suites on the raw layer and the feature marts; fail on bad data."""
    from lms.quality import SUITES, ExpectationsFailed, run_suite

    names = suite or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise UsageError(f"unknown suite {unknown[0]!r}; choose from {', '.join(SUITES)}")
    settings = get_settings()
    failed: list[ExpectationsFailed] = []
    for name in names:
        try:
            typer.echo(run_suite(name, settings).report())
        except ExpectationsFailed as exc:
            typer.echo(str(exc), err=True)
            failed.append(exc)
    if failed:
        raise ExpectationsFailed(failed[0].result) if len(failed) == 1 else _many_failed(failed)


def _many_failed(failed: list[Any]) -> LmsError:
    names = ", ".join(f.result.name for f in failed)
    return LmsError(f"{len(failed)} suites failed ({names}); reports above")


@app.command()
def suites() -> None:
    """List the Great Expectations suites and the tables they check."""
    from lms.quality import SUITES

    for name, checks in SUITES.items():
        tables = ", ".join(f"{c.schema or 'raw'}.{c.table}" for c in checks)
        typer.echo(f"{name:32s} {tables}")


@app.command()
def docs(
    target: TargetOption = None,
) -> None:
    """Generate the dbt docs site (catalog + lineage) into target/."""
    from lms.warehouse import dbt_target_path, run_dbt

    settings = _settings(target)
    _show_dbt_output()
    run_dbt(["docs", "generate"], settings)
    typer.echo(f"docs in {dbt_target_path(settings) / 'index.html'}")


@app.command()
def freshness(
    target: TargetOption = None,
) -> None:
    """Check the raw layer's freshness (dbt source freshness)."""
    from lms.warehouse import run_dbt

    _show_dbt_output()
    run_dbt(["source", "freshness"], _settings(target))
