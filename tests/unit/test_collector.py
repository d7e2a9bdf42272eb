"""The collector's HTTP behaviour with a fake producer and an in-memory key store (no services).

The fakes are injected with FastAPI dependency overrides; nothing here talks to Kafka or
PostgreSQL (the app is used without its lifespan, which is what would connect).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from ingestion.collector.app import create_app, get_producer
from ingestion.collector.producer import ProducerUnavailable, Record
from ingestion.collector.settings import CollectorSettings
from lms.auth import InMemoryKeyStore, KeyVerifier, create_key
from lms.auth.dependencies import get_key_verifier
from lms.contract import EVENT_TYPES, load_examples

RAW = "test.raw"
DLQ = "test.dead-letter"
EXAMPLES = load_examples()


class FakeProducer:
    """Collects records; can be told to fail, like Kafka refusing or timing out."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.fail: str | None = None
        self.ready_problem: str | None = None

    async def send_all(self, records: Sequence[Record]) -> None:
        if self.fail:
            raise ProducerUnavailable(self.fail)
        self.records.extend(records)

    async def check_ready(self, topic: str) -> str | None:
        return self.ready_problem

    def close(self) -> None:
        pass

    def on(self, topic: str) -> list[tuple[bytes | None, dict[str, Any]]]:
        return [(key, orjson.loads(value)) for t, key, value in self.records if t == topic]


class Collector:
    def __init__(self, **overrides: Any) -> None:
        settings = CollectorSettings(kafka_topic_raw=RAW, kafka_topic_dead_letter=DLQ, **overrides)
        self.app = create_app(settings)
        self.store = InMemoryKeyStore()
        self.key, _ = create_key(self.store, "test-writer", "events:write")
        self.reader_key, _ = create_key(self.store, "test-reader", "alerts:read")
        self.producer = FakeProducer()
        verifier = KeyVerifier(self.store)
        self.app.dependency_overrides[get_producer] = lambda: self.producer
        self.app.dependency_overrides[get_key_verifier] = lambda: verifier
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def post(
        self,
        body: Any = None,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        key: str | None = "writer",
    ) -> Any:
        sent_headers = {"Content-Type": "application/json"}
        if key == "writer":
            sent_headers["Authorization"] = f"Bearer {self.key}"
        elif key is not None:
            sent_headers["Authorization"] = f"Bearer {key}"
        sent_headers.update(headers or {})
        data = content if content is not None else orjson.dumps(body)
        return self.client.post("/v1/events", content=data, headers=sent_headers)


def event(event_type: str = "page_view", **changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(orjson.dumps(EXAMPLES[event_type]))
    out["event_id"] = str(uuid.uuid4())
    out.update(changes)
    return out


@pytest.fixture
def collector() -> Collector:
    return Collector()


# --- happy path ----------------------------------------------------------------------------


def test_valid_batch_is_written_keyed_by_student_and_stamped(collector: Collector) -> None:
    events = [event(t) for t in EVENT_TYPES]
    events[0]["occurred_at"] = "2031-01-01T00:00:00Z"  # a skewed client clock is kept as is
    events[1]["received_at"] = "1999-01-01T00:00:00Z"  # never trusted from clients
    response = collector.post({"events": events})
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (len(events), 0, 0)
    assert [r["index"] for r in body["results"]] == list(range(len(events)))
    assert all(r["status"] == "accepted" and r["reason"] is None for r in body["results"])
    assert [r["event_id"] for r in body["results"]] == [e["event_id"] for e in events]

    written = collector.producer.on(RAW)
    assert len(written) == len(events) and not collector.producer.on(DLQ)
    stamps = {value["received_at"] for _, value in written}
    assert len(stamps) == 1
    stamp = stamps.pop()
    assert stamp.endswith("Z") and stamp != "1999-01-01T00:00:00Z"
    for (key, value), sent in zip(written, events, strict=True):
        assert key == sent["student_id"].encode()
        assert value["event_id"] == sent["event_id"]
        assert value["occurred_at"] == sent["occurred_at"]
        expected = {**sent, "received_at": stamp}
        if sent["event_type"] != "feedback":
            assert value == expected


def test_empty_batch_is_fine(collector: Collector) -> None:
    response = collector.post({"events": []})
    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "duplicate": 0, "rejected": 0, "results": []}


