"""The collector's default Kafka client: confluent-kafka (librdkafka).

kafka-python spends ~70-100 µs of Python CPU per record (partitioning, record building, futures),
which caps a collector worker well below 20,000 events/s on a 2-core machine. librdkafka does
that work in C threads; the Python side is one ``produce()`` call and one delivery callback per
record. ``LMS_COLLECTOR_KAFKA_CLIENT=kafka-python`` selects the pure-Python client instead
(ingestion/collector/producer.py).

Records are handed to librdkafka from the event loop itself (``produce()`` only queues; it
never waits for the network); only when the local queue is full does a request continue in a
worker thread that waits for room. A batch waits on one asyncio future resolved by its last
delivery callback (or its first failure) from the polling thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from ingestion.collector.producer import ProducerUnavailable, Record
from ingestion.collector.settings import CollectorSettings
from lms.errors import LmsError

log = logging.getLogger(__name__)


class _Delivery:
    """One batch's delivery callback: counts acknowledgements, resolves one loop future.

    Callbacks run on whichever thread serves librdkafka's queue (the poller, or close()'s flush):
    ``next()`` on an ``itertools.count`` is atomic, so no lock is needed per record.
    """

    __slots__ = ("_count", "_failed", "_future", "_loop", "_total")

    def __init__(self, loop: asyncio.AbstractEventLoop, total: int) -> None:
        self._loop = loop
        self._future: asyncio.Future[None] = loop.create_future()
        self._count = itertools.count(1)
        self._total = total
        self._failed = False

    @property
    def future(self) -> asyncio.Future[None]:
        return self._future

    def __call__(self, err: Any, _msg: Any = None) -> None:
        if err is None:
            if next(self._count) == self._total and not self._failed:
                self._notify(None)
        else:
            self.fail(err)

    def fail(self, err: Any) -> None:
        if self._failed:
            return
        self._failed = True
        name = err.name() if hasattr(err, "name") else type(err).__name__
        self._notify(f"Kafka refused the write: {name}")

    def _notify(self, problem: str | None) -> None:
        # RuntimeError: the loop closed during shutdown, nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._resolve, problem)

    def _resolve(self, problem: str | None) -> None:
        if self._future.done():
            return  # the request already timed out
        if problem is None:
            self._future.set_result(None)
        else:
            self._future.set_exception(ProducerUnavailable(problem))


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
        # Reconnect within a second once a restarted broker is back (librdkafka's default: 10 s).
        "reconnect.backoff.max.ms": 1000,
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
        # librdkafka's own log lines go through Python logging (JSON like the rest), served by
        # the polling thread.
        self._producer = Producer(
            confluent_config(settings), logger=logging.getLogger("lms.collector.kafka")
        )
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

    def _produce(
        self, records: Sequence[Record], delivery: _Delivery, start: int, wait: bool
    ) -> int:
        """Queue records from ``start``; returns where it stopped (a full queue when not
        ``wait``), ``len(records)`` when done or failed."""
        produce = self._producer.produce
        for index in range(start, len(records)):
            topic, key, value = records[index]
            deadline = None
            while True:
                try:
                    produce(topic, value=value, key=key, on_delivery=delivery)
                    break
                except BufferError:
                    if not wait:
                        return index
                    # Local queue full: wait for deliveries to drain it, at most MAX_BLOCK_S.
                    deadline = deadline or time.monotonic() + self.MAX_BLOCK_S
                    if time.monotonic() > deadline:
                        delivery.fail(BufferError("producer queue full"))
                        return len(records)
                    time.sleep(0.005)
                except Exception as exc:  # KafkaException: unknown topic, too large, closed
                    delivery.fail(exc)
                    return len(records)
        return len(records)

    async def send_all(self, records: Sequence[Record]) -> None:
        if not records:
            return
        delivery = _Delivery(asyncio.get_running_loop(), len(records))
        stopped = self._produce(records, delivery, 0, wait=False)
        if stopped < len(records):
            await asyncio.to_thread(self._produce, records, delivery, stopped, True)
        try:
            await asyncio.wait_for(delivery.future, self._settings.collector_ack_timeout_s + 2)
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
