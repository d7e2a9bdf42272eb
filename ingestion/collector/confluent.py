"""Optional Kafka client for the collector: confluent-kafka (librdkafka), when it is installed.

kafka-python spends ~70-100 µs of Python CPU per record (partitioning, record building, futures),
which caps a collector worker well below 20,000 events/s on a 2-core machine. librdkafka does
that work in C threads (~25 µs per record including compression). Selected with
``LMS_COLLECTOR_KAFKA_CLIENT=confluent-kafka``; the default stays kafka-python, which the
platform environment ships.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

from ingestion.collector.producer import ProducerUnavailable, Record, _AckWaiter
from ingestion.collector.settings import CollectorSettings
from lms.errors import LmsError


def confluent_config(settings: CollectorSettings) -> dict[str, Any]:
    ack_timeout_ms = int(settings.collector_ack_timeout_s * 1000)
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": "lms-collector",
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": settings.collector_linger_ms,
        "batch.size": settings.collector_batch_bytes,
        "compression.type": settings.collector_compression,
        "message.max.bytes": 2 * 1024 * 1024,
        "delivery.timeout.ms": ack_timeout_ms,
        "request.timeout.ms": max(1000, ack_timeout_ms - settings.collector_linger_ms - 1000),
        # Same partition for a key as the Java client and kafka-python (murmur2), so a student's
        # events share one partition whichever client wrote them.
        "partitioner": "murmur2_random",
        # As with kafka-python: never create a topic with broker defaults by producing to it.
        "allow.auto.create.topics": False,
    }


class ConfluentEventProducer:
    MAX_BLOCK_S = 5.0

    def __init__(self, settings: CollectorSettings) -> None:
        try:
            from confluent_kafka import Producer
        except ImportError:
            raise LmsError(
                "LMS_COLLECTOR_KAFKA_CLIENT=confluent-kafka needs the confluent-kafka package; "
                "install it or use kafka-python"
            ) from None
        self._settings = settings
        self._producer = Producer(confluent_config(settings))
        self._closed = threading.Event()
        # Delivery callbacks run inside poll(): one thread serves them for every request.
        self._poller = threading.Thread(target=self._poll, name="lms-collector-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)

    def connect(self) -> bool:
        try:
            self._producer.list_topics(timeout=5)
        except Exception:  # KafkaException; the module may not be importable for typing
            return False
        return True

    def _send_records(self, records: Sequence[Record], waiter: _AckWaiter) -> None:
        produce = self._producer.produce
        acked = waiter.acked
        failed = waiter.failed

        def delivered(err: Any, _msg: Any) -> None:
            if err is None:
                acked(None)
            else:
                failed(RuntimeError(str(err)))

        for topic, key, value in records:
            deadline = None
            while True:
                try:
                    produce(topic, value=value, key=key, on_delivery=delivered)
                    break
                except BufferError:
                    # Local queue full: wait for deliveries to drain it, at most MAX_BLOCK_S.
                    deadline = deadline or time.monotonic() + self.MAX_BLOCK_S
                    if time.monotonic() > deadline:
                        failed(BufferError("producer queue full"))
                        return
                    time.sleep(0.005)
                except Exception as exc:  # KafkaException: unknown topic, too large, closed
                    failed(exc)
                    return

    async def send_all(self, records: Sequence[Record]) -> None:
        waiter = _AckWaiter(asyncio.get_running_loop(), len(records))
        if not records:
            return
        await asyncio.to_thread(self._send_records, records, waiter)
        try:
            await asyncio.wait_for(waiter.future, self._settings.collector_ack_timeout_s + 2)
        except TimeoutError:
            raise ProducerUnavailable(
                f"Kafka did not acknowledge within {self._settings.collector_ack_timeout_s:g} s"
            ) from None

    def _describe(self, topic: str) -> str | None:
        # All topics: asking for one by name can create it on brokers that auto-create.
        metadata = self._producer.list_topics(timeout=3)
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            return f"topic {topic} does not exist (run `lms collector topics`)"
        partitions = described.partitions.values()
        if not partitions or any(p.leader < 0 for p in partitions):
            return f"topic {topic} has partitions without a leader"
        return None

    async def check_ready(self, topic: str) -> str | None:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._describe, topic), 5)
        except Exception as exc:
            return f"Kafka metadata unavailable ({type(exc).__name__})"

    def close(self) -> None:
        self._producer.flush(5)
        self._closed.set()
        self._poller.join(timeout=2)