def test_x_api_key_header_and_request_id(collector: Collector) -> None:
    response = collector.post(
        {"events": [event()]},
        key=None,
        headers={"X-API-Key": collector.key, "X-Request-ID": "client-req-42"},
    )
    assert response.status_code == 202
    assert response.headers["x-request-id"] == "client-req-42"
    # An unsafe client request id is replaced, not echoed.
    unsafe = "a b<script>" * 10
    response = collector.post({"events": [event()]}, headers={"X-Request-ID": unsafe})
    assert response.headers["x-request-id"] != unsafe


# --- invalid events and the dead-letter topic -------------------------------------------------


def test_invalid_events_go_to_the_dead_letter_topic_with_reason(collector: Collector) -> None:
    bad_score = event("quiz_submit")
    bad_score["payload"]["score"] = -1
    no_id = event("login")
    del no_id["event_id"]
    events = [event("login"), bad_score, no_id, "not an event", event("video_play")]
    response = collector.post({"events": events})
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert results[1]["reason"] == "out_of_range" and "payload.score" in results[1]["message"]
    assert results[1]["event_id"] == bad_score["event_id"]
    assert results[2]["reason"] == "missing_field" and results[2]["event_id"] is None
    assert results[3]["reason"] == "not_an_object"

    raw = collector.producer.on(RAW)
    assert [v["event_id"] for _, v in raw] == [events[0]["event_id"], events[4]["event_id"]]
    dead = collector.producer.on(DLQ)
    assert [v["index"] for _, v in dead] == [1, 2, 3]
    key, first = dead[0]
    assert key == b"test-writer"
    assert first["reason"] == "out_of_range"
    assert first["message"].startswith("payload.score")
    assert first["field"] == "payload.score"
    assert first["api_key"] == "test-writer"
    assert first["event"] == bad_score  # the original payload as received
    assert first["received_at"] == raw[0][1]["received_at"]
    assert dead[2][1]["event"] == "not an event"


def test_rejected_event_text_is_redacted_in_the_dead_letter(collector: Collector) -> None:
    bad = event("feedback")
    bad["payload"]["text"] = "mail me at jane.doe@example.org"
    bad["payload"]["rating"] = 9
    bad["payload"]["comment"] = "or call +44 20 7946 0958"
    collector.post({"events": [bad]})
    [(_, dead)] = collector.producer.on(DLQ)
    assert dead["event"]["payload"]["text"] == "mail me at [email]"
    assert dead["event"]["payload"]["comment"] == "or call [phone]"


def test_huge_rejected_event_is_excerpted_in_the_dead_letter(collector: Collector) -> None:
    bad = event("page_view")
    bad["payload"]["path"] = "p" * 600_000
    response = collector.post({"events": [bad]})
    assert response.status_code == 202
    assert response.json()["results"][0]["reason"] == "bad_length"
    [(_, dead)] = collector.producer.on(DLQ)
    assert dead["event"] is None and dead["event_bytes"] > 600_000
    assert len(dead["event_excerpt"]) <= 4096


# --- duplicates ----------------------------------------------------------------------------


def test_retried_batch_is_answered_duplicate_without_a_resend(collector: Collector) -> None:
    events = [event("login"), event("page_view")]
    first = collector.post({"events": events})
    assert first.json()["accepted"] == 2
    again = collector.post({"events": [*events, event("logout")]})
    body = again.json()
    assert [r["status"] for r in body["results"]] == ["duplicate", "duplicate", "accepted"]
    assert body["results"][0]["reason"] == "recently_accepted"
    assert len(collector.producer.on(RAW)) == 3


def test_repeat_within_a_batch_and_uuid_case(collector: Collector) -> None:
    one = event()
    upper = {**one, "event_id": one["event_id"].upper()}
    body = collector.post({"events": [one, one, upper]}).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "duplicate", "duplicate"]
    assert body["results"][1]["reason"] == "repeated_in_batch"
    assert len(collector.producer.on(RAW)) == 1


def test_kafka_failure_is_503_and_nothing_is_remembered(collector: Collector) -> None:
    events = [event(), event()]
    collector.producer.fail = "Kafka did not acknowledge within 15 s"
    response = collector.post({"events": events})
    assert response.status_code == 503
    assert "retry" in response.json()["detail"]
    assert response.headers["retry-after"]
    # Nothing was acknowledged, so the retry is accepted, not answered "duplicate".
    collector.producer.fail = None
    retry = collector.post({"events": events})
    assert retry.json()["accepted"] == 2


