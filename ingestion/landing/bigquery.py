"""The BigQuery raw layer: load jobs into a stage table, then an insert of the ids not yet present.

Load jobs (not streaming inserts) are free in BigQuery and have no streaming buffer to wait for.
BigQuery has no primary keys, so idempotence is the ``not in`` on ``event_id``: a retried batch or
a replay from the lake adds nothing twice. Locally the same code talks to goccy's emulator through
``LMS_BQ_ENDPOINT`` (anonymous credentials); in production, with no endpoint set, the client uses
the environment's Google credentials.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from google.api_core.exceptions import NotFound
from google.cloud import bigquery
from pyspark.sql import DataFrame

from lms.services.bigquery import bq_client
from lms.settings import Settings

log = logging.getLogger(__name__)

EVENTS_TABLE = "events"

EVENTS_SCHEMA = [
    bigquery.SchemaField("event_id", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("event_type", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("schema_version", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("occurred_at", "TIMESTAMP", mode="REQUIRED"),
    bigquery.SchemaField("received_at", "TIMESTAMP", mode="REQUIRED"),
    bigquery.SchemaField("student_id", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("course_id", "STRING"),
    bigquery.SchemaField("session_id", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("client", "STRING", mode="REQUIRED", description="JSON object"),
    bigquery.SchemaField("payload", "STRING", mode="REQUIRED", description="JSON object"),
    bigquery.SchemaField("kafka_partition", "INT64"),
    bigquery.SchemaField("kafka_offset", "INT64"),
    bigquery.SchemaField("event_date", "DATE", mode="REQUIRED"),
    bigquery.SchemaField("loaded_at", "TIMESTAMP"),
]
_COLUMNS = [f.name for f in EVENTS_SCHEMA if f.name != "loaded_at"]

# Rows per load job: large enough to amortise a job, small enough to keep driver memory flat.
LOAD_CHUNK_ROWS = 200_000


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class BigQueryRaw:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = bq_client(settings)
        self.dataset = f"{settings.bq_project}.{settings.bq_dataset}"

    def ensure_dataset(self) -> None:
        # Look before creating: the emulator answers "already exists" with a 500, which the client
        # retries for minutes, where BigQuery answers 409 (which exists_ok would absorb).
        try:
            self.client.get_dataset(self.dataset)
        except NotFound:
            self.client.create_dataset(self.dataset, exists_ok=True)

    def ensure_events_table(self) -> None:
        self.ensure_dataset()
        try:
            self.client.get_table(f"{self.dataset}.{EVENTS_TABLE}")
            return
        except NotFound:
            pass
        table = bigquery.Table(f"{self.dataset}.{EVENTS_TABLE}", schema=EVENTS_SCHEMA)
        table.time_partitioning = bigquery.TimePartitioning(field="event_date")
        table.clustering_fields = ["event_type", "course_id"]
        self.client.create_table(table, exists_ok=True)

    def load_rows(self, rows: Iterable[dict[str, Any]], *, label: str) -> int:
        """Load rows (dicts with the raw columns, timestamps as ISO text); returns rows offered."""
        offered = 0
        for chunk in _chunks(rows, LOAD_CHUNK_ROWS):
            stage = f"{self.dataset}.events_stage_{uuid.uuid4().hex[:12]}"
            body = b"\n".join(orjson.dumps({k: row.get(k) for k in _COLUMNS}) for row in chunk)
            config = bigquery.LoadJobConfig(
                schema=[f for f in EVENTS_SCHEMA if f.name != "loaded_at"],
                source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            )
            self.client.load_table_from_file(io.BytesIO(body), stage, job_config=config).result()
            try:
                columns = ", ".join(_COLUMNS)
                selected = ", ".join(f"s.{c}" for c in _COLUMNS)
                self.client.query(
                    f"insert into `{self.dataset}.{EVENTS_TABLE}` ({columns}, loaded_at) "
                    f"select {selected}, current_timestamp() from `{stage}` s "
                    f"where s.event_id not in "
                    f"(select event_id from `{self.dataset}.{EVENTS_TABLE}`)"
                ).result()
            finally:
                self.client.delete_table(stage, not_found_ok=True)
            offered += len(chunk)
        log.info("warehouse %s: %d events offered to bigquery", label, offered)
        return offered

    def replace_table(self, name: str, frame: DataFrame, columns: list[tuple[str, str]]) -> None:
        """Load a snapshot with WRITE_TRUNCATE: the table holds exactly this snapshot afterwards."""
        bq_types = {
            "timestamptz": "TIMESTAMP",
            "date": "DATE",
            "integer": "INT64",
            "bigint": "INT64",
            "double precision": "FLOAT64",
            "boolean": "BOOL",
        }
        schema = [
            bigquery.SchemaField(
                c, "NUMERIC" if t.startswith("numeric") else bq_types.get(t, "STRING")
            )
            for c, t in columns
        ]
        body = b"\n".join(
            orjson.dumps(row.asDict(), default=str) for row in frame.toLocalIterator()
        )
        config = bigquery.LoadJobConfig(
            schema=schema,
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        )
        self.ensure_dataset()
        self.client.load_table_from_file(
            io.BytesIO(body), f"{self.dataset}.{name}", job_config=config
        ).result()

    def write_events(self, frame: DataFrame, *, label: str) -> int:
        # Within a batch the same id can arrive twice; keep one before the load.
        deduped = frame.dropDuplicates(["event_id"])
        return self.load_rows((r.asDict() for r in deduped.toLocalIterator()), label=label)
