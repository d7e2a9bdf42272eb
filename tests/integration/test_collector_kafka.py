"""The collector against the real Kafka and PostgreSQL: keys from the CLI and the Python API,
a mixed batch read back from the raw and dead-letter topics, retries, 401/403, /ready.

The app runs in-process with its real lifespan (topics ensured, the configured Kafka client,
keys in ``platform.api_keys``); the restart test runs it as a uvicorn subprocess with each client
and restarts Kafka through the services manager. Each module run writes to its own topics,
deleted at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer
from typer.testing import CliRunner

from ingestion.collector.app import create_app
from ingestion.collector.settings import CollectorSettings
from ingestion.topics import admin_client, ensure_topics
from lms.auth import PostgresKeyStore, create_key, hash_key, revoke_key
from lms.auth.store import migrate
from lms.cli.keys import app as keys_cli
from lms.contract import EVENT_TYPES, load_examples

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
EXAMPLES = load_examples()


@pytest.fixture(scope="module")
def settings() -> Iterator[CollectorSettings]:
    settings = CollectorSettings(
        kafka_topic_raw=f"lms.test.collector.{RUN}.raw",
        kafka_topic_dead_letter=f"lms.test.collector.{RUN}.dead-letter",
        kafka_raw_partitions=3,
    )
    yield settings
    _delete_topics(settings, prefix=f"lms.test.collector.{RUN}.")


def _delete_topics(settings: CollectorSettings, prefix: str) -> None:
    """Delete this run's topics that exist (a test run with -k may not have created them all)."""
    admin = admin_client(settings)
    try:
        names = [name for name in admin.list_topics() if name.startswith(prefix)]
        if names:
            admin.delete_topics(names)
    finally:
        admin.close()


@pytest.fixture(scope="module")
def store(settings: CollectorSettings) -> PostgresKeyStore:
    return PostgresKeyStore(settings.platform_dsn)


@pytest.fixture(scope="module")
def writer_key(store: PostgresKeyStore) -> Iterator[str]:
    key, _ = create_key(store, f"test-collector-writer-{RUN}", "events:write")
    yield key
    revoke_key(store, f"test-collector-writer-{RUN}")


