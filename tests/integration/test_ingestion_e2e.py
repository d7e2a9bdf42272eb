"""Ingestion end to end on the real services: simulator → collector → Kafka → Spark → lake,
PostgreSQL raw layer and the BigQuery emulator; OLTP snapshots with personal data removed.

One simulated school is pushed through a collector started for this module (its own topics,
bucket, raw schema and BigQuery dataset), including a retried batch after a collector restart and
a Kafka broker restart in the middle of ingestion. Then every layer is reconciled by event id.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from kafka import KafkaConsumer

from ingestion.collector.process import CollectorProcess
from ingestion.post import PostTally, post_files
from lms.auth.manage import create_key
from lms.auth.store import PostgresKeyStore
from lms.services.manager import ServiceManager
from lms.services.s3 import s3_client
from lms.settings import Settings, get_settings
from lms.simulator.batch import run_simulation
from lms.simulator.config import SimulationConfig

# The module's fixture sends a school through restarts of the collector and of Kafka: on a busy
# machine that takes longer than the default per-test limit (which counts fixture set-up).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def env_settings(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, str]]:
    run = uuid.uuid4().hex[:8]
    overrides = {
        "kafka_topic_raw": f"lms.test.e2e.raw.{run}",
        "kafka_topic_dead_letter": f"lms.test.e2e.dlq.{run}",
        "lake_bucket": f"lms-test-e2e-{run}",
        "checkpoint_root": tmp_path_factory.mktemp("e2e-checkpoints").as_uri(),
        "raw_schema": f"raw_e2e_{run}",
        "bq_dataset": f"e2e_{run}",
        "land_to_bigquery": True,
    }
    settings = get_settings().model_copy(update=overrides)
    env = {**os.environ, **{f"LMS_{k.upper()}": str(v) for k, v in overrides.items()}}
    return settings, env


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory, env_settings: Any) -> dict[str, Any]:
    settings, _ = env_settings
    out = tmp_path_factory.mktemp("school")
    cfg = SimulationConfig(
        students=80, courses=2, days=21, seed=11, invalid_rate=0.01, cheater_share=0.05
    )
    manifest = run_simulation(cfg, out, oltp_dsn=settings.oltp_dsn, workers=2)
    return {"dir": out, "manifest": manifest}


@pytest.fixture(scope="module")
def ingested(
    env_settings: Any,
    school: dict[str, Any],
    services: ServiceManager,
    spark: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    settings, env = env_settings
    store = PostgresKeyStore(settings.platform_dsn)
    key, _ = create_key(store, f"e2e-{uuid.uuid4().hex[:8]}", "events:write")
    logs = tmp_path_factory.mktemp("collector")
    collector = CollectorProcess(env=env, log_path=logs / "collector.log")
    collector.start()
    s3 = s3_client(settings)
    s3.create_bucket(Bucket=settings.lake_bucket)
    try:
        parts = sorted(Path(school["dir"]).glob("*.jsonl"))
        lines = b"".join(p.read_bytes() for p in parts).splitlines(keepends=True)
        half = len(lines) // 2
        first, second = logs / "first.jsonl", logs / "second.jsonl"
        first.write_bytes(b"".join(lines[:half]))
        second.write_bytes(b"".join(lines[half:]))

        tally = post_files(first, collector.url, key)

        # A client retrying a batch after the collector lost its memory of recent ids (restart):
        # the collector accepts them again, and the layers below must still hold them once.
        collector.stop()
        collector.start()
        retried = logs / "retried.jsonl"
        retried.write_bytes(b"".join(lines[:400]))
        retry_tally = post_files(retried, collector.url, key)

        # The second half goes in while the Kafka broker is restarted: requests during the outage
        # get 503 and are retried by the sender; every acknowledged event must survive.
        second_tally: list[PostTally] = []
        sender = threading.Thread(
            target=lambda: second_tally.append(
                post_files(second, collector.url, key, concurrency=2)
            )
        )
        sender.start()
        time.sleep(1.0)
        services.down(["kafka"])
        time.sleep(3.0)
        services.up(["kafka"])
        sender.join(300)
        assert second_tally, "sender did not finish"

        from ingestion.landing.events import land
        from ingestion.landing.snapshots import snapshot

        land(spark, settings)
        snapshot(spark, settings)
        yield {
            "settings": settings,
            "spark": spark,
            "tallies": [tally, retry_tally, second_tally[0]],
            "collector_log": collector.log_path,
        }
    finally:
        collector.stop()
        with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
            conn.execute(f"drop schema if exists {settings.raw_schema} cascade")
        shutil.rmtree(logs, ignore_errors=True)


def accepted_ids(ingested: dict[str, Any]) -> set[str]:
    ids: set[str] = set()
    for tally in ingested["tallies"]:
        ids |= tally.accepted_ids
    return ids


def test_every_acknowledged_event_is_in_each_layer_exactly_once(
    ingested: dict[str, Any], school: dict[str, Any]
) -> None:
    settings, spark = ingested["settings"], ingested["spark"]
    first, retry, second = ingested["tallies"]
    manifest = school["manifest"]
    assert retry.accepted > 0  # the retried batch really went to Kafka a second time
    expected = accepted_ids(ingested)
    # Every distinct valid event of the school was acknowledged (duplicates of the simulator's
    # mobile clients were short-circuited or de-duplicated, invalid ones dead-lettered).
    assert len(expected) == manifest["events"]["valid_events"]
    assert first.rejected + second.rejected == manifest["events"]["invalid"]

    from ingestion.landing.events import read_lake_events

    lake = [r.event_id for r in read_lake_events(spark, settings).select("event_id").collect()]
    assert len(lake) == len(set(lake)) == len(expected)
    assert set(lake) == expected

    with psycopg.connect(settings.warehouse_dsn) as conn:
        rows = conn.execute(f"select event_id::text from {settings.raw_schema}.events").fetchall()
    warehouse = [r[0] for r in rows]
    assert len(warehouse) == len(set(warehouse)) == len(expected)
    assert set(warehouse) == expected

    from ingestion.landing.bigquery import BigQueryRaw

    bq = BigQueryRaw(settings)
    query = f"select count(*) as n, count(distinct event_id) as d from `{bq.dataset}.events`"
    counts = next(iter(bq.client.query(query).result()))
    assert counts["n"] == counts["d"] == len(expected)


def test_invalid_events_are_dead_lettered_with_reasons(
    ingested: dict[str, Any], school: dict[str, Any]
) -> None:
    settings = ingested["settings"]
    consumer = KafkaConsumer(
        settings.kafka_topic_dead_letter,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    letters = [orjson.loads(m.value) for m in consumer]
    consumer.close()
    # Invalid events are dead-lettered every time they are sent: the retried slice's ones twice.
    retried = ingested["tallies"][1].rejected
    assert len(letters) == school["manifest"]["events"]["invalid"] + retried
    assert school["manifest"]["events"]["invalid"] > 0
    for letter in letters:
        assert letter["reason"]
        assert "payload" in letter or "original" in letter or "event" in letter


def test_no_personal_data_in_the_lake_or_the_warehouse(ingested: dict[str, Any]) -> None:
    settings, spark = ingested["settings"], ingested["spark"]
    with psycopg.connect(settings.oltp_dsn) as conn:
        people = conn.execute(
            "select full_name, email from lms.students union all "
            "select full_name, email from lms.teachers"
        ).fetchall()
    needles = {email.lower() for _, email in people} | {name.lower() for name, _ in people}
    assert len(needles) > 50

    from pyspark.sql import functions as F

    def texts(frame: Any) -> list[str]:
        row_json = F.to_json(F.struct(*[F.col(c) for c in frame.columns]))
        return [r[0].lower() for r in frame.select(row_json).collect()]

    lake_rows = texts(spark.read.parquet(f"{settings.lake_root}/events"))
    for table in ("students", "teachers", "enrollments"):
        lake_rows += texts(spark.read.parquet(f"{settings.lake_root}/oltp/{table}"))
    assert lake_rows
    student_lake = spark.read.parquet(f"{settings.lake_root}/oltp/students")
    assert "email_hash" in student_lake.columns
    assert not {"full_name", "email", "date_of_birth"} & set(student_lake.columns)

    with psycopg.connect(settings.warehouse_dsn) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = %s",
                (settings.raw_schema,),
            )
        ]
        warehouse_rows = []
        for table in tables:
            warehouse_rows += [
                r[0].lower()
                for r in conn.execute(
                    f"select row_to_json(t)::text from {settings.raw_schema}.{table} t"
                )
            ]
    assert "oltp_students" in tables and warehouse_rows

    haystack = "\n".join(lake_rows + warehouse_rows)
    found = sorted(n for n in needles if n in haystack)
    assert not found, f"personal data in clear: {found[:5]}"
    # The collector's log must not carry them either.
    log = ingested["collector_log"].read_text().lower()
    assert not [n for n in needles if n in log]
