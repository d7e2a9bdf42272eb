"""`lms collector run | topics`: the HTTP event collector (POST /v1/events -> Kafka)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from lms.errors import LmsError, UsageError

app = typer.Typer(
    no_args_is_help=True,
    help="The event collector: receives contract-v1 events over HTTP and writes them to Kafka.",
)


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default 18080, LMS_COLLECTOR_PORT).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes, each with its own Kafka producer (default 1)."),
    ] = None,
) -> None:
    """Serve the collector with uvicorn until interrupted (settings: LMS_COLLECTOR_*)."""
    import uvicorn

    from ingestion.collector.settings import get_collector_settings
    from ingestion.topics import ensure_topics

    settings = get_collector_settings()
    if settings.collector_create_topics:
        # Once here rather than in every worker; workers skip it through the environment.
        try:
            for action in ensure_topics(settings):
                typer.echo(f"topics: {action}", err=True)
        except UsageError:
            raise  # a settings mistake (e.g. min ISR above replication): fix it before serving
        except LmsError as exc:
            typer.echo(
                f"warning: {exc}; the collector starts and /ready says when Kafka is back", err=True
            )
        os.environ["LMS_COLLECTOR_CREATE_TOPICS"] = "false"
    chosen_host = host or settings.collector_host
    chosen_port = port or settings.collector_port
    typer.echo(
        f"collector on http://{chosen_host}:{chosen_port} (docs at /docs), "
        f"raw topic {settings.kafka_topic_raw}, Kafka {settings.kafka_bootstrap_servers}",
        err=True,
    )
    uvicorn.run(
        "ingestion.collector.app:app_factory",
        factory=True,
        host=chosen_host,
        port=chosen_port,
        workers=workers or settings.collector_workers,
        loop="uvloop",
        http="httptools",
        # Our JSON access log replaces uvicorn's, which would print client addresses.
        access_log=False,
        log_config=None,
        server_header=False,
    )


@app.command()
def topics() -> None:
    """Create the raw and dead-letter topics, or bring their partitions and configs in line."""
    from ingestion.collector.settings import get_collector_settings
    from ingestion.topics import ensure_topics, topic_specs

    settings = get_collector_settings()
    actions = ensure_topics(settings)
    for action in actions:
        typer.echo(action)
    if not actions:
        names = ", ".join(spec.name for spec in topic_specs(settings))
        typer.echo(f"topics up to date: {names}")
