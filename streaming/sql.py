"""Small SQL builders shared by the jobs: the Kafka source table and document helpers.

Every job query yields the same four columns, ``(idx, doc_id, version, doc)``, which the one
Elasticsearch sink writes: the index, a deterministic id, an optional growing version, and the
document as JSON built in SQL.
"""

from __future__ import annotations

from streaming.config import StreamConfig

SOURCE = "events"
OUTPUT_COLUMNS = "idx, doc_id, version, doc"


def iso(column: str) -> str:
    """A timestamp column as ISO-8601 UTC text (the session time zone is UTC)."""
    return f"DATE_FORMAT({column}, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')"


def epoch_ms(column: str) -> str:
    """A TIMESTAMP_LTZ column as epoch milliseconds (BIGINT)."""
    return (
        f"(UNIX_TIMESTAMP(CAST({column} AS STRING)) * 1000"
        f" + CAST(DATE_FORMAT({column}, 'SSS') AS BIGINT))"
    )


def seconds(n: int | float) -> str:
    """An interval literal of ``n`` seconds (any size: the default precision stops at 99)."""
    total = int(n)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{secs:02d}' DAY TO SECOND"


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def source_ddl(cfg: StreamConfig) -> str:
    """The collector's raw topic as a table with event time and a bounded-lateness watermark.

    Only the fields the jobs read are declared (JSON fields not declared are skipped). The
    collector validated every record against the contract; a record that still does not parse
    is skipped rather than stopping the live jobs (it is already in the lake for replay).
    """
    startup = "group-offsets"
    return f"""
    CREATE TABLE {SOURCE} (
        event_id STRING,
        event_type STRING,
        occurred_at TIMESTAMP_LTZ(3),
        received_at STRING,
        student_id STRING,
        course_id STRING,
        session_id STRING,
        client ROW<device STRING, network_id STRING>,
        payload ROW<
            quiz_id STRING, attempt_id STRING, question_id STRING, topic_id STRING,
            chapter_id STRING, is_correct BOOLEAN, time_taken_s DOUBLE, score DOUBLE,
            max_score DOUBLE, live_class_id STRING, context STRING, hidden_s DOUBLE,
            watched_s DOUBLE, video_id STRING, page_type STRING, path STRING
        >,
        WATERMARK FOR occurred_at AS occurred_at - {seconds(cfg.out_of_orderness_s)}
    ) WITH (
        'connector' = 'kafka',
        'topic' = {quote(cfg.topic)},
        'properties.bootstrap.servers' = {quote(cfg.kafka_bootstrap)},
        'properties.group.id' = {quote(cfg.group_id)},
        'properties.auto.offset.reset' = 'earliest',
        'scan.startup.mode' = '{startup}',
        'scan.watermark.idle-timeout' = '{cfg.idle_partition_s} s',
        'format' = 'json',
        'json.timestamp-format.standard' = 'ISO-8601',
        'json.ignore-parse-errors' = 'true',
        'json.fail-on-missing-field' = 'false'
    )
    """
