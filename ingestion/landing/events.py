"""Land the raw event topic in the lake (Parquet on S3) and in the warehouse raw layer.

Two streaming queries read the same topic with their own checkpoints, so each sink keeps its own
exactly-once bookkeeping and one can be replayed or rebuilt without touching the other:

* **lake**: Kafka → parse → de-duplicate by ``event_id`` (state kept for ``LAKE_DEDUP_WINDOW`` of
  Kafka append time, which covers a client's retries) → Parquet partitioned by ``event_date`` and
  ``event_type``. The watermark is on the Kafka record's timestamp, never on the events' own
  times: it only advances with ingestion, so an old event (late, replayed, backfilled) is never
  behind it and never dropped. Spark's file sink records committed files in ``_spark_metadata``, so a restart
  neither loses nor repeats a batch.
* **warehouse**: Kafka → parse → ``foreachBatch`` → idempotent inserts keyed by ``event_id`` into
  PostgreSQL (and BigQuery when switched on). A batch re-run after a crash inserts nothing twice.

Both run continuously or as an ``availableNow`` batch that stops when it has caught up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import StringType, StructField, StructType

from ingestion.landing.columns import EVENT_FIELDS, RAW_COLUMNS
from ingestion.landing.warehouse import WarehouseWriter
from lms.settings import Settings

log = logging.getLogger(__name__)

LAKE_EVENTS_PATH = "events"
LAKE_DEDUP_WINDOW = "24 hours"

# Parquet writer settings per column (Hadoop options of the file sink). Dictionary encoding is
# kept where values repeat (types, students, courses, sessions, clients) and switched off where
# every value is new: there the writer hashed each value into a dictionary only to give it up at
# 1 MiB, the largest single cost of writing (~15 % of the landing job's CPU in a profile).
# Min/max statistics of the JSON text columns prune nothing and cost a comparison per value.
_UNIQUE_COLUMNS = ("event_id", "occurred_at", "received_at", "payload", "kafka_offset")
_JSON_TEXT_COLUMNS = ("client", "payload")
LAKE_PARQUET_OPTIONS = {
    **{f"parquet.enable.dictionary#{c}": "false" for c in _UNIQUE_COLUMNS},
    **{f"parquet.column.statistics.enabled#{c}": "false" for c in _JSON_TEXT_COLUMNS},
    **{f"parquet.size.statistics.enabled#{c}": "false" for c in _JSON_TEXT_COLUMNS},
}

# The whole event in one JSON parse. `client` and `payload` are declared as strings, which makes
# Spark's JSON reader keep those objects as their JSON text: the raw layers hold them as received
# (typed unpacking per event type is the warehouse staging layer's job). Timestamps are parsed
# afterwards with a cast, which accepts every RFC 3339 form the contract allows.
_EVENT = StructType([StructField(name, StringType()) for name in EVENT_FIELDS])


Mode = Literal["available-now", "continuous"]


@dataclass(frozen=True)
class LandingResult:
    query: str
    batches: int
    input_rows: int
    # Spark's per-batch timings (addBatch, walCommit, commitOffsets, ...) summed over the run:
    # where a run's wall-clock time went, for the benchmark and for tuning.
    durations_ms: dict[str, int] = field(default_factory=dict)


def _summed_durations(progress: list[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for batch in progress:
        for name, ms in batch.get("durationMs", {}).items():
            total[name] = total.get(name, 0) + int(ms)
    return total


def read_topic(spark: SparkSession, settings: Settings, *, max_offsets: int | None) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("subscribe", settings.kafka_topic_raw)
        .option("startingOffsets", "earliest")
        # A topic deleted and recreated (tests, disaster recovery) must not wedge the job.
        .option("failOnDataLoss", "false")
    )
    if max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets))
    return reader.load()


def _timestamp(column: str) -> Column:
    return F.to_timestamp(F.col(column))


def parse_events(kafka_rows: DataFrame) -> DataFrame:
    """Kafka records → one row per event with the raw layers' columns."""
    parsed = kafka_rows.select(
        # inline(array(...)) turns the parsed struct into a generator's output. A filter on its
        # fields then stays above it; on a plain projection the optimizer pushes the filter below
        # and re-parses the JSON once per filtered field (three parses per event instead of one).
        F.inline(F.array(F.from_json(F.col("value").cast("string"), _EVENT))),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
    )
    events = parsed.select(
        "event_id",
        "event_type",
        "schema_version",
        _timestamp("occurred_at").alias("occurred_at"),
        # The collector stamps received_at; Kafka's own timestamp backs it up for older producers.
        F.coalesce(_timestamp("received_at"), F.col("kafka_timestamp")).alias("received_at"),
        "student_id",
        "course_id",
        "session_id",
        "client",
        "payload",
        "kafka_partition",
        "kafka_offset",
        "kafka_timestamp",
    )
    # The collector only publishes contract-valid events; anything unparseable here would be a
    # producer bypassing it, and is left out rather than written half-empty.
    return events.where(
        F.col("event_id").isNotNull() & F.col("occurred_at").isNotNull()
    ).withColumn("event_date", F.to_date("occurred_at"))


