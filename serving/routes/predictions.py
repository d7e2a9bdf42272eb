"""``/v1/students/{student_id}/courses/{course_id}/...`` predictions, the course at-risk list and
their batch variants, plus the prediction service's readiness and ``/metrics``.

Access: predictions need ``predictions:read``, the at-risk list ``alerts:read`` (``admin`` implies
both). A key restricted to a teacher (``teacher_id``) sees only the courses that teacher teaches;
any other course answers 403. Each response names the model versions it came from in
``X-Model-Version`` (``name=version``, comma-separated).

:func:`install` wires everything into the app built by ``serving.app.create_app``;
:func:`start`/:func:`stop` run in its lifespan (load the promoted models, poll for new ones).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from lms.auth.dependencies import KEY_SCHEMES, KEY_SECURITY, scope_checker
from lms.auth.scopes import ALERTS_READ, PREDICTIONS_READ, Principal
from lms.settings import Settings
from ml.registry import Registry
from serving import predict
from serving.features import FeaturesUnavailable, NeedsDatabase, OnlineStore, RealtimeSignals
from serving.hot import Bounds, HotRoute, HotRoutes
from serving.metrics import Metrics, ObservabilityMiddleware, configure_logging
from serving.models import NOT_PROMOTED, Loaded, ModelStore, Snapshot
from serving.routes.schemas import (
    ID_PATTERN,
    AtRisk,
    Band,
    BatchKind,
    BatchRequest,
    BatchResponse,
    DropoutRisk,
    ExamScore,
    NextChapters,
    QuizDifficulty,
    WeakTopics,
)
from serving.settings import ServeSettings

log = logging.getLogger("serving.predictions")

router = APIRouter(prefix="/v1", tags=["predictions"])
ops = APIRouter(tags=["operations"])

StudentId = Annotated[
    str, Path(pattern=ID_PATTERN, description="The LMS's student id", examples=["stu_0000042"])
]
CourseId = Annotated[
    str, Path(pattern=ID_PATTERN, description="The LMS's course id", examples=["crs_001"])
]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key"},
    403: {"description": "The key lacks the scope, or its teacher does not teach the course"},
    404: {"description": "Unknown student or course, or the student is not enrolled"},
    422: {"description": "Invalid parameter (id format, k out of range)"},
    503: {"description": "A model is not loaded or the database is unreachable; retry later"},
}
FACTORS = Bounds(0, 20, 5)  # dropout-risk ?factors=
CHAPTERS = Bounds(1, 20, 3)  # next-chapters ?k=
# Every /v1 route takes a key by either scheme (see ``_call``).
SECURED: dict[str, Any] = {"security": KEY_SECURITY}


class PredictionService:
    """What the routes share: models, online features, real-time signals, metrics."""

    def __init__(self, settings: Settings, serve: ServeSettings, es: Any | None) -> None:
        self.settings = settings
        self.serve = serve
        self.metrics = Metrics()
        self.store = OnlineStore(settings, serve)
        self.realtime = RealtimeSignals(es, settings, serve)
        self.models = ModelStore(
            Registry(settings),
            on_swap=lambda loaded, previous: self.metrics.swapped(
                loaded.name, loaded.version, previous
            ),
        )


async def service(request: Request) -> PredictionService:
    # async: a plain ``def`` dependency would cost a thread-pool round trip per request.
    return request.app.state.predictions


Service = Annotated[PredictionService, Depends(service)]


class Fast(Response):
    """JSON by orjson, returned as a Response so FastAPI skips re-validating the body against
    the route's ``response_model`` (which still documents it; the answers are built to it and
    the integration tests check them). On the hottest routes that validation and the standard
    JSON encoder cost about as much as the prediction itself, answered from the cache. Fields
    the answer leaves out get the model's defaults, as the validation would have given them."""

    media_type = "application/json"

    def __init__(self, content: dict[str, Any], model: type[BaseModel]) -> None:
        super().__init__(_defaults(model) | content)

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@functools.cache
def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    return {n: f.default for n, f in model.model_fields.items() if not f.is_required()}


