"""The collector's pieces without HTTP: batch parsing, redaction, the recent-ids cache, the
acknowledgement bridge from kafka-python's thread to asyncio, topic and producer settings."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from ingestion.collector.batch import (
    BatchError,
    parse_batch,
    prepare_batch,
    received_at_now,
)
from ingestion.collector.dedup import RecentIds
from ingestion.collector.producer import ProducerUnavailable, _AckWaiter, producer_config
from ingestion.collector.redact import EMAIL, PHONE, redact_text, redact_unknown
from ingestion.collector.settings import CollectorSettings
from ingestion.topics import topic_specs
from lms.contract import load_example, validate_event
from lms.errors import UsageError

# --- parse_batch ---------------------------------------------------------------------------


def test_parse_batch_returns_the_events_list() -> None:
    assert parse_batch(b'{"events": [1, {"a": 2}]}', 10) == [1, {"a": 2}]


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"", 400), (b"{", 400), (b"[]", 400), (b'{"events": 1}', 400), (b'{"events": [1,2,3]}', 413)],
)
def test_parse_batch_errors(body: bytes, status: int) -> None:
    with pytest.raises(BatchError) as info:
        parse_batch(body, 2)
    assert info.value.status == status


def test_parse_batch_does_not_echo_long_unknown_keys() -> None:
    with pytest.raises(BatchError) as info:
        parse_batch(orjson.dumps({"events": [], "k" * 10_000: 1}), 2)
    assert len(info.value.message) < 200


# --- prepare_batch -------------------------------------------------------------------------


def fresh(event_type: str = "login") -> dict[str, Any]:
    event = load_example(event_type)
    event["event_id"] = str(uuid.uuid4())
    return event


def test_prepare_batch_stamps_and_keys() -> None:
    events = [fresh("login"), fresh("feedback")]
    prepared = prepare_batch(
        events,
        recent=RecentIds(100, 60),
        raw_topic="raw",
        dead_letter_topic="dlq",
        key_name="k",
        received_at="2026-03-02T10:00:00.000000Z",
    )
    assert [o.status for o in prepared.outcomes] == ["accepted", "accepted"]
    assert [(t, k) for t, k, _ in prepared.records] == [
        ("raw", b"stu_0000123"),
        ("raw", b"stu_0000123"),
    ]
    for _, _, value in prepared.records:
        decoded = orjson.loads(value)
        assert decoded["received_at"] == "2026-03-02T10:00:00.000000Z"
        validate_event(decoded)  # what reaches Kafka is still a contract-valid event
    assert prepared.accepted_ids == [e["event_id"] for e in events]


def test_received_at_is_utc_contract_format() -> None:
    event = fresh()
    event["received_at"] = received_at_now()
    assert event["received_at"].endswith("Z")
    assert validate_event(event).received_at is not None


def test_only_acknowledged_ids_are_remembered() -> None:
    recent = RecentIds(100, 60)
    events = [fresh()]
    kwargs: dict[str, Any] = {
        "recent": recent,
        "raw_topic": "raw",
        "dead_letter_topic": "dlq",
        "key_name": "k",
    }
    prepare_batch(events, **kwargs)  # prepared but never acknowledged
    assert prepare_batch(events, **kwargs).outcomes[0].status == "accepted"
    recent.add_many([events[0]["event_id"]])
    assert prepare_batch(events, **kwargs).outcomes[0].status == "duplicate"


# --- redaction -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe@example.org please", f"write to {EMAIL} please"),
        ("a.b+tag@sub.mail.example.co.uk", EMAIL),
        ("call +33 6 12 34 56 78", f"call {PHONE}"),
        ("call (555) 123-4567 today", f"call {PHONE} today"),
        ("0612345678", PHONE),
        ("06.12.34.56.78", PHONE),
        ("Clear explanation, the second example went a bit fast.", None),
        ("Quiz 3 took 45 minutes, I scored 18/20 in 2026", None),
        ("due 2026-03-02 or 12/03/2026", None),
        ("video vid_001_03_1 at 12:30", None),
        ("event 2d602183-41eb-4288-9650-38e97c36a170 failed", None),
        ("12345678-1234-5678-9012-123456789012", None),
        ("ref AB-1234567/x9", None),
        ("call 555-123-4567.", f"call {PHONE}."),
        ("+1-555-123-4567 or 06 12 34 56 78", f"{PHONE} or {PHONE}"),
        ("", None),
    ],
)
def test_redact_text(text: str, expected: str | None) -> None:
    assert redact_text(text) == (text if expected is None else expected)


def test_uuids_are_never_taken_for_phone_numbers() -> None:
    # Rejected events are redacted field by field, ids included: an id that changed would no
    # longer match the event the sender holds.
    rng = random.Random(7)
    for _ in range(20_000):
        value = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        assert redact_text(value) == value


def test_redaction_never_exceeds_the_contract_length() -> None:
    text = ("a@b.co " * 300)[:2000]
    assert len(redact_text(text)) <= 2000


def test_redaction_is_linear_on_adversarial_input() -> None:
    import time

    started = time.perf_counter()
    for text in ("a" * 200_000 + "@", "a@" * 100_000, "1-" * 100_000):
        redact_text(text)
    assert time.perf_counter() - started < 2


def test_redact_unknown_walks_any_shape_and_caps_depth() -> None:
    value: Any = {"x": ["me@example.org", 1, None, {"y": "call 0612345678"}]}
    assert redact_unknown(value) == {"x": [EMAIL, 1, None, {"y": f"call {PHONE}"}]}
    deep: Any = "x"
    for _ in range(100):
        deep = [deep]
    orjson.dumps(redact_unknown(deep))  # dumpable: the depth was capped


# --- recent ids ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_recent_ids_expire_after_ttl() -> None:
    clock = Clock()
    recent = RecentIds(10, ttl_s=60, clock=clock)
    recent.add_many(["a", "b"])
    assert recent.seen("a") and not recent.seen("c")
    clock.now = 61
    assert not recent.seen("a")
    recent.add_many(["c"])  # expired entries are dropped on the next insert
    assert len(recent) == 1


def test_recent_ids_are_bounded_oldest_first() -> None:
    clock = Clock()
    recent = RecentIds(3, ttl_s=600, clock=clock)
    for i, event_id in enumerate("abcde"):
        clock.now = i
        recent.add_many([event_id])
    assert len(recent) == 3
    assert [recent.seen(x) for x in "abcde"] == [False, False, True, True, True]


def test_recent_ids_disabled() -> None:
    recent = RecentIds(0, ttl_s=60)
    recent.add_many(["a"])
    assert not recent.seen("a")


# --- acknowledgement bridge ----------------------------------------------------------------


def test_ack_waiter_resolves_once_all_records_are_acked_from_another_thread() -> None:
    async def scenario() -> None:
        waiter = _AckWaiter(asyncio.get_running_loop(), 500)
        threads = [
            threading.Thread(target=lambda: [waiter.acked(None) for _ in range(100)])
            for _ in range(5)
        ]
        for thread in threads:
            thread.start()
        await asyncio.wait_for(waiter.future, 5)
        for thread in threads:
            thread.join()

    asyncio.run(scenario())


def test_ack_waiter_fails_on_first_error() -> None:
    async def scenario() -> None:
        waiter = _AckWaiter(asyncio.get_running_loop(), 3)
        waiter.acked(None)
        threading.Thread(target=waiter.failed, args=(RuntimeError("boom"),)).start()
        with pytest.raises(ProducerUnavailable, match="RuntimeError"):
            await asyncio.wait_for(waiter.future, 5)
        waiter.acked(None)
        waiter.acked(None)  # late acknowledgements after a failure are ignored
        await asyncio.sleep(0)

    asyncio.run(scenario())


def test_ack_waiter_for_no_records_is_done() -> None:
    async def scenario() -> None:
        assert _AckWaiter(asyncio.get_running_loop(), 0).future.done()

    asyncio.run(scenario())


# --- settings, topics, producer config -------------------------------------------------------


def test_collector_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMS_COLLECTOR_MAX_EVENTS", "50")
    monkeypatch.setenv("LMS_KAFKA_TOPIC_RAW", "run-1.raw")
    settings = CollectorSettings()
    assert settings.collector_max_events == 50
    assert settings.kafka_topic_raw == "run-1.raw"
    assert settings.collector_max_body_bytes == 1024 * 1024


def test_topic_specs() -> None:
    raw, dead = topic_specs(CollectorSettings(kafka_raw_partitions=6))
    assert raw.partitions == 6 and raw.replication_factor == 1
    assert raw.configs["retention.ms"] == str(7 * 24 * 3600 * 1000)
    assert dead.configs["retention.ms"] == str(30 * 24 * 3600 * 1000)
    assert raw.configs["min.insync.replicas"] == "1"
    assert int(raw.configs["max.message.bytes"]) > 1024 * 1024


def test_topic_specs_refuse_impossible_isr() -> None:
    with pytest.raises(UsageError, match="cannot exceed"):
        topic_specs(CollectorSettings(kafka_min_insync_replicas=2, kafka_replication_factor=1))


def test_producer_is_durable_and_batched() -> None:
    config = producer_config(CollectorSettings())
    assert config["acks"] == "all" and config["enable_idempotence"] is True
    assert config["linger_ms"] > 0 and config["compression_type"] == "lz4"
    assert config["delivery_timeout_ms"] >= config["request_timeout_ms"] + config["linger_ms"]
    # Every key is one this kafka-python version knows (it refuses unknown ones at startup).
    assert set(config) <= set(KafkaProducer.DEFAULT_CONFIG)


def test_partition_choice_matches_kafka_python_default_partitioner() -> None:
    from kafka.partitioner.default import DefaultPartitioner

    from ingestion.collector.producer import KafkaEventProducer

    class Cluster:
        def topics(self) -> set[str]:
            return {"raw"}

        def partitions_for_topic(self, topic: str) -> set[int]:
            return set(range(6))

        available_partitions_for_topic = partitions_for_topic

    class Future:
        def add_callback(self, f: Any) -> None:
            pass

        def add_errback(self, f: Any) -> None:
            pass

    class Producer:
        def __init__(self) -> None:
            self.sent: list[tuple[bytes | None, int | None]] = []

        def partitions_for(self, topic: str) -> set[int]:
            return set(range(6))

        def send(
            self, topic: str, value: bytes, key: bytes | None, partition: int | None
        ) -> Future:
            self.sent.append((key, partition))
            return Future()

    producer = KafkaEventProducer(CollectorSettings())
    fake = Producer()
    producer._producer = fake  # type: ignore[assignment]
    keys = [f"stu_{i:07d}".encode() for i in range(300)] * 2

    async def scenario() -> None:
        waiter = _AckWaiter(asyncio.get_running_loop(), len(keys))
        producer._send_records([("raw", key, b"{}") for key in keys], waiter)

    asyncio.run(scenario())
    expected = DefaultPartitioner()
    for key, partition in fake.sent:
        assert partition == expected.partition("raw", None, key, None, b"{}", Cluster())
    assert len({p for _, p in fake.sent}) == 6


def test_confluent_client_settings_match_the_kafka_python_ones() -> None:
    from ingestion.collector.confluent import confluent_config

    config = confluent_config(CollectorSettings())
    assert config["acks"] == "all" and config["enable.idempotence"] is True
    # librdkafka's default partitioner hashes keys differently from Java and kafka-python.
    assert config["partitioner"] == "murmur2_random"


def test_confluent_client_without_the_package_is_a_clear_error() -> None:
    import importlib.util

    from ingestion.collector.confluent import ConfluentEventProducer
    from lms.errors import LmsError

    if importlib.util.find_spec("confluent_kafka") is not None:
        pytest.skip("confluent-kafka is installed")
    with pytest.raises(LmsError, match="needs the confluent-kafka package"):
        ConfluentEventProducer(CollectorSettings())


def test_defaults_confluent_client_lz4_and_port_18080() -> None:
    settings = CollectorSettings()
    assert settings.collector_kafka_client == "confluent-kafka"
    assert settings.collector_compression == "lz4"
    assert settings.collector_port == 18080


# --- kafka-python producer recovery -------------------------------------------------------------


def test_idempotent_producer_id_reset_asks_for_a_new_id() -> None:
    """kafka-python's reset left the producer READY without an id: nothing was sent again."""
    from kafka.producer.transaction_manager import (
        ProducerIdAndEpoch,
        TransactionManager,
        TransactionState,
    )

    from ingestion.collector.producer import IDEMPOTENT_RESET_REPAIRED

    assert IDEMPOTENT_RESET_REPAIRED
    manager = TransactionManager()
    manager.init_producer_id()
    manager._pending_requests.clear()  # as if the InitProducerId request had been sent
    manager._transition_to(TransactionState.READY)
    manager.set_producer_id_and_epoch(ProducerIdAndEpoch(7, 0))
    # What the Sender does when an expired batch had already been sent to the broker.
    manager.reset_producer_id()
    assert not manager.has_producer_id()
    assert manager._current_state == TransactionState.UNINITIALIZED
    # The Sender's next loop calls this: it must enqueue an InitProducerId request again.
    manager.init_producer_id()
    assert manager._current_state == TransactionState.INITIALIZING
    assert manager.next_request_handler(False) is not None


