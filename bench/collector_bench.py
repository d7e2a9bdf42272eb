"""Collector throughput into Kafka (acks=all), against the bare producers.

The collector runs as a uvicorn subprocess (1 worker, then 2) on the same machine as the load,
which comes from this process: async httpx clients posting pre-serialised batches of 500 unique
events. It runs with the default Kafka client (confluent-kafka), then with kafka-python. The bare
producers then write the very records the collector wrote (same keys, same values, same producer
settings) from a single loop: kafka-python's rate is the reference of collector_vs_bare_ratio (as
the issue asks), confluent-kafka's is reported alongside. The 1-minute load average before and
after is recorded: other work on the machine moves these figures. Bench topics and a bench API
key are created for the run and removed (topics deleted, key revoked) at the end; subprocesses are
stopped by pid.

Needs the local services (PostgreSQL for the key, Kafka): `lms services up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from ingestion.collector.confluent import confluent_config
from ingestion.collector.process import CollectorProcess
from ingestion.collector.producer import close_producer, producer_config
from ingestion.collector.settings import CollectorSettings
from ingestion.topics import admin_client, ensure_topics
from lms.auth import PostgresKeyStore, create_key, revoke_key
from lms.contract import load_examples

BATCH = 500
BATCHES = int(os.environ.get("LMS_BENCH_COLLECTOR_BATCHES", "120"))
WARMUP_BATCHES = 4
CONCURRENCY = {1: 4, 2: 8}
DEFAULT_CLIENT = "confluent-kafka"
CLIENTS = (DEFAULT_CLIENT, "kafka-python")


def make_bodies(n_batches: int, seed: str) -> list[bytes]:
    """Batches of unique, contract-valid events cycling through every event type."""
    examples = list(load_examples().values())
    bodies = []
    for b in range(n_batches):
        events = []
        for i in range(BATCH):
            event = dict(examples[(b * BATCH + i) % len(examples)])
            event["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}/{b}/{i}"))
            event["student_id"] = f"stu_{(b * BATCH + i) % 5000:07d}"
            events.append(event)
        bodies.append(orjson.dumps({"events": events}))
    return bodies


def start_collector(
    settings: CollectorSettings, workers: int, log: Path, client: str = DEFAULT_CLIENT
) -> CollectorProcess:
    env = {
        **os.environ,
        "LMS_KAFKA_TOPIC_RAW": settings.kafka_topic_raw,
        "LMS_KAFKA_TOPIC_DEAD_LETTER": settings.kafka_topic_dead_letter,
        "LMS_COLLECTOR_CREATE_TOPICS": "false",
        "LMS_COLLECTOR_KAFKA_CLIENT": client,
    }
    return CollectorProcess(env=env, log_path=log, workers=workers).start()


async def drive(
    base_url: str, key: str, bodies: list[bytes], concurrency: int
) -> tuple[int, float]:
    """Post every body with ``concurrency`` requests in flight; (events accepted, seconds)."""
    queue = list(reversed(bodies))
    accepted = 0
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=60, limits=limits
    ) as client:

        async def worker() -> None:
            nonlocal accepted
            while queue:
                response = await client.post("/v1/events", content=queue.pop())
                if response.status_code != 202:
                    raise RuntimeError(
                        f"collector answered {response.status_code}: {response.text[:200]}"
                    )
                accepted += orjson.loads(response.content)["accepted"]

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return accepted, time.perf_counter() - started


def _bare_records(bodies: list[bytes]) -> list[tuple[bytes, bytes]]:
    stamp = "2026-03-02T10:00:00.000000Z"
    records = []
    for body in bodies:
        for event in orjson.loads(body)["events"]:
            event["received_at"] = stamp
            records.append((event["student_id"].encode(), orjson.dumps(event)))
    return records


def bare_producer_rate(settings: CollectorSettings, topic: str, bodies: list[bytes]) -> float:
    """The same records from one kafka-python producer with the collector's settings."""
    from kafka import KafkaProducer

    records = _bare_records(bodies)
    producer = KafkaProducer(**producer_config(settings))
    try:
        producer.send(topic, b"warm-up").get(timeout=30)
        started = time.perf_counter()
        for key, value in records:
            producer.send(topic, value=value, key=key)
        producer.flush()
        return len(records) / (time.perf_counter() - started)
    finally:
        close_producer(producer, 10)


