"""The collector's path to Kafka: kafka-python's producer behind an awaitable ``send_all``.

kafka-python delivers results through callbacks on its sender thread. A batch waits on a single
asyncio future that the *last* acknowledgement (or the first failure) resolves through
``call_soon_threadsafe``, so a 500-event batch costs one loop wake-up, not 500. ``send()`` itself
runs in a worker thread: it blocks while metadata is fetched or the buffer is full, and the event
loop must keep serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2

from ingestion.collector.settings import CollectorSettings

log = logging.getLogger(__name__)


def use_native_crc32c() -> str:
    """Give kafka-python a C CRC-32C when it would otherwise use its pure-Python one.

    Every record batch is checksummed with CRC-32C. kafka-python uses the ``crc32c`` package
    when installed, else a pure-Python loop that costs ~0.1 s per 225 KB (one 500-event batch):
    that alone capped the producer near 5,000 events/s on this machine. ``google_crc32c`` (in
    the platform environment through google-cloud-bigquery) computes the same checksum in C.
    Once ``crc32c`` is in the environment kafka-python uses it and this does nothing.
    Returns which implementation is in use.
    """
    from kafka.record import default_records, util

    if getattr(util, "crc32c_c", None) is not None:
        return "crc32c"
    try:
        import google_crc32c
    except ImportError:
        return "pure-python"
    if google_crc32c.implementation != "c":
        return "pure-python"

    def calc_crc32c(memview: Any) -> int:
        return int(google_crc32c.value(bytes(memview)))

    default_records.calc_crc32c = calc_crc32c
    util.calc_crc32c = calc_crc32c
    return "google_crc32c"


CRC32C_IMPLEMENTATION = use_native_crc32c()


def repair_idempotent_reset() -> bool:
    """Make kafka-python's idempotent producer ask for a new producer id after a reset.

    When a batch that had already been sent expires (typically: a broker restart outlasts the
    delivery timeout while the batch is being retried), kafka-python's Sender calls
    ``TransactionManager.reset_producer_id()``: the producer id becomes -1 but the state stays
    READY. The Sender re-initialises only from UNINITIALIZED (``init_producer_id`` is a no-op
    otherwise), and refuses to send, or even to expire batches, without a producer id: from then
    on every record waits forever and the collector answers 503 after its ack timeout, with
    Kafka healthy and nothing logged (kafka-python 3.0.12). The Java client's
    ``resetIdempotentProducerId`` moves to UNINITIALIZED, which is what this does, so the next
    Sender loop sends InitProducerId and production resumes with fresh sequence numbers.
    Returns whether the patch is in place.
    """
    try:
        from kafka.producer.transaction_manager import TransactionManager, TransactionState
    except ImportError:  # pragma: no cover - another kafka-python layout
        return False
    original = TransactionManager.reset_producer_id
    if getattr(original, "_lms_repaired", False):
        return True

    def reset_producer_id(self: Any) -> None:
        original(self)
        if not self.is_transactional():
            with self._lock:
                # Not through _transition_to: kafka-python forbids any move to UNINITIALIZED.
                self._current_state = TransactionState.UNINITIALIZED
                self._last_error = None
            log.warning("kafka producer id reset after expired in-flight records; re-initialising")

    reset_producer_id._lms_repaired = True  # type: ignore[attr-defined]
    TransactionManager.reset_producer_id = reset_producer_id  # type: ignore[method-assign]
    return True


IDEMPOTENT_RESET_REPAIRED = repair_idempotent_reset()


def producer_wedged(producer: KafkaProducer) -> bool:
    """True when an idempotent producer has no producer id and nothing will fetch one (the state
    ``repair_idempotent_reset`` prevents; checked as a second line of defence)."""
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None or manager.is_transactional():
        return False
    try:
        from kafka.producer.transaction_manager import TransactionState
    except ImportError:  # pragma: no cover
        return False
    return bool(
        not manager.has_producer_id()
        and manager._current_state == TransactionState.READY
        and not manager.has_in_flight_transactional_request()
    )


def close_producer(producer: KafkaProducer, timeout_s: float) -> None:
    """Close, and force the close when pending records cannot be flushed in time.

    kafka-python's ``close`` raises from its flush on timeout *before* force-closing the sender
    thread, which then keeps running (and the collector's shutdown failed on that exception).
    """
    try:
        producer.close(timeout=timeout_s)
    except KafkaError as exc:
        log.warning("kafka producer did not flush in %g s (%s); closing it anyway", timeout_s, exc)
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
            sender.join(timeout=5)
        producer._closed = True  # keeps __del__ from trying again


# (topic, key, value): keys and values are bytes, serialised by the caller.
Record = tuple[str, bytes | None, bytes]


class ProducerUnavailable(Exception):
    """Kafka did not acknowledge: the request fails with 503 and the client retries."""


class EventProducer(Protocol):
    async def send_all(self, records: Sequence[Record]) -> None:
        """Return once Kafka acknowledged every record (acks=all), else raise
        ProducerUnavailable. Partial delivery is possible on failure; event_ids make retries
        safe downstream."""
        ...

    async def check_ready(self, topic: str) -> str | None:
        """None when the topic's metadata is available, else why not."""
        ...

    def close(self) -> None: ...


class _AckWaiter:
    """Counts acknowledgements of one batch on the sender thread; resolves one loop future."""

    __slots__ = ("_failed", "_future", "_lock", "_loop", "_remaining")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self._loop = loop
        self._future: asyncio.Future[None] = loop.create_future()
        self._remaining = count
        self._failed = False
        self._lock = threading.Lock()
        if count == 0:
            self._future.set_result(None)

    @property
    def future(self) -> asyncio.Future[None]:
        return self._future

    def acked(self, _metadata: Any) -> None:
        with self._lock:
            self._remaining -= 1
            finished = self._remaining == 0 and not self._failed
        if finished:
            self._notify(None)

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self._failed:
                return
            self._failed = True
        self._notify(exc)

    def _notify(self, exc: BaseException | None) -> None:
        # RuntimeError: the loop closed during shutdown, nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._resolve, exc)

    def _resolve(self, exc: BaseException | None) -> None:
        if self._future.done():
            return  # the request already timed out
        if exc is None:
            self._future.set_result(None)
        else:
            self._future.set_exception(
                ProducerUnavailable(f"Kafka refused the write: {type(exc).__name__}")
            )


def producer_config(settings: CollectorSettings) -> dict[str, Any]:
    """kafka-python settings: durable (acks=all, idempotent) and batched (linger, compression)."""
    ack_timeout_ms = int(settings.collector_ack_timeout_s * 1000)
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "client_id": "lms-collector",
        "acks": "all",
        # Idempotence (default on in kafka-python >= 2.1, explicit here): a retried produce
        # request cannot duplicate or reorder records within a partition.
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": settings.collector_linger_ms,
        "batch_size": settings.collector_batch_bytes,
        "compression_type": None
        if settings.collector_compression == "none"
        else settings.collector_compression,
        # Matches the topics' max.message.bytes (ingestion/topics.py).
        "max_request_size": 2 * 1024 * 1024,
        # Retries happen inside the delivery timeout; after it the batch fails and the client
        # retries with the same event_ids.
        "retries": 2**31 - 1,
        "request_timeout_ms": max(1000, ack_timeout_ms - settings.collector_linger_ms - 1000),
        "delivery_timeout_ms": ack_timeout_ms,
        "max_block_ms": 5000,
        # kafka-python backs off reconnecting up to 30 s by default: after a broker restart the
        # collector then kept answering 503 for up to 30 s with Kafka healthy. 1 s, as the Java
        # client, is one connection attempt per second while a broker is down.
        "reconnect_backoff_max_ms": 1000,
        # Topics are created by ingestion/topics.py with their partitions and retention; a
        # mistyped topic name must fail (503, /ready says why), not create a topic with defaults.
        "allow_auto_create_topics": False,
        # The constructor blocks until a broker answers; startup must not hang on a down Kafka.
        "bootstrap_timeout_ms": 5000,
        # kafka-python's per-record metrics cost CPU on the hot path and nothing reads them.
        "metrics_enabled": False,
    }