def _guard(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Domain errors to HTTP: unknown ids 404, a missing model or database 503."""
    try:
        return fn(*args, **kwargs)
    except predict.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except predict.ModelUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "30"}) from None
    except FeaturesUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None


@dataclass
class Call:
    """One request's caller, service and model snapshot. The snapshot is taken once, so a swap
    mid-request changes nothing in its answer."""

    request: Request
    svc: PredictionService
    snapshot: Snapshot
    principal: Principal

    def prepare(self, course_id: str, models: tuple[str, ...]) -> None:
        """Name the model versions (``X-Model-Version``), then check the course and the key's
        teacher: unknown course 404, another teacher's course 403."""
        snap = self.snapshot
        self.request.state.model_versions = {
            n: m.version for n in models if (m := snap.get(n)) is not None
        }
        teachers = _guard(self.svc.store.course_teachers, course_id)
        if teachers is None:
            raise HTTPException(404, f"unknown course {course_id!r}")
        teacher = self.principal.teacher_id
        if teacher is not None and teacher not in teachers:
            raise HTTPException(
                403, f"API key {self.principal.name!r} is restricted to another teacher's courses"
            )

    def count(self, models: tuple[str, ...], n: int = 1) -> None:
        for name in models:
            if (m := self.snapshot.get(name)) is not None:
                self.svc.metrics.predicted(name, m.version, n)

    def answer(
        self,
        course_id: str,
        models: tuple[str, ...],
        fn: Callable[..., dict[str, Any]],
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, Any]:
        self.prepare(course_id, models)
        out: dict[str, Any] = _guard(fn, self.snapshot, self.svc.store, *args, **kwargs)
        self.count(models)
        if out.get("cold_start"):
            self.svc.metrics.cold_starts.labels(fn.__name__).inc()
        return out

    async def answer_hot(
        self,
        course_id: str,
        models: tuple[str, ...],
        fn: Callable[..., dict[str, Any]],
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """:meth:`answer` for the cheap one-student predictions, on the event loop while every
        fact it needs is cached (microseconds, no thread hop); a cache miss redoes the call in
        a worker thread, where the database query may block."""
        try:
            with self.svc.store.cached_only():
                return self.answer(course_id, models, fn, *args, **kwargs)
        except NeedsDatabase:
            return await run_in_threadpool(self.answer, course_id, models, fn, *args, **kwargs)


def _call(scope: str) -> Callable[[Request], Awaitable[Call]]:
    """The routes' one dependency: key, scope, service and model snapshot. One, because FastAPI
    resolves every sub-dependency of a route on every request, which cost more than a cached
    answer; the key schemes are documented by ``openapi_extra`` (``KEY_SECURITY``) instead."""
    check = scope_checker(scope)

    async def dependency(request: Request) -> Call:
        principal = await check(request)
        svc: PredictionService = request.app.state.predictions
        return Call(request, svc, svc.models.current(), principal)

    return dependency


_predictions = _call(PREDICTIONS_READ)
Predictions = Annotated[Call, Depends(_predictions)]
Alerts = Annotated[Call, Depends(_call(ALERTS_READ))]


@router.get(
    "/students/{student_id}/courses/{course_id}/dropout-risk",
    response_model=DropoutRisk,
    responses=ERRORS,
    openapi_extra=SECURED,
    summary="Probability that the student drops out of the course, with its top factors",
)
async def get_dropout_risk(
    student_id: StudentId,
    course_id: CourseId,
    call: Predictions,
    factors: Annotated[
        int, Query(ge=FACTORS.low, le=FACTORS.high, description="How many top factors")
    ] = FACTORS.default,
    realtime: Annotated[
        bool, Query(description="Also ask the live jobs when the student was last seen")
    ] = False,
) -> Response:
    return Fast(await _dropout(call, student_id, course_id, factors, realtime), DropoutRisk)


async def _dropout(
    call: Call, student_id: str, course_id: str, factors: int, realtime: bool = False
) -> dict[str, Any]:
    out = await call.answer_hot(
        course_id,
        ("dropout",),
        predict.dropout_risk,
        student_id,
        course_id,
        top=factors,
    )
    if realtime:  # an Elasticsearch round trip: only when asked
        seen = await run_in_threadpool(call.svc.realtime.last_seen, student_id, course_id)
        out["realtime"] = {
            "last_seen_at": seen.isoformat() if seen else None,
            "active_now": RealtimeSignals.active_now(seen),
        }
    return out


@router.get(
    "/students/{student_id}/courses/{course_id}/exam-score",
    response_model=ExamScore,
    responses=ERRORS,
    openapi_extra=SECURED,
    summary="Predicted final score (0-100) with a prediction interval",
)
def get_exam_score(
    student_id: StudentId,
    course_id: CourseId,
    call: Predictions,
) -> dict[str, Any]:
    return call.answer(
        course_id,
        ("final_score",),
        predict.exam_score,
        student_id,
        course_id,
    )


@router.get(
    "/students/{student_id}/courses/{course_id}/weak-topics",
    response_model=WeakTopics,
    responses=ERRORS,
    openapi_extra=SECURED,
    summary="The student's weakest topics in the course, with mastery estimates",
)
def get_weak_topics(
    student_id: StudentId,
    course_id: CourseId,
    call: Predictions,
    k: Annotated[int, Query(ge=1, le=50, description="How many topics")] = 5,
) -> dict[str, Any]:
    return call.answer(
        course_id,
        ("topic_mastery",),
        predict.weak_topics,
        student_id,
        course_id,
        k=k,
    )


@router.get(
    "/students/{student_id}/courses/{course_id}/quiz-difficulty",
    response_model=QuizDifficulty,
    responses=ERRORS,
    openapi_extra=SECURED,
    summary="Target question-difficulty band per topic, with suggested questions",
)
def get_quiz_difficulty(
    student_id: StudentId,
    course_id: CourseId,
    call: Predictions,
    topic_id: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="Only this topic")
    ] = None,
    questions: Annotated[int, Query(ge=0, le=20, description="Suggested questions per topic")] = 3,
) -> dict[str, Any]:
    return call.answer(
        course_id,
        ("quiz_difficulty", "topic_mastery"),
        predict.quiz_difficulty_answer,
        student_id,
        course_id,
        topic_id=topic_id,
        questions=questions,
    )