def bare_confluent_rate(settings: CollectorSettings, topic: str, bodies: list[bytes]) -> float:
    """The same records from one confluent-kafka producer with the collector's settings."""
    from confluent_kafka import Producer

    records = _bare_records(bodies)
    producer = Producer(confluent_config(settings))
    failed = 0

    def delivered(err: Any, _msg: Any) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    producer.produce(topic, b"warm-up", on_delivery=delivered)
    producer.flush(30)
    started = time.perf_counter()
    produce = producer.produce
    for key, value in records:
        while True:
            try:
                produce(topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    if producer.flush(60) or failed:
        raise RuntimeError(f"bare confluent-kafka producer: {failed} records failed")
    return len(records) / (time.perf_counter() - started)


def _load_average() -> float:
    return round(os.getloadavg()[0], 2)


def run() -> dict[str, float]:
    run_id = f"{int(time.time())}-{os.getpid()}"
    prefix = f"lms.bench.collector.{run_id}"
    settings = CollectorSettings(
        kafka_topic_raw=f"{prefix}.raw", kafka_topic_dead_letter=f"{prefix}.dead-letter"
    )
    bare = CollectorSettings(
        kafka_topic_raw=f"{prefix}.bare", kafka_topic_dead_letter=f"{prefix}.bare-dead-letter"
    )
    ensure_topics(settings)
    ensure_topics(bare)
    store = PostgresKeyStore(settings.platform_dsn)
    key_name = f"bench-collector-{run_id}"
    key, _ = create_key(store, key_name, "events:write")
    log = Path(tempfile.gettempdir()) / f"lms-collector-bench-{run_id}.log"
    figures: dict[str, float] = {"collector_load_avg_before": _load_average()}
    try:
        for client in CLIENTS:
            name = "" if client == DEFAULT_CLIENT else "_kafka_python"
            for workers in (1, 2):
                bodies = make_bodies(WARMUP_BATCHES + BATCHES, f"{run_id}/{client}/{workers}")
                collector = start_collector(settings, workers, log, client)
                try:
                    asyncio.run(drive(collector.url, key, bodies[:WARMUP_BATCHES], 2))
                    accepted, seconds = asyncio.run(
                        drive(
                            collector.url,
                            key,
                            bodies[WARMUP_BATCHES:],
                            CONCURRENCY[workers],
                        )
                    )
                finally:
                    collector.stop()
                if accepted != BATCH * BATCHES:
                    raise RuntimeError(f"{accepted} events accepted of {BATCH * BATCHES}")
                figures[f"collector{name}_events_per_s_{workers}w"] = round(accepted / seconds, 1)
        bodies = make_bodies(BATCHES, f"{run_id}/bare")
        bare_rate = bare_producer_rate(settings, bare.kafka_topic_raw, bodies)
        confluent_rate = bare_confluent_rate(settings, bare.kafka_topic_raw, bodies)
        figures["collector_load_avg_after"] = _load_average()
    finally:
        revoke_key(store, key_name)
        admin = admin_client(settings)
        try:
            names = [settings.kafka_topic_raw, settings.kafka_topic_dead_letter]
            names += [bare.kafka_topic_raw, bare.kafka_topic_dead_letter]
            with contextlib.suppress(Exception):
                admin.delete_topics(names)
        finally:
            admin.close()
    best_workers = max((1, 2), key=lambda w: figures[f"collector_events_per_s_{w}w"])
    best = figures[f"collector_events_per_s_{best_workers}w"]
    figures.update(
        collector_events_per_s=best,
        collector_best_workers=float(best_workers),
        bare_producer_events_per_s=round(bare_rate, 1),
        bare_confluent_events_per_s=round(confluent_rate, 1),
        collector_vs_bare_ratio=round(best / bare_rate, 3),
    )
    return figures


if __name__ == "__main__":
    result: Any = run()
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