# --- privacy -------------------------------------------------------------------------------


def test_feedback_text_is_redacted_before_kafka(collector: Collector) -> None:
    feedback = event("feedback")
    feedback["payload"]["text"] = (
        "Great course! Contact me at john.smith+lms@mail.example.com or +33 6 12 34 56 78."
    )
    response = collector.post({"events": [feedback]})
    assert response.status_code == 202
    [(_, value)] = collector.producer.on(RAW)
    assert value["payload"]["text"] == "Great course! Contact me at [email] or [phone]."


def test_logs_carry_request_fields_but_no_personal_data(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    feedback = event("feedback")
    feedback["payload"]["text"] = "secret-text reach me at jane@example.org"
    bad = event("feedback", student_id="not valid!")
    bad["payload"]["text"] = "other-secret 0612345678"
    with caplog.at_level(logging.INFO):
        collector.post({"events": [feedback, bad]}, headers={"X-Request-ID": "req-1"})
    records = [r for r in caplog.records if r.name == "lms.collector.access"]
    assert records, "one access log line per request"
    entry = records[-1].__dict__
    assert entry["request_id"] == "req-1" and entry["status"] == 202
    assert entry["accepted"] == 1 and entry["rejected"] == 1 and entry["api_key"] == "test-writer"
    assert entry["duration_ms"] >= 0
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    for secret in ("secret-text", "jane@example.org", "other-secret", "0612345678", collector.key):
        assert secret not in text


# --- request-level errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty body"),
        (b"   ", "empty body"),
        (b"{", "malformed JSON"),
        (b'{"events": [}', "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        (b"[1, 2]", "got an array"),
        (b'"events"', "got a string"),
        (b"null", "got null"),
        (b"{}", 'no "events"'),
        (b'{"event": []}', 'no "events"'),
        (b'{"events": [], "extra": 1}', "unknown field"),
        (b'{"events": {"a": 1}}', "got an object"),
        (b'{"events": "x"}', "got a string"),
        (b'{"events": null}', "got null"),
        (b'{"events": [NaN]}', "malformed JSON"),
        (b'{"events": [1e999]}', "malformed JSON"),
    ],
)
def test_malformed_or_wrong_shape_is_400(
    collector: Collector, content: bytes, fragment: str
) -> None:
    response = collector.post(content=content)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["detail"]


def test_too_many_events_is_413() -> None:
    collector = Collector(collector_max_events=3)
    response = collector.post({"events": [event() for _ in range(4)]})
    assert response.status_code == 413
    assert "limit is 3" in response.json()["detail"]
    assert collector.post({"events": [event() for _ in range(3)]}).status_code == 202


