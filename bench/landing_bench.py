"""Landing throughput: events/s from Kafka to Parquet on S3 (Spark local mode, the lake query).

The backlog looks like what the continuous job meets: a day of a large school's traffic (event
times spread over 24 hours, so a batch touches one or two ``event_date`` partitions and every event
type), produced the way the collector produces it (lz4, keyed by student). The topic is filled
first (not timed); a warm-up run (a fifth of the backlog) loads Spark's classes, JIT-compiles the
hot path and connects to S3, then the timed availableNow run lands the whole backlog. The figure is
events landed divided by that run's wall-clock time, start-up of the session excluded (it is paid
once per job, not per event). ``landing_cpu_us_per_event`` is the Spark JVM's CPU time per event in
the same run: it does not depend on what else the machine is doing, so a figure taken on a busy
machine can still be compared; ``landing_load_avg_before``/``_after`` record how busy it was. The
run also prints Spark's ``durationMs`` per query (addBatch, walCommit, ...), summed over its
micro-batches, to show whether the time went into the work or into per-batch overheads. Each run
uses its own topic, bucket and checkpoints, and removes them afterwards.
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
import psutil
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from lms.contract.examples import load_examples
from lms.services.s3 import s3_client
from lms.settings import get_settings

EVENTS = int(os.environ.get("LMS_BENCH_LANDING_EVENTS", "1000000"))
SPAN_S = 24 * 3600


def _payloads(n: int, span_s: float = SPAN_S) -> list[tuple[bytes, bytes]]:
    examples = list(load_examples().values())
    start = datetime(2026, 9, 1, tzinfo=UTC)
    step_s = span_s / n
    out = []
    for i in range(n):
        event = dict(examples[i % len(examples)])
        event["event_id"] = str(uuid.UUID(int=i + 1, version=4))
        event["student_id"] = f"stu_{i % 5000:07d}"
        when = (start + timedelta(seconds=i * step_s)).isoformat().replace("+00:00", "Z")
        event["occurred_at"] = event["received_at"] = when
        out.append((event["student_id"].encode(), orjson.dumps(event)))
    return out


def _jvm_cpu_s() -> float:
    """CPU seconds used so far by the Spark JVM(s) this process started."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name() == "java":
                times = child.cpu_times()
                total += times.user + times.system
    return total


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
            compression_type="lz4",
        )
        # The continuous job runs JIT-compiled code; warm the JVM on a fair slice before timing.
        warmup = max(20_000, EVENTS // 5)
        records = _payloads(EVENTS + warmup)
        for key, value in records[:warmup]:
            producer.send(settings.kafka_topic_raw, key=key, value=value)
        producer.flush()
        land(spark, settings, sinks=("lake",))

        for key, value in records[warmup:]:
            producer.send(settings.kafka_topic_raw, key=key, value=value)
        producer.flush()
        producer.close()

        load_before = os.getloadavg()[0]
        cpu_before = _jvm_cpu_s()
        started = time.perf_counter()
        results = land(spark, settings, sinks=("lake",))
        elapsed = time.perf_counter() - started
        cpu_s = _jvm_cpu_s() - cpu_before
        load_after = os.getloadavg()[0]
        landed = sum(r.input_rows for r in results)
        for result in results:
            print(f"  {result.query}: {result.batches} batch(es), durationMs {result.durations_ms}")
    finally:
        spark.stop()
        admin.delete_topics([settings.kafka_topic_raw])
        admin.close()
        _remove_bucket(s3, settings.lake_bucket)
        shutil.rmtree(checkpoints, ignore_errors=True)
    return {
        "landing_events_per_s": landed / elapsed,
        "landing_events": float(landed),
        "landing_cpu_us_per_event": cpu_s / landed * 1e6,
        "landing_load_avg_before": load_before,
        "landing_load_avg_after": load_after,
    }
