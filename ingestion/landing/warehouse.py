"""The warehouse raw layer: PostgreSQL locally, BigQuery in production, written idempotently.

Spark writes each batch to a uniquely named stage table (in parallel, from the executors, over
JDBC); one SQL statement then moves the new rows into the raw table, skipping event ids already
there. A batch that is retried after a crash, a replay from the lake, or the same event delivered
twice therefore never adds a row twice.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import urlparse

import psycopg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lms.settings import Settings

log = logging.getLogger(__name__)

EVENTS_DDL = """
create schema if not exists {RAW_SCHEMA};
create table if not exists {RAW_SCHEMA}.events (
    event_id uuid primary key,
    event_type text not null,
    schema_version text not null,
    occurred_at timestamptz not null,
    received_at timestamptz not null,
    student_id text not null,
    course_id text,
    session_id text not null,
    client jsonb not null,
    payload jsonb not null,
    kafka_partition integer,
    kafka_offset bigint,
    event_date date not null,
    loaded_at timestamptz not null default now()
);
create index if not exists events_loaded_at_idx on {RAW_SCHEMA}.events (loaded_at);
create index if not exists events_occurred_at_idx on {RAW_SCHEMA}.events (occurred_at);
comment on table {RAW_SCHEMA}.events is
    'Contract events as landed from Kafka by Spark; one row per event_id (duplicates skipped).';
"""

_MERGE_EVENTS = """
insert into {RAW_SCHEMA}.events (
    event_id, event_type, schema_version, occurred_at, received_at, student_id, course_id,
    session_id, client, payload, kafka_partition, kafka_offset, event_date
)
select distinct on (event_id::uuid)
    event_id::uuid, event_type, schema_version, occurred_at::timestamptz, received_at::timestamptz,
    student_id, course_id, session_id, client::jsonb, payload::jsonb, kafka_partition,
    kafka_offset, event_date::date
from {RAW_SCHEMA}.{stage}
order by event_id::uuid, kafka_offset
on conflict (event_id) do nothing
"""


def jdbc_url(dsn: str) -> tuple[str, dict[str, str]]:
    """A libpq URL → Spark's JDBC URL and connection properties."""
    parts = urlparse(dsn)
    url = f"jdbc:postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}"
    props = {
        "user": parts.username or "",
        "password": parts.password or "",
        "driver": "org.postgresql.Driver",
        "reWriteBatchedInserts": "true",
    }
    return url, props


def _as_text_timestamps(frame: DataFrame, columns: list[str]) -> DataFrame:
    # JDBC would convert timestamps through the JVM's time zone; ISO text with an explicit UTC
    # offset is cast by PostgreSQL itself and cannot shift.
    for name in columns:
        frame = frame.withColumn(
            name, F.date_format(F.col(name), "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX")
        )
    return frame


def postgres_type(data_type: T.DataType) -> str:
    if isinstance(data_type, T.TimestampType):
        return "timestamptz"
    if isinstance(data_type, T.DateType):
        return "date"
    if isinstance(data_type, T.DecimalType):
        return f"numeric({data_type.precision},{data_type.scale})"
    if isinstance(data_type, T.IntegerType | T.ShortType | T.ByteType):
        return "integer"
    if isinstance(data_type, T.LongType):
        return "bigint"
    if isinstance(data_type, T.DoubleType | T.FloatType):
        return "double precision"
    if isinstance(data_type, T.BooleanType):
        return "boolean"
    return "text"


class WarehouseWriter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dsn = settings.warehouse_dsn
        self.schema = settings.raw_schema
        self._bigquery = None
        if settings.land_to_bigquery:
            from ingestion.landing.bigquery import BigQueryRaw

            self._bigquery = BigQueryRaw(settings)

    def ensure_tables(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(EVENTS_DDL.format(RAW_SCHEMA=self.schema))
        if self._bigquery:
            self._bigquery.ensure_events_table()

    def write_events(self, events: DataFrame, *, label: str) -> int:
        """Insert the events not already present; returns how many rows were new in PostgreSQL."""
        stage = f"events_stage_{uuid.uuid4().hex[:12]}"
        frame = _as_text_timestamps(events, ["occurred_at", "received_at"]).withColumn(
            "event_date", F.col("event_date").cast("string")
        )
        self._write_stage(stage, frame)
        try:
            with psycopg.connect(self.dsn) as conn:
                inserted = conn.execute(
                    _MERGE_EVENTS.format(RAW_SCHEMA=self.schema, stage=stage)
                ).rowcount
        finally:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(f"drop table if exists {self.schema}.{stage}")
        log.info("warehouse %s: %d new events in postgres", label, inserted)
        if self._bigquery:
            self._bigquery.write_events(frame, label=label)
        return inserted

    def _write_stage(self, stage: str, frame: DataFrame) -> None:
        """Copy ``frame`` into a new stage table from Spark's executors over JDBC.

        The stage is UNLOGGED: it lives for one statement and is dropped after it, so writing
        its rows to the WAL only cost time (a quarter of the stage write for 1.4 M events).
        """
        columns = ", ".join(f'"{f.name}" {postgres_type(f.dataType)}' for f in frame.schema.fields)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"create unlogged table {self.schema}.{stage} ({columns})")
        url, props = jdbc_url(self.dsn)
        frame.write.jdbc(url, f"{self.schema}.{stage}", mode="append", properties=props)

    def replace_table(self, name: str, frame: DataFrame, *, label: str) -> None:
        """Make raw.<name> hold exactly ``frame`` (a snapshot), atomically for its readers.

        The table is kept (truncate + insert in one transaction, new columns added) rather than
        dropped, so the views dbt builds on it survive a snapshot.
        """
        columns = [(f.name, postgres_type(f.dataType)) for f in frame.schema.fields]
        text_frame = frame
        for field in frame.schema.fields:
            if isinstance(field.dataType, T.TimestampType):
                text_frame = _as_text_timestamps(text_frame, [field.name])
            elif isinstance(field.dataType, T.DateType):
                text_frame = text_frame.withColumn(field.name, F.col(field.name).cast("string"))
        stage = f"{name}_stage_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"create schema if not exists {self.schema}")
        self._write_stage(stage, text_frame)
        column_list = ", ".join(f'"{c}"' for c, _ in columns)
        casts = ", ".join(f'"{c}"::{t}' for c, t in columns)
        try:
            with psycopg.connect(self.dsn) as conn:
                conn.execute(
                    f"create table if not exists {self.schema}.{name} ("
                    + ", ".join(f'"{c}" {t}' for c, t in columns)
                    + ")"
                )
                for column, pg_type in columns:
                    conn.execute(
                        f'alter table {self.schema}.{name} add column if not exists "{column}" {pg_type}'
                    )
                conn.execute(f"truncate {self.schema}.{name}")
                conn.execute(
                    f"insert into {self.schema}.{name} ({column_list}) "
                    f"select {casts} from {self.schema}.{stage}"
                )
        finally:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(f"drop table if exists {self.schema}.{stage}")
        log.info("warehouse %s: raw.%s replaced", label, name)
        if self._bigquery:
            self._bigquery.replace_table(name, text_frame, columns)