def start_lake_query(
    spark: SparkSession, settings: Settings, mode: Mode, trigger_s: int, max_offsets: int | None
) -> StreamingQuery:
    events = (
        parse_events(read_topic(spark, settings, max_offsets=max_offsets))
        .withWatermark("kafka_timestamp", LAKE_DEDUP_WINDOW)
        .dropDuplicatesWithinWatermark(["event_id"])
    )
    writer = (
        # One file per (date, type) partition per batch instead of one per task and partition:
        # fewer, larger objects for the lake's readers, and fewer S3 PUTs per batch.
        events.repartition("event_date", "event_type")
        .select(*RAW_COLUMNS)
        .writeStream.format("parquet")
        .queryName("land_events_lake")
        .option("path", f"{settings.lake_root}/{LAKE_EVENTS_PATH}")
        .option("checkpointLocation", f"{settings.checkpoints}/land_events_lake")
        .options(**LAKE_PARQUET_OPTIONS)
        .partitionBy("event_date", "event_type")
        .outputMode("append")
    )
    writer = (
        writer.trigger(availableNow=True)
        if mode == "available-now"
        else writer.trigger(processingTime=f"{trigger_s} seconds")
    )
    return writer.start()


def start_warehouse_query(
    spark: SparkSession, settings: Settings, mode: Mode, trigger_s: int, max_offsets: int | None
) -> StreamingQuery:
    warehouse = WarehouseWriter(settings)
    warehouse.ensure_tables()

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        warehouse.write_events(batch.select(*RAW_COLUMNS), label=f"stream batch {batch_id}")

    writer = (
        parse_events(read_topic(spark, settings, max_offsets=max_offsets))
        .writeStream.queryName("land_events_warehouse")
        .option("checkpointLocation", f"{settings.checkpoints}/land_events_warehouse")
        .foreachBatch(write_batch)
    )
    writer = (
        writer.trigger(availableNow=True)
        if mode == "available-now"
        else writer.trigger(processingTime=f"{trigger_s} seconds")
    )
    return writer.start()


QUERIES: dict[str, Callable[..., StreamingQuery]] = {
    "lake": start_lake_query,
    "warehouse": start_warehouse_query,
}


def land(
    spark: SparkSession,
    settings: Settings,
    *,
    mode: Mode = "available-now",
    sinks: tuple[str, ...] = ("lake", "warehouse"),
    trigger_s: int = 10,
    max_offsets: int | None = None,
    timeout_s: float | None = None,
) -> list[LandingResult]:
    """Run the landing queries; in available-now mode, return when both have caught up."""
    queries = [QUERIES[sink](spark, settings, mode, trigger_s, max_offsets) for sink in sinks]
    try:
        if mode == "continuous":
            # Runs until a query ends; waiting on the first query alone would let the other sink
            # die unnoticed while this one keeps going. A failed query raises here.
            spark.streams.awaitAnyTermination(timeout_s)
        for query in queries:
            if mode == "available-now":
                query.awaitTermination(timeout_s)
            if query.exception() is not None:
                raise RuntimeError(f"{query.name} failed: {query.exception()}")
    finally:
        for query in queries:
            if query.isActive:
                query.stop()
    return [
        LandingResult(
            query=q.name,
            batches=len(q.recentProgress),
            input_rows=sum(int(p.get("numInputRows", 0)) for p in q.recentProgress),
            durations_ms=_summed_durations(q.recentProgress),
        )
        for q in queries
    ]


def read_lake_events(
    spark: SparkSession,
    settings: Settings,
    date_from: str | None = None,
    date_to: str | None = None,
) -> DataFrame:
    """The lake's events (through the file sink's commit log, so only committed files)."""
    events = spark.read.parquet(f"{settings.lake_root}/{LAKE_EVENTS_PATH}")
    if date_from:
        events = events.where(F.col("event_date") >= F.lit(date_from).cast("date"))
    if date_to:
        events = events.where(F.col("event_date") <= F.lit(date_to).cast("date"))
    return events.select(*RAW_COLUMNS)
