"""The landing job's parse step on a local Spark (no services, no connector jars)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from ingestion.landing import events as ev
from lms.contract.examples import load_examples

pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("lms-unit-landing-parse")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield session
    session.stop()


def _kafka_rows(spark: Any, values: list[bytes | None]) -> Any:
    from pyspark.sql.types import (
        BinaryType,
        IntegerType,
        LongType,
        StructField,
        StructType,
        TimestampType,
    )

    schema = StructType(
        [
            StructField("value", BinaryType()),
            StructField("partition", IntegerType()),
            StructField("offset", LongType()),
            StructField("timestamp", TimestampType()),
        ]
    )
    appended = datetime(2026, 3, 2, 10, 0, 0)
    return spark.createDataFrame([(v, 0, i, appended) for i, v in enumerate(values)], schema)


def test_valid_events_keep_their_fields_and_payload_text(spark: Any) -> None:
    examples = load_examples()
    values = [json.dumps(e).encode() for e in examples.values()]
    rows = ev.parse_events(_kafka_rows(spark, values)).select(*ev.RAW_COLUMNS).collect()
    assert len(rows) == len(examples)
    by_id = {r.event_id: r for r in rows}
    for event in examples.values():
        row = by_id[event["event_id"]]
        assert row.event_type == event["event_type"]
        assert row.student_id == event["student_id"]
        assert json.loads(row.payload) == event["payload"]
        assert json.loads(row.client) == event["client"]
        assert row.event_date.isoformat() == event["occurred_at"][:10]


def test_unparseable_records_are_left_out_without_failing_the_batch(spark: Any) -> None:
    good = json.dumps(next(iter(load_examples().values()))).encode()
    values = [good, b"{not json", None, b"", b"[1, 2]", b'{"event_id": "only-an-id"}']
    rows = ev.parse_events(_kafka_rows(spark, values)).collect()
    assert [r.kafka_offset for r in rows] == [0]


def test_each_record_is_parsed_once(spark: Any) -> None:
    # The filter on parsed fields must not be pushed below the parse, where the optimizer would
    # evaluate from_json again for every field the filter reads.
    parsed = ev.parse_events(_kafka_rows(spark, [b"{}"])).select(*ev.RAW_COLUMNS)
    plan = parsed._jdf.queryExecution().optimizedPlan().toString()
    assert plan.count("from_json") == 1, plan


def test_lake_parquet_options_reach_the_writer(spark: Any, tmp_path: Any) -> None:
    # Parquet ignores an unknown key silently: check the written file, column by column.
    import pyarrow.parquet as pq

    examples = load_examples()
    values = [json.dumps(e).encode() for e in examples.values()] * 20
    events = ev.parse_events(_kafka_rows(spark, values)).select(*ev.RAW_COLUMNS)
    events.coalesce(1).write.options(**ev.LAKE_PARQUET_OPTIONS).parquet(str(tmp_path / "lake"))
    (path,) = (tmp_path / "lake").glob("*.parquet")
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    columns = {row_group.column(i).path_in_schema: row_group.column(i) for i in range(13)}
    for name in ("event_id", "payload", "kafka_offset"):
        assert not columns[name].has_dictionary_page, name
    for name in ("event_type", "student_id", "client"):
        assert columns[name].has_dictionary_page, name
    assert not columns["payload"].is_stats_set
    assert columns["event_id"].is_stats_set
