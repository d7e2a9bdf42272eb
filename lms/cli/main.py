"""The `lms` command: the single entry point for operators.

Each command group lives in its own module and registers itself here, so `lms --help` lists every
command the platform has.
"""

from __future__ import annotations

import sys

import typer

from lms.errors import LmsError

app = typer.Typer(
    name="lms",
    help="Operate the LMS data and ML platform: local services, simulation, ingestion, flows, serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported here so that `lms --help` stays fast and a broken optional group names itself.
    from lms.cli import collector, contract, db, demo, flow, ingest, keys, services, simulate

    app.add_typer(services.app, name="services", help="Start, stop and inspect the local services.")
    app.add_typer(db.app, name="db", help="The OLTP database's schema migrations.")
    app.add_typer(contract.app, name="contract", help="Validate and export the event contract.")
    app.command("simulate")(simulate.simulate)
    app.add_typer(
        keys.app, name="keys", help="API keys with scopes, for every API of the platform."
    )
    app.add_typer(
        collector.app, name="collector", help="The HTTP event collector (FastAPI → Kafka)."
    )
    app.add_typer(ingest.app, name="ingest")
    from lms.cli import report, warehouse

    app.add_typer(warehouse.app, name="warehouse")
    app.command("report")(report.report)
    from lms.cli import stream

    app.add_typer(stream.app, name="stream")
    app.command("demo")(demo.demo)
    app.command("demo-down")(demo.demo_down)
    app.add_typer(flow.app, name="flow", help="ML flows (Prefect): train, score, pipeline.")
    from lms.cli import serve

    app.command("serve")(serve.serve)


def run() -> None:
    """Console-script entry point: operator errors become one clear line and a non-zero exit."""
    # typer vendors click; its exceptions are the ones raised for usage mistakes.
    from pydantic import ValidationError
    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    _register()
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ClickException as exc:
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f" (see '{ctx.command_path} --help')"
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except LmsError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except ValidationError as exc:
        # settings from the environment (LMS_*) that do not parse: one line naming each field
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"error: invalid {exc.title}: {problems}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
