"""Spark landing against the real Kafka, S3 (s3proxy), PostgreSQL and BigQuery emulator.

Each test module run gets its own topic, bucket, checkpoint directory and raw schema, so it never
sees (or disturbs) another run's data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from lms.contract.examples import load_examples
from lms.services.s3 import s3_client
from lms.settings import Settings, get_settings

pytestmark = pytest.mark.integration

pyspark = pytest.importorskip("pyspark")

from ingestion.landing.events import land, read_lake_events  # noqa: E402
from ingestion.landing.warehouse import WarehouseWriter  # noqa: E402


def make_events(n: int, *, seed: int = 0, start: datetime | None = None) -> list[dict[str, Any]]:
    """n contract-valid events cycling through every event type, with fresh ids."""
    examples = list(load_examples().values())
    start = start or datetime(2026, 9, 1, 8, tzinfo=UTC)
    events = []
    for i in range(n):
        event = orjson.loads(orjson.dumps(examples[i % len(examples)]))
        event["event_id"] = str(uuid.UUID(int=(seed << 64) + i + 1, version=4))
        event["student_id"] = f"stu_{i % 50:07d}"
        moment = start + timedelta(minutes=i * 7)  # spreads events over several days
        event["occurred_at"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        event["received_at"] = event["occurred_at"]
        events.append(event)
    return events


def produce(settings: Settings, events: list[dict[str, Any]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    for event in events:
        producer.send(
            settings.kafka_topic_raw,
            key=event["student_id"].encode(),
            value=orjson.dumps(event),
        )
    producer.flush()
    producer.close()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    run = uuid.uuid4().hex[:8]
    base = get_settings()
    settings = base.model_copy(
        update={
            "kafka_topic_raw": f"lms.test.landing.{run}",
            "lake_bucket": f"lms-test-landing-{run}",
            "checkpoint_root": tmp_path_factory.mktemp("checkpoints").as_uri(),
            "raw_schema": f"raw_test_{run}",
            "bq_dataset": f"landing_{run}",
        }
    )
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    admin.create_topics(
        [NewTopic(settings.kafka_topic_raw, num_partitions=3, replication_factor=1)]
    )
    s3 = s3_client(settings)
    s3.create_bucket(Bucket=settings.lake_bucket)
    yield settings
    admin.delete_topics([settings.kafka_topic_raw])
    admin.close()
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {settings.raw_schema} cascade")


def warehouse_ids(settings: Settings) -> list[str]:
    with psycopg.connect(settings.warehouse_dsn) as conn:
        rows = conn.execute(f"select event_id::text from {settings.raw_schema}.events").fetchall()
    return [r[0] for r in rows]


def lake_ids(spark: Any, settings: Settings) -> list[str]:
    return [r.event_id for r in read_lake_events(spark, settings).select("event_id").collect()]


def test_events_land_exactly_once_after_a_resent_batch(spark: Any, settings: Settings) -> None:
    first = make_events(400, seed=1)
    produce(settings, first)
    land(spark, settings)
    # A client retrying a batch the collector already accepted: the same events again.
    produce(settings, first[:150])
    land(spark, settings)

    expected = sorted(e["event_id"] for e in first)
    assert sorted(lake_ids(spark, settings)) == expected
    assert sorted(warehouse_ids(settings)) == expected

    lake = read_lake_events(spark, settings)
    by_type = {r.event_type: r["count"] for r in lake.groupBy("event_type").count().collect()}
    assert len(by_type) == len(load_examples())  # partitioned by type, nothing lost to parsing
    row = lake.where(lake.event_id == first[0]["event_id"]).collect()[0]
    assert row.occurred_at.replace(tzinfo=UTC) == datetime.fromisoformat(first[0]["occurred_at"])
    assert orjson.loads(row.payload) == first[0]["payload"]


def test_restart_mid_stream_neither_loses_nor_duplicates(
    spark: Any, settings: Settings, tmp_path: Path
) -> None:
    before = set(lake_ids(spark, settings))
    events = make_events(3000, seed=2)
    produce(settings, events[:1500])
    env = {
        **os.environ,
        "LMS_KAFKA_TOPIC_RAW": settings.kafka_topic_raw,
        "LMS_LAKE_BUCKET": settings.lake_bucket,
        "LMS_CHECKPOINT_ROOT": settings.checkpoint_root or "",
        "LMS_RAW_SCHEMA": settings.raw_schema,
    }
    lms = Path(sys.executable).with_name("lms")
    job = subprocess.Popen(
        [str(lms), "ingest", "land", "--continuous", "--trigger", "1", "--max-offsets", "300"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "land.log").open("wb"),
        start_new_session=True,
    )
    try:
        # Wait until the lake query has committed at least one batch, then kill it hard while
        # it is still working through the backlog.
        commits = (
            Path(settings.checkpoints.removeprefix("file://")) / "land_events_lake" / "commits"
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and job.poll() is None:
            if commits.exists() and len(list(commits.glob("[0-9]*"))) >= 2:
                break
            time.sleep(0.5)
        assert job.poll() is None, (tmp_path / "land.log").read_text()[-2000:]
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # the job's own process group: its JVM included
        job.wait(30)
    produce(settings, events[1500:])
    land(spark, settings)

    expected = before | {e["event_id"] for e in events}
    lake = lake_ids(spark, settings)
    assert len(lake) == len(set(lake)), "duplicates in the lake"
    assert set(lake) == expected
    warehouse = warehouse_ids(settings)
    assert len(warehouse) == len(set(warehouse))
    assert set(warehouse) == expected


def test_replay_rebuilds_the_warehouse_from_the_lake(spark: Any, settings: Settings) -> None:
    writer = WarehouseWriter(settings)
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        conn.execute(f"delete from {settings.raw_schema}.events where event_date < '2026-09-03'")
    remaining = len(warehouse_ids(settings))
    lake = read_lake_events(spark, settings, "2026-09-01", "2026-09-02")
    inserted = writer.write_events(lake, label="test replay")
    assert inserted == lake.count() > 0
    # Replaying again adds nothing.
    assert writer.write_events(lake, label="test replay again") == 0
    assert len(warehouse_ids(settings)) == remaining + inserted


def test_bigquery_raw_layer_loads_into_the_emulator(spark: Any, settings: Settings) -> None:
    from ingestion.landing.bigquery import BigQueryRaw

    bq_settings = settings.model_copy(update={"land_to_bigquery": True})
    bq = BigQueryRaw(bq_settings)
    bq.ensure_events_table()
    lake = read_lake_events(spark, bq_settings, "2026-09-01", "2026-09-01")
    WarehouseWriter(bq_settings).write_events(lake, label="bq test")
    WarehouseWriter(bq_settings).write_events(lake, label="bq test again")  # idempotent
    table = f"{bq.dataset}.events"
    rows = list(
        bq.client.query(
            f"select count(*) as n, count(distinct event_id) as d from `{table}`"
        ).result()
    )
    assert rows[0]["n"] == rows[0]["d"] == lake.count() > 0


def test_email_pseudonym_is_a_keyed_hmac_of_the_lowercased_address(spark: Any) -> None:
    import hashlib
    import hmac

    from ingestion.landing.snapshots import pseudonymise

    people = spark.createDataFrame(
        [("stu_1", "Ana Silva", "Ana.Silva@Example.org", "PT")],
        "student_id string, full_name string, email string, country string",
    )
    for key in ("local-dev-only", "k" * 100):  # short keys are padded, long ones hashed first
        out = pseudonymise("students", people, key).collect()[0].asDict()
        assert set(out) == {"student_id", "country", "email_hash"}
        expected = hmac.new(key.encode(), b"ana.silva@example.org", hashlib.sha256).hexdigest()
        assert out["email_hash"] == expected