def test_a_stuck_producer_is_replaced() -> None:
    from ingestion.collector.producer import KafkaEventProducer, producer_wedged

    class Manager:
        def __init__(self) -> None:
            from kafka.producer.transaction_manager import TransactionState

            self._current_state = TransactionState.READY

        def is_transactional(self) -> bool:
            return False

        def has_producer_id(self) -> bool:
            return False

        def has_in_flight_transactional_request(self) -> bool:
            return False

    class Stuck:
        _transaction_manager = Manager()
        closed = threading.Event()

        def close(self, timeout: float) -> None:
            self.closed.set()

    stuck = Stuck()
    assert producer_wedged(stuck)  # type: ignore[arg-type]
    producer = KafkaEventProducer(CollectorSettings())
    producer._producer = stuck  # type: ignore[assignment]
    producer._failed_at = __import__("time").monotonic()  # no reconnect attempt in this test
    with pytest.raises(ProducerUnavailable):
        producer._get()
    assert producer._producer is None
    assert stuck.closed.wait(5)


def test_producer_timeout_replaces_the_producer() -> None:
    """No acknowledgement nor failure within the delivery timeout: the next request gets a new
    producer instead of queueing behind the stuck one."""
    from ingestion.collector.producer import KafkaEventProducer

    class Future:
        def add_callback(self, f: Any) -> None:
            pass

        def add_errback(self, f: Any) -> None:
            pass

    class Silent:
        closed = threading.Event()

        def partitions_for(self, topic: str) -> set[int]:
            return {0}

        def send(self, *args: Any, **kwargs: Any) -> Future:
            return Future()

        def close(self, timeout: float) -> None:
            self.closed.set()

    producer = KafkaEventProducer(CollectorSettings(collector_ack_timeout_s=0.05))
    producer.ACK_MARGIN_S = 0.05
    silent = Silent()
    producer._producer = silent  # type: ignore[assignment]

    async def scenario() -> None:
        with pytest.raises(ProducerUnavailable, match="did not acknowledge"):
            await producer.send_all([("raw", b"k", b"{}")])

    asyncio.run(scenario())
    assert producer._producer is None
    assert silent.closed.wait(5)