@router.get(
    "/students/{student_id}/courses/{course_id}/next-chapters",
    response_model=NextChapters,
    responses=ERRORS,
    openapi_extra=SECURED,
    summary="Chapters to study next, ranked, with reasons",
)
async def get_next_chapters(
    student_id: StudentId,
    course_id: CourseId,
    call: Predictions,
    k: Annotated[
        int, Query(ge=CHAPTERS.low, le=CHAPTERS.high, description="How many chapters")
    ] = CHAPTERS.default,
) -> Response:
    return Fast(await _next_chapters(call, student_id, course_id, k), NextChapters)


async def _next_chapters(call: Call, student_id: str, course_id: str, k: int) -> dict[str, Any]:
    return await call.answer_hot(
        course_id,
        ("next_chapter",),
        predict.next_chapters,
        student_id,
        course_id,
        k=k,
    )


@router.get(
    "/courses/{course_id}/at-risk",
    response_model=AtRisk,
    responses=ERRORS,
    openapi_extra=SECURED,
    tags=["alerts"],
    summary="The course's students at risk of dropping out, riskiest first",
)
def get_at_risk(
    course_id: CourseId,
    call: Alerts,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many students")] = 50,
    min_band: Annotated[Band, Query(description="Only students at this band or above")] = Band.low,
) -> dict[str, Any]:
    return call.answer(
        course_id,
        ("dropout",),
        predict.at_risk,
        course_id,
        limit=limit,
        min_band=min_band.value,
    )


BATCH: dict[BatchKind, tuple[tuple[str, ...], Callable[..., dict[str, Any]], bool]] = {
    BatchKind.dropout_risk: (("dropout",), predict.dropout_risk, False),
    BatchKind.exam_score: (("final_score",), predict.exam_score, False),
    BatchKind.weak_topics: (("topic_mastery",), predict.weak_topics, True),
    BatchKind.next_chapters: (("next_chapter",), predict.next_chapters, True),
    BatchKind.quiz_difficulty: (
        ("quiz_difficulty", "topic_mastery"),
        predict.quiz_difficulty_answer,
        False,
    ),
}


