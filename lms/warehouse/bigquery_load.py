"""Copy the PostgreSQL raw layer into a BigQuery dataset (the emulator in tests), so the dbt
project can be run on BigQuery against the same data it was built from on PostgreSQL.

Production lands events into BigQuery directly (ingestion's BigQuery writer); this copy exists
for the emulator check of the BigQuery target and is limited to small samples.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg

from lms.settings import Settings

_BQ_TYPES = {
    "text": "STRING",
    "uuid": "STRING",
    "jsonb": "STRING",
    "json": "STRING",
    "integer": "INT64",
    "bigint": "INT64",
    "smallint": "INT64",
    "numeric": "NUMERIC",
    "double precision": "FLOAT64",
    "boolean": "BOOL",
    "date": "DATE",
    "timestamp with time zone": "TIMESTAMP",
}


def bigquery_client(settings: Settings) -> Any:
    """A client for the configured endpoint (the emulator locally: no credentials needed)."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=settings.bq_project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=settings.bq_endpoint_url),
    )


def ensure_dataset(client: Any, dataset: str) -> None:
    """Create the dataset unless it exists (looking first: the emulator answers an
    already-exists create with a 500, which the client would retry for minutes)."""
    from google.api_core.exceptions import NotFound

    try:
        client.get_dataset(dataset)
    except NotFound:
        client.create_dataset(dataset)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    if value is not None and not isinstance(value, str | int | float | bool):
        return str(value)
    return value


def copy_raw_to_bigquery(
    settings: Settings, tables: list[str], *, event_limit: int = 5000, chunk: int = 500
) -> dict[str, int]:
    """Create `settings.bq_dataset` and copy the raw tables into it (events capped at
    `event_limit`, earliest first). Returns the rows copied per table."""
    from google.cloud import bigquery

    client = bigquery_client(settings)
    dataset = settings.bq_dataset
    ensure_dataset(client, dataset)
    copied: dict[str, int] = {}
    with psycopg.connect(settings.warehouse_dsn) as conn:
        for table in tables:
            columns = conn.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = %s and table_name = %s order by ordinal_position",
                (settings.raw_schema, table),
            ).fetchall()
            schema = [
                bigquery.SchemaField(name, _BQ_TYPES.get(kind, "STRING")) for name, kind in columns
            ]
            ref = f"{settings.bq_project}.{dataset}.{table}"
            client.delete_table(ref, not_found_ok=True)
            client.create_table(bigquery.Table(ref, schema=schema))
            limit = f" order by occurred_at limit {event_limit}" if table == "events" else ""
            names = [name for name, _ in columns]
            rows = conn.execute(
                f"select {', '.join(names)} from {settings.raw_schema}.{table}{limit}"
            ).fetchall()
            payload = [{n: _json_value(v) for n, v in zip(names, row, strict=True)} for row in rows]
            for start in range(0, len(payload), chunk):
                errors = client.insert_rows_json(ref, payload[start : start + chunk])
                if errors:
                    raise RuntimeError(f"BigQuery insert into {ref} failed: {errors[:3]}")
            copied[table] = len(payload)
    return copied
