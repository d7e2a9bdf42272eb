"""`lms ingest`: the Spark jobs that land events and OLTP snapshots in the lake and warehouse."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from lms.errors import UsageError
from lms.settings import Settings, get_settings

app = typer.Typer(
    no_args_is_help=True,
    help="Land Kafka events and OLTP snapshots in the lake (S3) and the warehouse raw layer.",
)


def _settings(bigquery: bool | None) -> Settings:
    """The platform settings, with --bigquery/--no-bigquery overriding LMS_LAND_TO_BIGQUERY."""
    settings = get_settings()
    if bigquery is None:
        return settings
    return settings.model_copy(update={"land_to_bigquery": bigquery})


def _parse_date(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise UsageError(f"{option} must be a date like 2026-09-01, got {value!r}") from None


@app.command()
def land(
    continuous: Annotated[
        bool, typer.Option(help="Keep running (micro-batches every --trigger seconds).")
    ] = False,
    trigger: Annotated[int, typer.Option(min=1, help="Seconds between micro-batches.")] = 10,
    sink: Annotated[
        list[str] | None, typer.Option(help="lake and/or warehouse (default: both).")
    ] = None,
    max_offsets: Annotated[
        int | None, typer.Option(min=1, help="Cap on Kafka records per micro-batch.")
    ] = None,
    bigquery: Annotated[
        bool | None, typer.Option(help="Also load the BigQuery raw layer (LMS_LAND_TO_BIGQUERY).")
    ] = None,
) -> None:
    """Read the raw event topic into the lake and the warehouse raw layer.

    By default an availableNow batch: it processes what is in Kafka now and stops. Checkpoints make
    a restart resume where the last committed batch ended, without loss or duplicates.
    """
    sinks = tuple(sink or ["lake", "warehouse"])
    bad = [s for s in sinks if s not in ("lake", "warehouse")]
    if bad:
        raise UsageError(f"unknown sink {bad[0]!r}: choose lake or warehouse")
    settings = _settings(bigquery)

    from ingestion.landing.events import land as run_land
    from ingestion.landing.spark import build_session

    spark = build_session(settings, "lms-land-events")
    try:
        results = run_land(
            spark,
            settings,
            mode="continuous" if continuous else "available-now",
            sinks=sinks,
            trigger_s=trigger,
            max_offsets=max_offsets,
        )
    finally:
        spark.stop()
    for result in results:
        typer.echo(f"{result.query}: {result.input_rows} events in {result.batches} batch(es)")


@app.command()
def snapshot(
    table: Annotated[
        list[str] | None, typer.Option(help="OLTP table(s) to copy (default: all).")
    ] = None,
    bigquery: Annotated[
        bool | None, typer.Option(help="Also load the BigQuery raw layer (LMS_LAND_TO_BIGQUERY).")
    ] = None,
) -> None:
    """Copy the OLTP tables into the lake and the warehouse raw layer, personal data removed."""
    from ingestion.landing.snapshots import TABLES
    from ingestion.landing.snapshots import snapshot as run_snapshot
    from ingestion.landing.spark import build_session

    tables = tuple(table or TABLES)
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise UsageError(f"unknown OLTP table {unknown[0]!r}; choose from {', '.join(TABLES)}")
    settings = _settings(bigquery)
    spark = build_session(settings, "lms-snapshot")
    try:
        for result in run_snapshot(spark, settings, tables):
            typer.echo(f"{result.table}: {result.rows} rows")
    finally:
        spark.stop()


@app.command()
def replay(
    date_from: Annotated[
        str | None, typer.Option("--from", help="First event date (UTC), e.g. 2026-09-01.")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Last event date (UTC), inclusive.")
    ] = None,
    bigquery: Annotated[
        bool | None, typer.Option(help="Also load the BigQuery raw layer (LMS_LAND_TO_BIGQUERY).")
    ] = None,
) -> None:
    """Re-send lake events of a date range to the warehouse raw layer (idempotent by event_id)."""
    start = _parse_date(date_from, "--from")
    end = _parse_date(date_to, "--to")
    if start and end and start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    settings = _settings(bigquery)

    from ingestion.landing.events import read_lake_events
    from ingestion.landing.spark import build_session
    from ingestion.landing.warehouse import WarehouseWriter

    spark = build_session(settings, "lms-replay")
    try:
        events = read_lake_events(spark, settings, start, end)
        writer = WarehouseWriter(settings)
        writer.ensure_tables()
        total = events.count()
        inserted = writer.write_events(events, label=f"replay {start or '…'}..{end or '…'}")
    finally:
        spark.stop()
    typer.echo(f"replayed {total} lake events: {inserted} new in the warehouse raw layer")


@app.command()
def post(
    path: Annotated[Path, typer.Argument(help="A JSONL file or a directory of *.jsonl parts.")],
    url: Annotated[
        str | None, typer.Option(help="Collector base URL (default: the local collector).")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar="LMS_API_KEY", help="A key with events:write (or LMS_API_KEY)."
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Requests in flight.")] = 4,
) -> None:
    """Send JSONL events (e.g. a simulation) to the collector in batches, retrying safely."""
    from ingestion.post import post_files

    if not api_key:
        raise UsageError("an API key is needed: --api-key or LMS_API_KEY (see `lms keys create`)")
    if url is None:
        from ingestion.collector.settings import get_collector_settings

        collector = get_collector_settings()
        url = f"http://{collector.collector_host}:{collector.collector_port}"
    last = [0.0]

    def progress(tally: Any) -> None:
        now = time.monotonic()
        if now - last[0] >= 5:
            last[0] = now
            typer.echo(f"  {tally.line()}", err=True)

    tally = post_files(path, url, api_key, concurrency=concurrency, on_progress=progress)
    typer.echo(tally.line())
    if tally.rejected_reasons:
        reasons = ", ".join(f"{k} {v}" for k, v in tally.rejected_reasons.most_common())
        typer.echo(f"rejected (dead-lettered) by reason: {reasons}")