class KafkaEventProducer:
    """The real producer, created lazily so the collector starts (and says "not ready") while
    Kafka is down, and recovers without a restart."""

    # After a failed connection attempt, fail fast for this long instead of making every request
    # wait for a connection timeout.
    RETRY_AFTER_S = 2.0
    # Distinct keys (students) whose partition is remembered, per topic.
    MAX_CACHED_KEYS = 500_000
    # A request waits this much beyond the delivery timeout, by which kafka-python must have
    # acknowledged or failed every record.
    ACK_MARGIN_S = 2.0

    def __init__(self, settings: CollectorSettings) -> None:
        self._settings = settings
        self._config = producer_config(settings)
        self._producer: KafkaProducer | None = None
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()
        self._admin_lock = threading.Lock()
        self._failed_at = 0.0
        self._closed = False
        self._partition_tables: dict[tuple[str, int], dict[bytes, int]] = {}

    def _get(self) -> KafkaProducer:
        producer = self._producer
        if producer is not None:
            if not producer_wedged(producer):
                return producer
            self._discard(producer, "no producer id and none requested")
        with self._lock:
            if self._producer is not None:
                return self._producer
            if self._closed:
                raise ProducerUnavailable("the collector is shutting down")
            if time.monotonic() - self._failed_at < self.RETRY_AFTER_S:
                raise ProducerUnavailable("Kafka is unreachable; retrying shortly")
            try:
                self._producer = KafkaProducer(**self._config)
            except KafkaError as exc:
                self._failed_at = time.monotonic()
                log.warning(
                    "kafka producer unavailable: %s at %s",
                    type(exc).__name__,
                    self._settings.kafka_bootstrap_servers,
                )
                raise ProducerUnavailable("Kafka is unreachable") from None
            return self._producer

    def _discard(self, producer: KafkaProducer, why: str) -> None:
        """Replace a producer that stopped delivering: the next request builds a new one.

        Its pending records fail (their requests answer 503 and are retried by the clients);
        the close runs on a thread of its own so no request waits for it.
        """
        with self._lock:
            if self._producer is not producer:
                return  # already replaced by another request
            self._producer = None
        log.error("kafka producer replaced: %s", why)
        threading.Thread(
            target=close_producer, args=(producer, 0), name="lms-collector-close", daemon=True
        ).start()

    def connect(self) -> bool:
        """Try to connect now (startup); False when Kafka is not reachable yet."""
        try:
            self._get()
        except ProducerUnavailable:
            return False
        return True

    def _partition_table(self, producer: KafkaProducer, topic: str) -> tuple[int, dict[bytes, int]]:
        count = len(producer.partitions_for(topic))
        table = self._partition_tables.get((topic, count))
        if table is None or len(table) > self.MAX_CACHED_KEYS:
            # New topic, more partitions (keys move, as they would with Kafka's partitioner),
            # or too many keys: start afresh.
            table = self._partition_tables[(topic, count)] = {}
        return count, table

    def _send_records(self, records: Sequence[Record], waiter: _AckWaiter) -> KafkaProducer:
        producer = self._get()
        send = producer.send
        acked = waiter.acked
        failed = waiter.failed
        tables: dict[str, tuple[int, dict[bytes, int]]] = {}
        for topic, key, value in records:
            try:
                # The partition kafka-python's default partitioner would pick (murmur2 of the key,
                # like the Java client), remembered per key: hashing in pure Python cost ~20 µs
                # per record, a fifth of the producer's time, for a few thousand distinct keys.
                partition = None
                if key is not None:
                    count_table = tables.get(topic)
                    if count_table is None:
                        count_table = tables[topic] = self._partition_table(producer, topic)
                    count, table = count_table
                    partition = table.get(key)
                    if partition is None:
                        partition = table[key] = (murmur2(key) & 0x7FFFFFFF) % count
                future = send(topic, value=value, key=key, partition=partition)
            except KafkaError as exc:
                # Buffer full or metadata unavailable for max_block_ms: stop, nothing more will
                # succeed soon. Records already queued may still be delivered (at-least-once).
                failed(exc)
                return producer
            future.add_callback(acked)
            future.add_errback(failed)
        return producer

    async def send_all(self, records: Sequence[Record]) -> None:
        loop = asyncio.get_running_loop()
        waiter = _AckWaiter(loop, len(records))
        if not records:
            return
        producer = await asyncio.to_thread(self._send_records, records, waiter)
        try:
            # A little beyond the delivery timeout: kafka-python fails the records itself first.
            await asyncio.wait_for(
                waiter.future, self._settings.collector_ack_timeout_s + self.ACK_MARGIN_S
            )
        except TimeoutError:
            # kafka-python neither delivered nor expired the records within its own delivery
            # timeout: the producer is stuck (see repair_idempotent_reset); later requests get a
            # new one instead of waiting on it too.
            self._discard(producer, "records neither acknowledged nor expired in time")
            raise ProducerUnavailable(
                f"Kafka did not acknowledge within {self._settings.collector_ack_timeout_s:g} s"
            ) from None

    def _describe(self, topic: str) -> str | None:
        with self._admin_lock:
            if self._admin is None:
                self._admin = KafkaAdminClient(
                    bootstrap_servers=self._config["bootstrap_servers"],
                    client_id="lms-collector-ready",
                    request_timeout_ms=3000,
                    bootstrap_timeout_ms=3000,
                )
            topics = self._admin.describe_topics([topic])
        if not topics or topics[0].get("error_code", 0) != 0:
            return f"topic {topic} does not exist (run `lms collector topics`)"
        partitions = topics[0].get("partitions", [])
        if not partitions or any(p.get("leader_id", p.get("leader", -1)) < 0 for p in partitions):
            return f"topic {topic} has partitions without a leader"
        return None

    async def check_ready(self, topic: str) -> str | None:
        try:
            await asyncio.to_thread(self._get)
            return await asyncio.wait_for(asyncio.to_thread(self._describe, topic), 5)
        except ProducerUnavailable as exc:
            return str(exc)
        except (KafkaError, TimeoutError) as exc:
            return f"Kafka metadata unavailable ({type(exc).__name__})"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            producer, self._producer = self._producer, None
        if producer is not None:
            # Flushes what is queued; waiting requests have had their answer or will time out.
            close_producer(producer, 5)
        with self._admin_lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