@router.post(
    "/courses/{course_id}/batch/{prediction}",
    response_model=BatchResponse,
    responses=ERRORS,
    openapi_extra=SECURED,
    tags=["batch"],
    summary="One prediction for many students of a course (nightly jobs)",
    description="Up to 1,000 student ids. Each item carries its own status: an unknown student "
    "is a 404 item, not a failed batch. Every item uses the same model versions.",
)
def post_batch(
    course_id: CourseId,
    prediction: BatchKind,
    call: Predictions,
    body: Annotated[BatchRequest, Body()],
) -> dict[str, Any]:
    models, fn, takes_k = BATCH[prediction]
    call.prepare(course_id, models)
    for name in models:
        _guard(predict.need, call.snapshot, name)
    kwargs = {"k": body.k} if takes_k else {}
    results = []
    for student_id in dict.fromkeys(body.student_ids):
        try:
            item = _guard(fn, call.snapshot, call.svc.store, student_id, course_id, **kwargs)
            results.append({"student_id": student_id, "status": 200, "result": item})
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            results.append({"student_id": student_id, "status": 404, "error": exc.detail})
    call.count(models, len(results))
    versions = call.snapshot.versions()
    return {
        "course_id": course_id,
        "prediction": prediction,
        "model_versions": {n: versions[n] for n in models},
        "results": results,
    }


@ops.get(
    "/ready/predictions",
    summary="Readiness: every promoted model loaded (at least one), database up",
)
def ready_predictions(svc: Service) -> JSONResponse:
    models = svc.models.status()
    try:
        svc.store.ping()
        database: str = "ok"
    except FeaturesUnavailable as exc:
        database = str(exc)
    failed = [
        name for name, m in models.items() if not m["loaded"] and m.get("error") != NOT_PROMOTED
    ]
    loaded = any(m["loaded"] for m in models.values())
    ok = database == "ok" and loaded and not failed
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "database": database, "models": models},
        status_code=200 if ok else 503,
    )


@ops.get("/metrics", summary="Prometheus metrics (text exposition format)")
def metrics(svc: Service) -> Response:
    svc.metrics.cache_hits.set(svc.store.cache.hits)
    svc.metrics.cache_misses.set(svc.store.cache.misses)
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def install(
    app: FastAPI, settings: Settings, *, es: Any | None = None, serve: ServeSettings | None = None
) -> PredictionService:
    """Add the prediction routes, the observability middleware and the shared service."""
    svc = PredictionService(settings, serve or ServeSettings(), es)
    app.state.predictions = svc
    app.include_router(router)
    app.include_router(ops)
    # Added first, so it runs inside the observability middleware (ids, logs, metrics).
    app.add_middleware(HotRoutes, prefix=router.prefix, routes=_hot_routes())
    app.add_middleware(ObservabilityMiddleware, metrics=svc.metrics)
    _document_key_schemes(app)
    return svc


async def _hot_dropout(
    request: Request, student_id: str, course_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    return await _dropout(await _predictions(request), student_id, course_id, params["factors"])


async def _hot_next_chapters(
    request: Request, student_id: str, course_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    return await _next_chapters(await _predictions(request), student_id, course_id, params["k"])


def _hot_routes() -> dict[str, HotRoute]:
    """The FastAPI routes :class:`serving.hot.HotRoutes` answers first, by path suffix."""
    routes = {r.name: r for r in router.routes if isinstance(r, APIRoute)}
    return {
        "dropout-risk": HotRoute(
            routes[get_dropout_risk.__name__],
            {"factors": FACTORS},
            frozenset({"realtime"}),
            _hot_dropout,
            _defaults(DropoutRisk),
        ),
        "next-chapters": HotRoute(
            routes[get_next_chapters.__name__],
            {"k": CHAPTERS},
            frozenset(),
            _hot_next_chapters,
            _defaults(NextChapters),
        ),
    }


def _document_key_schemes(app: FastAPI) -> None:
    """Name the key schemes the routes' ``security`` refers to in ``components``, which FastAPI
    fills only from security dependencies (the routes here have none, see ``_call``)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        first = app.openapi_schema is None
        schema = generate()  # FastAPI caches it in app.openapi_schema
        if first:
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            for name, scheme in KEY_SCHEMES.items():
                schemes.setdefault(name, scheme)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def start(app: FastAPI) -> None:
    """Load the promoted models (a missing one leaves the service up but not ready) and poll."""
    configure_logging()
    svc: PredictionService = app.state.predictions
    svc.models.refresh()
    svc.models.start(svc.serve.model_poll_s)


def stop(app: FastAPI) -> None:
    svc: PredictionService = app.state.predictions
    svc.models.stop()
    svc.store.close()


__all__ = ["Loaded", "PredictionService", "install", "start", "stop"]
