"""The event collector: ``POST /v1/events`` validates a batch and writes it to Kafka.

Contract with clients (docs/ingestion.md): 202 only once Kafka acknowledged every record of the
batch (acks=all), with one outcome per event; 400 malformed body, 401/403 key, 413 too large,
415 not JSON, 503 Kafka (or the key store) unavailable - retry with the same event_ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from ingestion.collector.batch import BatchError, parse_batch, prepare_batch
from ingestion.collector.dedup import RecentIds
from ingestion.collector.logs import RequestContextMiddleware
from ingestion.collector.openapi import install_request_body
from ingestion.collector.producer import EventProducer, KafkaEventProducer, ProducerUnavailable
from ingestion.collector.settings import CollectorSettings, get_collector_settings
from lms.auth.dependencies import install_key_verifier, require_scopes
from lms.auth.scopes import EVENTS_WRITE, Principal
from lms.auth.store import PostgresKeyStore
from lms.auth.verify import KeyVerifier
from lms.errors import LmsError

if TYPE_CHECKING:
    from ingestion.collector.confluent import ConfluentEventProducer

log = logging.getLogger("lms.collector")

EVENTS_PATH = "/v1/events"
JSON_TYPES = ("application/json",)


# --- response models (documentation; responses are serialised with orjson directly) ----------


class EventOutcome(BaseModel):
    index: int = Field(description="Position of the event in the request's events array.")
    event_id: str | None = Field(description="The event's id; null if it had no usable one.")
    status: str = Field(description="accepted | duplicate | rejected")
    reason: str | None = Field(
        description="rejected: the contract's reason code (e.g. missing_field); duplicate: "
        "recently_accepted or repeated_in_batch; accepted: null."
    )
    message: str | None = Field(
        default=None, description="rejected only: what is wrong, naming the field."
    )


class BatchResult(BaseModel):
    accepted: int = Field(description="Events written to the raw topic by this request.")
    duplicate: int = Field(description="Events already accepted recently; not written again.")
    rejected: int = Field(description="Invalid events, written to the dead-letter topic.")
    results: list[EventOutcome]


class ErrorBody(BaseModel):
    detail: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": 'Malformed JSON or not {"events": [...]}'},
    401: {"model": ErrorBody, "description": "Missing, unknown or revoked API key"},
    403: {"model": ErrorBody, "description": "The key lacks the events:write scope"},
    413: {"model": ErrorBody, "description": "Too many events or too many bytes"},
    415: {"model": ErrorBody, "description": "Content-Type is not application/json"},
    503: {"model": ErrorBody, "description": "Kafka unavailable; retry with the same event_ids"},
}


# --- dependencies (overridden in unit tests) ---------------------------------------------------


def get_settings_dep(request: Request) -> CollectorSettings:
    settings: CollectorSettings = request.app.state.settings
    return settings


def get_producer(request: Request) -> EventProducer:
    producer: EventProducer | None = getattr(request.app.state, "producer", None)
    if producer is None:
        raise HTTPException(503, "the collector is starting; retry shortly")
    return producer


def get_recent_ids(request: Request) -> RecentIds:
    recent: RecentIds = request.app.state.recent_ids
    return recent


SettingsDep = Annotated[CollectorSettings, Depends(get_settings_dep)]
ProducerDep = Annotated[EventProducer, Depends(get_producer)]
RecentIdsDep = Annotated[RecentIds, Depends(get_recent_ids)]
EventsWriter = Annotated[Principal, Depends(require_scopes(EVENTS_WRITE))]


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing to buffer more than ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise HTTPException(400, "invalid Content-Length header") from None
        if size > limit:
            raise HTTPException(413, f"body of {size} bytes exceeds the limit of {limit} bytes")
        return await request.body()
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise HTTPException(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in JSON_TYPES and not media_type.endswith("+json"):
        shown = media_type[:60] or "none"
        raise HTTPException(
            415, f"Content-Type should be application/json (got {shown}); the body is JSON"
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise HTTPException(
            415, f"Content-Encoding {encoding[:30]} is not supported; send plain JSON"
        )


def create_app(settings: CollectorSettings | None = None) -> FastAPI:
    settings = settings or get_collector_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer: KafkaEventProducer | ConfluentEventProducer
        if settings.collector_kafka_client == "confluent-kafka":
            from ingestion.collector.confluent import ConfluentEventProducer

            producer = ConfluentEventProducer(settings)
        else:
            producer = KafkaEventProducer(settings)
        if settings.collector_create_topics:
            from ingestion.topics import ensure_topics

            try:
                for action in await asyncio.to_thread(ensure_topics, settings):
                    log.info("topics: %s", action)
            except LmsError as exc:
                # Keep serving: /ready reports the problem and writes answer 503 until Kafka is back.
                log.warning("could not ensure topics at startup: %s", exc)
        if not await asyncio.to_thread(producer.connect):
            log.warning("Kafka unreachable at startup; /ready answers 503 until it is reachable")
        app.state.producer = producer
        log.info(
            "collector started",
            extra={
                "raw_topic": settings.kafka_topic_raw,
                "dead_letter_topic": settings.kafka_topic_dead_letter,
            },
        )
        try:
            yield
        finally:
            app.state.producer = None
            await asyncio.to_thread(producer.close)

    app = FastAPI(
        title="LMS event collector",
        version="1.0",
        summary="Receives learning events (contract v1) and writes them to Kafka.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.producer = None
    app.state.recent_ids = RecentIds(
        settings.collector_dedup_cache_size, settings.collector_dedup_ttl_s
    )
    install_key_verifier(
        app,
        KeyVerifier(
            PostgresKeyStore(settings.platform_dsn), ttl_s=settings.collector_key_cache_ttl_s
        ),
    )
    app.add_middleware(RequestContextMiddleware)

    @app.get("/health", tags=["operations"], summary="Liveness (no dependencies checked)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["operations"],
        summary="Readiness: Kafka reachable and the raw topic's metadata available",
        responses={503: {"model": ErrorBody}},
    )
    async def ready(producer: ProducerDep, settings: SettingsDep) -> Response:
        problem = await producer.check_ready(settings.kafka_topic_raw)
        if problem is not None:
            return JSONResponse({"status": "not ready", "detail": problem}, status_code=503)
        return JSONResponse({"status": "ready", "topic": settings.kafka_topic_raw})

    @app.post(
        EVENTS_PATH,
        tags=["events"],
        status_code=202,
        summary="Send a batch of learning events",
        description=(
            f'Body: `{{"events": [...]}}` with at most {settings.collector_max_events} events '
            f"and {settings.collector_max_body_bytes} bytes. Each event is validated against "
            "contract v1; valid ones are written to Kafka (keyed by student_id), invalid ones "
            "to the dead-letter topic. The 202 is sent once Kafka acknowledged every record "
            "and lists one outcome per event. On 503, retry the same batch: event_ids make "
            "retries safe. Auth: `Authorization: Bearer <key>` or `X-API-Key`, scope "
            "events:write."
        ),
        response_model=BatchResult,
        responses=_ERRORS,
    )
    async def post_events(
        request: Request,
        principal: EventsWriter,
        producer: ProducerDep,
        recent: RecentIdsDep,
        settings: SettingsDep,
    ) -> Response:
        _check_content_type(request)
        body = await _read_body(request, settings.collector_max_body_bytes)
        log_fields: dict[str, Any] = getattr(request.state, "log_fields", {})
        log_fields["body_bytes"] = len(body)
        try:
            events = parse_batch(body, settings.collector_max_events)
        except BatchError as exc:
            raise HTTPException(exc.status, exc.message) from None
        prepared = prepare_batch(
            events,
            recent=recent,
            raw_topic=settings.kafka_topic_raw,
            dead_letter_topic=settings.kafka_topic_dead_letter,
            key_name=principal.name,
        )
        counts = prepared.counts()
        log_fields.update(events=len(events), **counts)
        if counts["rejected"]:
            reasons: dict[str, int] = {}
            for outcome in prepared.outcomes:
                if outcome.reason and outcome.status == "rejected":
                    reasons[outcome.reason] = reasons.get(outcome.reason, 0) + 1
            log_fields["reasons"] = reasons
        try:
            await producer.send_all(prepared.records)
        except ProducerUnavailable as exc:
            log_fields["kafka_error"] = str(exc)
            raise HTTPException(
                503,
                f"{exc}; nothing in this batch is confirmed, retry it with the same event_ids",
                headers={"Retry-After": "2"},
            ) from None
        recent.add_many(prepared.accepted_ids)
        return Response(prepared.response(), status_code=202, media_type="application/json")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            app.openapi_schema = install_request_body(
                document, EVENTS_PATH, settings.collector_max_events
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_factory() -> FastAPI:
    """Entry point for uvicorn (``--factory``), once per worker process: JSON logs, then the app."""
    from ingestion.collector.logs import configure_logging

    configure_logging()
    return create_app()
