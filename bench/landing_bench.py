"""Landing throughput: events/s from Kafka to Parquet on S3 (Spark local mode, the lake query).

The topic is filled first (not timed); a small warm-up run loads Spark's classes and connects to
S3, then the timed availableNow run lands the whole backlog. The figure is events landed divided by
that run's wall-clock time, start-up of the session excluded (it is paid once per job, not per
event). Each run uses its own topic, bucket and checkpoints, and removes them afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from lms.contract.examples import load_examples
from lms.services.s3 import s3_client
from lms.settings import get_settings

EVENTS = int(os.environ.get("LMS_BENCH_LANDING_EVENTS", "1000000"))


def _payloads(n: int) -> list[tuple[bytes, bytes]]:
    examples = list(load_examples().values())
    start = datetime(2026, 9, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        event = dict(examples[i % len(examples)])
        event["event_id"] = str(uuid.UUID(int=i + 1, version=4))
        event["student_id"] = f"stu_{i % 5000:07d}"
        when = (start + timedelta(seconds=i * 3)).isoformat().replace("+00:00", "Z")
        event["occurred_at"] = event["received_at"] = when
        out.append((event["student_id"].encode(), orjson.dumps(event)))
    return out


def _remove_bucket(s3: Any, bucket: str) -> None:
    """Best effort: a failed clean-up must not lose the measurement (s3proxy's file-system
    backend refuses to delete some directory-like keys)."""
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                with contextlib.suppress(Exception):
                    s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
    except Exception as exc:
        print(f"  (bench bucket {bucket} left behind: {exc})")


def run() -> dict[str, float]:
    from ingestion.landing.events import land
    from ingestion.landing.spark import build_session

    tag = uuid.uuid4().hex[:8]
    checkpoints = Path(tempfile.mkdtemp(prefix="lms-bench-landing-"))
    settings = get_settings().model_copy(
        update={
            "kafka_topic_raw": f"lms.bench.landing.{tag}",
            "lake_bucket": f"lms-bench-landing-{tag}",
            "checkpoint_root": checkpoints.as_uri(),
        }
    )
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    admin.create_topics(
        [NewTopic(settings.kafka_topic_raw, num_partitions=4, replication_factor=1)]
    )
    s3 = s3_client(settings)
    s3.create_bucket(Bucket=settings.lake_bucket)
    spark = build_session(settings, "lms-bench-landing")
    try:
        producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            acks="all",
            linger_ms=20,
            batch_size=512 * 1024,
            compression_type="gzip",
        )
        warmup = 20_000
        records = _payloads(EVENTS + warmup)
        for key, value in records[:warmup]:
            producer.send(settings.kafka_topic_raw, key=key, value=value)
        producer.flush()
        land(spark, settings, sinks=("lake",))

        for key, value in records[warmup:]:
            producer.send(settings.kafka_topic_raw, key=key, value=value)
        producer.flush()
        producer.close()

        started = time.perf_counter()
        results = land(spark, settings, sinks=("lake",))
        elapsed = time.perf_counter() - started
        landed = sum(r.input_rows for r in results)
    finally:
        spark.stop()
        admin.delete_topics([settings.kafka_topic_raw])
        admin.close()
        _remove_bucket(s3, settings.lake_bucket)
        shutil.rmtree(checkpoints, ignore_errors=True)
    return {"landing_events_per_s": landed / elapsed, "landing_events": float(landed)}