def test_too_many_bytes_is_413_declared_or_streamed() -> None:
    collector = Collector(collector_max_body_bytes=4096)
    big = orjson.dumps({"events": [event() for _ in range(20)]})
    assert len(big) > 4096
    assert collector.post(content=big).status_code == 413

    def chunks() -> Any:  # no Content-Length: the limit applies while reading
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    response = collector.client.post(
        "/v1/events",
        content=chunks(),
        headers={"Authorization": f"Bearer {collector.key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert not collector.producer.records


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
)
def test_wrong_content_type_is_415(collector: Collector, content_type: str) -> None:
    response = collector.post({"events": [event()]}, headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


def test_json_content_type_variants_are_accepted(collector: Collector) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.lms+json"):
        response = collector.post({"events": [event()]}, headers={"Content-Type": content_type})
        assert response.status_code == 202


def test_compressed_body_is_415(collector: Collector) -> None:
    response = collector.post({"events": []}, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 415


def test_auth_is_checked_before_the_body(collector: Collector) -> None:
    assert collector.post(content=b"{", key=None).status_code == 401
    response = collector.post({"events": [event()]}, key=collector.reader_key)
    assert response.status_code == 403
    assert not collector.producer.records


# --- no 500 on weird input ---------------------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": [value]}
    return value


BIG_INTEGER_EVENT = {
    **event("quiz_submit"),
    "payload": {**EXAMPLES["quiz_submit"]["payload"], "n_questions": 2**70},
}
WEIRD_EVENTS: list[Any] = [
    None,
    True,
    1.5,
    [],
    [event()],
    {},
    {"event_type": None},
    {"event_type": "x" * 100_000},
    {"event_type": ["login"]},
    {"event_type": "login", "payload": None},
    {**event("login"), "event_id": "e" * 200_000},
    {**event("login"), "event_id": 12345},
    {**event("login"), "student_id": "\u0000\ud7ff\ue000"},
    {**event("login"), "occurred_at": "2026-02-30T10:00:00Z"},
    {**event("login"), "occurred_at": "2026-03-01T10:00:00+02:00"},
    {**event("login"), "occurred_at": 1_700_000_000},
    {**event("login"), "schema_version": "2.0"},
    {**event("login"), "client": {"device": "toaster", "app_version": "1"}},
    {**event("login"), "unknown": _nested(100)},
    {
        **event("feedback"),
        "payload": {**EXAMPLES["feedback"]["payload"], "text": "\U0001f600" * 3000},
    },
    BIG_INTEGER_EVENT,
    {"payload": _nested(200)},
    {
        **event("page_view"),
        "payload": {"page_type": "chapter", "chapter_id": None, "path": "x" * 513},
    },
]


@pytest.mark.parametrize("weird", WEIRD_EVENTS, ids=range(len(WEIRD_EVENTS)))
def test_weird_events_are_rejected_one_by_one_never_500(collector: Collector, weird: Any) -> None:
    # The stdlib encoder: orjson refuses some of these (deep nesting, integers beyond 64 bits).
    response = collector.post(content=json.dumps({"events": [event(), weird]}).encode())
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert results[0]["status"] == "accepted"
    if weird is BIG_INTEGER_EVENT:
        # JSON numbers beyond 64 bits decode as floats; 2**70 is then a valid count.
        assert results[1]["status"] in ("accepted", "rejected")
    else:
        assert results[1]["status"] == "rejected"
        assert results[1]["reason"]
    assert len(response.content) < 10_000  # nothing huge is echoed back


def test_deeply_nested_body_is_400(collector: Collector) -> None:
    content = b'{"events": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    assert collector.post(content=content).status_code == 400


def test_unexpected_bug_becomes_503_not_500(collector: Collector) -> None:
    class Broken(FakeProducer):
        async def send_all(self, records: Sequence[Record]) -> None:
            raise ZeroDivisionError

    collector.app.dependency_overrides[get_producer] = Broken
    response = collector.post({"events": [event()]})
    assert response.status_code == 503
    assert response.headers["x-request-id"] in response.json()["detail"]


# --- operations and docs -----------------------------------------------------------------------


def test_health_and_ready(collector: Collector) -> None:
    assert collector.client.get("/health").json() == {"status": "ok"}
    ready = collector.client.get("/ready")
    assert ready.status_code == 200 and ready.json()["topic"] == RAW
    collector.producer.ready_problem = "Kafka is unreachable"
    ready = collector.client.get("/ready")
    assert ready.status_code == 503 and ready.json()["detail"] == "Kafka is unreachable"


def test_ready_without_a_producer_is_503() -> None:
    app = create_app(CollectorSettings())
    response = TestClient(app).get("/ready")  # no lifespan: the producer was never created
    assert response.status_code == 503


def test_openapi_describes_every_event_type_with_examples(collector: Collector) -> None:
    document = collector.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    post = document["paths"]["/v1/events"]["post"]
    media = post["requestBody"]["content"]["application/json"]
    assert media["schema"] == {"$ref": "#/components/schemas/EventBatch"}
    union = schemas["LmsEvent"]
    assert set(union["discriminator"]["mapping"]) == set(EVENT_TYPES)
    for ref in union["discriminator"]["mapping"].values():
        assert ref.removeprefix("#/components/schemas/") in schemas
    assert set(EVENT_TYPES) <= set(media["examples"])
    assert media["examples"]["feedback"]["value"] == {"events": [EXAMPLES["feedback"]]}
    assert {"202", "400", "401", "403", "413", "415", "503"} <= set(post["responses"])
    security = document["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(security)
    # Every $ref resolves (the contract's field markers were turned into components).
    text = orjson.dumps(document).decode()
    assert "x-lms-ref" not in text
    for name in ("Id", "Uuid", "UtcTimestamp"):
        assert name in schemas