# --- batch screening equals the contract models -----------------------------------------------

_SCREEN_VALUES: list[Any] = [
    None,
    "5",
    5,
    5.0,
    -1,
    True,
    "",
    "x" * 2001,
    float("nan"),
    float("inf"),
    [],
    {},
    2**40,
    "2026-02-30T00:00:00Z",
    "2026-03-02T10:00:00+01:00",
    "2026-03-02T10:00:00",
    "2026-03-02T10:00:00.1234567Z",
    "2026-03-02T10:00:00Z\n",
    "2026-03-02T24:00:00Z",
    "2024-02-29T23:59:59.5+00:00",
    "stu 1",
    "6513270E-269E-4D37-B2A7-4DE452E6B438",
    "1.7",
    "2.0",
    "login",
]


def _variants(event: dict[str, Any]) -> list[Any]:
    import copy

    def paths(d: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        out = []
        for key, value in d.items():
            out.append((*prefix, key))
            if isinstance(value, dict):
                out += paths(value, (*prefix, key))
        return out

    def parent(d: Any, path: tuple[str, ...]) -> Any:
        for key in path[:-1]:
            d = d[key]
        return d

    out: list[Any] = [event]
    for path in paths(event):
        removed = copy.deepcopy(event)
        del parent(removed, path)[path[-1]]
        out.append(removed)
        for value in _SCREEN_VALUES:
            changed = copy.deepcopy(event)
            parent(changed, path)[path[-1]] = value
            out.append(changed)
    for where in ((), ("payload",), ("client",)):
        extra = copy.deepcopy(event)
        parent(extra, (*where, "x"))["extra"] = 1
        out.append(extra)
    return out


def test_batch_screen_refuses_exactly_what_the_models_refuse() -> None:
    from lms.contract import check_event, load_examples
    from lms.contract.validate import invalid_indices

    events = [v for example in load_examples().values() for v in _variants(example)]
    events += [42, None, "event", [], {}]
    expected = {i for i, event in enumerate(events) if not check_event(event).ok}
    assert 0 < len(expected) < len(events)
    assert invalid_indices(events) == expected
    assert invalid_indices([]) == set()