@pytest.fixture(scope="module")
def client(settings: CollectorSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def event(event_type: str, student: str) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(orjson.dumps(EXAMPLES[event_type]))
    out["event_id"] = str(uuid.uuid4())
    out["student_id"] = student
    return out


def consume(
    topic: str, settings: CollectorSettings, expected: int, wait_s: float = 30
) -> list[Any]:
    """Every record of the topic from the start; waits for ``expected`` then a little longer,
    so that an unexpected extra record would be seen too."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    records: list[Any] = []
    try:
        deadline = time.monotonic() + wait_s
        extra_until: float | None = None
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
            if len(records) >= expected and extra_until is None:
                extra_until = time.monotonic() + 2
            if extra_until is not None and time.monotonic() > extra_until:
                break
    finally:
        consumer.close()
    return records


def post(client: TestClient, key: str | None, body: Any) -> Any:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return client.post("/v1/events", content=orjson.dumps(body), headers=headers)


def test_topics_are_created_with_their_settings(
    client: TestClient, settings: CollectorSettings
) -> None:
    # The app's startup created them; a second pass finds nothing to do.
    assert ensure_topics(settings) == []
    admin = admin_client(settings)
    try:
        [raw] = admin.describe_topics([settings.kafka_topic_raw])
    finally:
        admin.close()
    assert len(raw["partitions"]) == 3


def test_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    response = client.get("/ready")
    assert response.status_code == 200, response.text


def test_ready_is_503_when_the_topic_is_missing(settings: CollectorSettings) -> None:
    missing = settings.model_copy(
        update={
            "kafka_topic_raw": f"lms.test.collector.{RUN}.absent",
            "collector_create_topics": False,
        }
    )
    with TestClient(create_app(missing)) as client:
        response = client.get("/ready")
    assert response.status_code == 503
    assert "does not exist" in response.json()["detail"]
    # Asking about it did not create it with the broker's defaults.
    admin = admin_client(settings)
    try:
        assert missing.kafka_topic_raw not in admin.list_topics()
    finally:
        admin.close()


def test_mixed_batch_lands_in_raw_and_dead_letter_then_retry_is_duplicate(
    client: TestClient, settings: CollectorSettings, writer_key: str
) -> None:
    valid = [event(EVENT_TYPES[i % len(EVENT_TYPES)], f"stu_{i % 4:07d}") for i in range(20)]
    valid[3]["occurred_at"] = "2030-01-01T00:00:00Z"  # clock skew is kept
    bad_range = event("quiz_submit", "stu_0000009")
    bad_range["payload"]["score"] = -5
    bad_type = event("login", "stu_0000009") | {"event_type": "teleport"}
    events = [*valid[:10], bad_range, *valid[10:], bad_type, 42]
    response = post(client, writer_key, {"events": events})
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (20, 0, 3)
    rejected = [r for r in body["results"] if r["status"] == "rejected"]
    assert [(r["index"], r["reason"]) for r in rejected] == [
        (10, "out_of_range"),
        (21, "unknown_event_type"),
        (22, "not_an_object"),
    ]

    raw = consume(settings.kafka_topic_raw, settings, expected=20)
    assert len(raw) == 20
    by_id = {orjson.loads(r.value)["event_id"]: r for r in raw}
    assert set(by_id) == {e["event_id"] for e in valid}
    for sent in valid:
        record = by_id[sent["event_id"]]
        value = orjson.loads(record.value)
        assert record.key == sent["student_id"].encode()
        assert value["received_at"].endswith("Z")
        assert value["occurred_at"] == sent["occurred_at"]
    # One student's events share a partition, in the order sent.
    for student in {e["student_id"] for e in valid}:
        records = [r for r in raw if r.key == student.encode()]
        assert len({r.partition for r in records}) == 1
        sent_order = [e["event_id"] for e in valid if e["student_id"] == student]
        got = [orjson.loads(r.value)["event_id"] for r in sorted(records, key=lambda r: r.offset)]
        assert got == sent_order

    dead = consume(settings.kafka_topic_dead_letter, settings, expected=3)
    values = sorted((orjson.loads(r.value) for r in dead), key=lambda v: v["index"])
    assert [v["reason"] for v in values] == ["out_of_range", "unknown_event_type", "not_an_object"]
    assert values[0]["event"] == bad_range
    assert values[0]["api_key"] == f"test-collector-writer-{RUN}"
    assert values[0]["message"].startswith("payload.score")
    assert values[2]["event"] == 42
    assert all(v["received_at"].endswith("Z") for v in values)

    # The client retries the same batch: valid events are duplicates, nothing new in raw.
    retry = post(client, writer_key, {"events": events})
    assert retry.status_code == 202
    assert (retry.json()["accepted"], retry.json()["duplicate"]) == (0, 20)
    assert len(consume(settings.kafka_topic_raw, settings, expected=20)) == 20


def test_feedback_is_redacted_in_kafka(
    client: TestClient, settings: CollectorSettings, writer_key: str
) -> None:
    feedback = event("feedback", "stu_0000077")
    feedback["payload"]["text"] = "Nice! write me: someone@example.org / +1 415 555 0100"
    assert post(client, writer_key, {"events": [feedback]}).json()["accepted"] == 1
    raw = consume(settings.kafka_topic_raw, settings, expected=21)
    [record] = [r for r in raw if r.key == b"stu_0000077"]
    assert orjson.loads(record.value)["payload"]["text"] == "Nice! write me: [email] / [phone]"


def test_real_keys_401_403_and_revocation(
    client: TestClient, store: PostgresKeyStore, settings: CollectorSettings
) -> None:
    body = {"events": [event("login", "stu_0000001")]}
    assert post(client, None, body).status_code == 401
    assert post(client, "lms_abcdefgh_" + "x" * 43, body).status_code == 401

    # A key made with the CLI, with another scope: 403.
    result = CliRunner().invoke(
        keys_cli, ["create", "--name", f"test-collector-reader-{RUN}", "--scopes", "alerts:read"]
    )
    assert result.exit_code == 0, result.output
    reader_key = result.stdout.strip().splitlines()[0]
    assert reader_key.startswith("lms_")
    response = post(client, reader_key, body)
    assert response.status_code == 403
    assert "insufficient_scope" in response.headers["www-authenticate"]

    # A revoked key (never cached by this app) is refused.
    old_key, _ = create_key(store, f"test-collector-old-{RUN}", "events:write")
    revoke_key(store, f"test-collector-old-{RUN}")
    response = post(client, old_key, body)
    assert response.status_code == 401 and response.json()["detail"] == "API key revoked"
    revoke_key(store, f"test-collector-reader-{RUN}")


def test_key_store_keeps_digests_only_and_records_use(
    store: PostgresKeyStore, settings: CollectorSettings, writer_key: str, client: TestClient
) -> None:
    with psycopg.connect(settings.platform_dsn, autocommit=True) as conn:
        assert migrate(conn) == []  # idempotent
        row = conn.execute(
            "select hash, prefix, scopes, last_used_at from platform.api_keys where name = %s",
            (f"test-collector-writer-{RUN}",),
        ).fetchone()
    assert row is not None
    digest, prefix, scopes, last_used_at = row
    assert digest == hash_key(writer_key) and writer_key not in digest
    assert writer_key.startswith(f"lms_{prefix}_")
    assert scopes == ["events:write"]
    assert last_used_at is not None  # the earlier requests used it

    listed = CliRunner().invoke(keys_cli, ["list"])
    assert listed.exit_code == 0
    assert prefix in listed.stdout and writer_key not in listed.stdout


# --- Kafka broker restart during ingestion -----------------------------------------------------

RESTART_BATCH = 200
# Kafka is back: from this long after it is healthy, every request must succeed.
RECOVERY_S = 20.0
# How long the sender keeps going after the recovery deadline.
STEADY_S = 8.0


class _Sender:
    """Posts unique batches continuously, retrying a batch after a 503 (same event_ids) like a
    real client, and records every request's outcome."""

    def __init__(self, base_url: str, key: str) -> None:
        import threading

        self.base_url = base_url
        self.key = key
        self.stop = threading.Event()
        # (started monotonic, seconds, status, attempt, event_ids)
        self.requests: list[tuple[float, float, int | str, int, list[str]]] = []
        self.acknowledged: dict[str, int] = {}  # event_id -> attempt on which it was accepted
        self.thread = threading.Thread(target=self._run, name="restart-sender", daemon=True)

    def _batch(self, n: int) -> list[dict[str, Any]]:
        return [
            event("login", f"stu_{(n * RESTART_BATCH + i) % 997:07d}") for i in range(RESTART_BATCH)
        ]

    def _run(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        n = 0
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=60) as client:
            while not self.stop.is_set():
                events = self._batch(n)
                n += 1
                body = orjson.dumps({"events": events})
                ids = [e["event_id"] for e in events]
                attempt = 0
                while not self.stop.is_set():
                    attempt += 1
                    started = time.monotonic()
                    try:
                        response = client.post("/v1/events", content=body)
                        status: int | str = response.status_code
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    self.requests.append(
                        (started, time.monotonic() - started, status, attempt, ids)
                    )
                    if status == 202:
                        for outcome in response.json()["results"]:
                            if outcome["status"] == "accepted":
                                self.acknowledged[outcome["event_id"]] = attempt
                        break
                    time.sleep(0.5)  # Retry-After says 2; a quicker retry finds recovery sooner


@pytest.mark.parametrize("client_name", ["kafka-python", "confluent-kafka"])
def test_kafka_restart_loses_no_acknowledged_event_and_recovers(
    client_name: str, settings: CollectorSettings, writer_key: str
) -> None:
    import os
    from pathlib import Path

    from ingestion.collector.process import CollectorProcess
    from lms.services.manager import ServiceManager
    from lms.settings import get_settings

    restart = settings.model_copy(
        update={
            "kafka_topic_raw": f"lms.test.collector.{RUN}.restart-{client_name}",
            "kafka_topic_dead_letter": f"lms.test.collector.{RUN}.restart-{client_name}.dl",
        }
    )
    ensure_topics(restart)
    log_path = Path(f"/tmp/lms-test-collector-restart-{RUN}-{client_name}.log")
    env = {
        **os.environ,
        "LMS_KAFKA_TOPIC_RAW": restart.kafka_topic_raw,
        "LMS_KAFKA_TOPIC_DEAD_LETTER": restart.kafka_topic_dead_letter,
        "LMS_KAFKA_RAW_PARTITIONS": "3",
        "LMS_COLLECTOR_KAFKA_CLIENT": client_name,
    }
    collector = CollectorProcess(env=env, log_path=log_path).start(timeout_s=60)
    base_url = collector.url
    manager = ServiceManager(get_settings())
    sender = _Sender(base_url, writer_key)
    try:
        sender.thread.start()
        time.sleep(3)
        try:
            manager.down(["kafka"])
            time.sleep(3)
        finally:
            manager.up(["kafka"])  # always leave Kafka running
        healthy_at = time.monotonic()
        time.sleep(RECOVERY_S + STEADY_S)
    finally:
        sender.stop.set()
        sender.thread.join(timeout=90)
        collector.stop()

    requests = sender.requests
    statuses = {status for _, _, status, _, _ in requests}
    assert statuses <= {202, 503}, (statuses, log_path)
    # 503s during the outage are expected but not required: when the broker is back within the
    # ack timeout, librdkafka delivers the waiting records and the request still gets its 202.
    late = [r for r in requests if r[0] >= healthy_at + RECOVERY_S]
    assert len(late) >= 5
    failing = [(round(r[0] - healthy_at, 1), round(r[1], 1), r[2]) for r in late if r[2] != 202]
    assert not failing, f"requests failing {RECOVERY_S:g} s after Kafka was back: {failing}"
    first_ok = min(r[0] + r[1] for r in requests if r[0] >= healthy_at and r[2] == 202)

    acknowledged = sender.acknowledged
    records = consume(restart.kafka_topic_raw, restart, expected=len(acknowledged), wait_s=60)
    counts: dict[str, int] = {}
    for record in records:
        event_id = orjson.loads(record.value)["event_id"]
        counts[event_id] = counts.get(event_id, 0) + 1
    missing = [i for i in acknowledged if i not in counts]
    assert not missing, f"{len(missing)} acknowledged events are not in the raw topic"
    # Accepted on the first attempt: written exactly once. Accepted on a retry after a 503:
    # the failed attempt may have been partly written (at-least-once; downstream dedups).
    first_try_dups = [i for i, a in acknowledged.items() if a == 1 and counts[i] != 1]
    assert not first_try_dups, f"{len(first_try_dups)} first-attempt events written twice"
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    print(
        f"\n{client_name}: {len(requests)} requests "
        f"({sum(r[2] == 202 for r in requests)} x 202, {sum(r[2] == 503 for r in requests)} x 503), "
        f"{len(acknowledged)} events acknowledged, all in the topic; {duplicates} duplicate records "
        f"from retried 503 batches; first 202 {first_ok - healthy_at:.1f} s after Kafka was healthy"
    )
