"""``GET /v1/live/...``: dashboards over the streaming jobs' Elasticsearch indices.

- active students per course (the latest sliding window, and who was seen in the last window);
- attendance of a live class (per student, and a summary);
- open alerts (cheating signals) and teacher-facing triggers for the caller's courses.

Scoping: a key restricted to a teacher (``lms keys create --teacher-id``) sees only the courses
that teacher teaches (from the courses index the streaming launcher keeps); asking for another
course answers 403. Keys without a teacher restriction see every course.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from lms.auth.dependencies import require_scopes
from lms.auth.scopes import ALERTS_READ, LIVE_READ, Principal

router = APIRouter(prefix="/v1/live", tags=["live"])

LiveReader = Annotated[Principal, Depends(require_scopes(LIVE_READ))]
AlertsReader = Annotated[Principal, Depends(require_scopes(ALERTS_READ))]
Id = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="An id like crs_001")]

ALERT_TYPES = ("fast_answers", "tab_switching", "concurrent_sessions")


class Live:
    """Per-request access to the live indices."""

    def __init__(self, request: Request) -> None:
        self.es: Elasticsearch = request.app.state.es
        self.prefix: str = request.app.state.settings.stream_index_prefix

    def index(self, name: str) -> str:
        return f"{self.prefix}{name}"


LiveIndices = Annotated[Live, Depends(Live)]


@contextmanager
def _es_errors() -> Iterator[None]:
    try:
        yield
    except NotFoundError:
        raise HTTPException(
            503, "the live indices do not exist yet: start the jobs with `lms stream run all`"
        ) from None
    except (ApiError, TransportError) as exc:
        raise HTTPException(
            503, f"Elasticsearch unavailable ({type(exc).__name__}); retry shortly"
        ) from None


def _reference(live: Live, index: str, doc_id: str, what: str) -> dict[str, Any]:
    with _es_errors():
        found = live.es.options(ignore_status=404).get(index=live.index(index), id=doc_id)
    if not found.get("found"):
        raise HTTPException(404, f"unknown {what} {doc_id!r}")
    source: dict[str, Any] = found["_source"]
    return source


def _check_teacher(principal: Principal, teacher_ids: list[str], what: str) -> None:
    if principal.teacher_id is not None and principal.teacher_id not in teacher_ids:
        raise HTTPException(403, f"API key {principal.name!r} is not scoped to {what}")


def _visible(principal: Principal) -> list[dict[str, Any]]:
    """Filter clauses that restrict documents to the caller's courses."""
    if principal.teacher_id is None:
        return []
    return [{"term": {"teacher_ids": principal.teacher_id}}]


def _active(live: Live, course_id: str) -> dict[str, Any]:
    with _es_errors():
        latest = live.es.search(
            index=live.index("active-students"),
            size=1,
            query={"term": {"course_id": course_id}},
            sort=[{"window_end": "desc"}],
        )["hits"]["hits"]
    window = latest[0]["_source"] if latest else None
    window_s = int(window["window_s"]) if window else 300
    since = datetime.now(UTC) - timedelta(seconds=window_s)
    with _es_errors():
        seen = live.es.count(
            index=live.index("presence"),
            query={
                "bool": {
                    "filter": [
                        {"term": {"course_id": course_id}},
                        {"range": {"last_seen_at": {"gte": since.isoformat()}}},
                    ]
                }
            },
        )["count"]
    return {
        "course_id": course_id,
        "latest_window": None
        if window is None
        else {k: window[k] for k in ("window_start", "window_end", "active_students")},
        "seen_last_window_s": window_s,
        "active_now": seen,
    }


@router.get("/courses/{course_id}/active-students", summary="Active students in one course")
def course_active_students(course_id: Id, principal: LiveReader, live: LiveIndices) -> Any:
    course = _reference(live, "courses", course_id, "course")
    _check_teacher(principal, course.get("teacher_ids", []), f"course {course_id}")
    return _active(live, course_id)


@router.get("/active-students", summary="Active students per course (the caller's courses)")
def active_students(principal: LiveReader, live: LiveIndices) -> Any:
    with _es_errors():
        courses = live.es.search(
            index=live.index("courses"),
            size=1000,
            query={"bool": {"filter": _visible(principal)}},
            sort=[{"course_id": "asc"}],
        )["hits"]["hits"]
    return {"courses": [_active(live, hit["_source"]["course_id"]) for hit in courses]}


@router.get(
    "/live-classes/{live_class_id}/attendance", summary="Who attends a live class, and how long"
)
def attendance(
    live_class_id: Id,
    principal: LiveReader,
    live: LiveIndices,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Any:
    cls = _reference(live, "live-classes", live_class_id, "live class")
    _check_teacher(principal, cls.get("teacher_ids", []), f"live class {live_class_id}")
    with _es_errors():
        hits = live.es.search(
            index=live.index("attendance"),
            size=limit,
            query={"term": {"live_class_id": live_class_id}},
            sort=[{"student_id": "asc"}],
        )["hits"]
    students = [
        {
            k: h["_source"].get(k)
            for k in (
                "student_id",
                "first_join_at",
                "last_leave_at",
                "in_class",
                "minutes",
                "attendance_share",
                "joins",
                "missing_leave",
                "inferred_join",
            )
        }
        for h in hits["hits"]
    ]
    now = datetime.now(UTC)
    ends = datetime.fromisoformat(cls["ends_at"].replace("Z", "+00:00"))
    running = now <= ends + timedelta(minutes=15)
    shares = [s["attendance_share"] for s in students if s["attendance_share"] is not None]
    return {
        "live_class_id": live_class_id,
        "course_id": cls.get("course_id"),
        "starts_at": cls.get("starts_at"),
        "ends_at": cls.get("ends_at"),
        "attendees": hits["total"]["value"],
        # A missing leave keeps a student "in class" only while the class can still be running.
        "in_class_now": sum(1 for s in students if s["in_class"]) if running else 0,
        "mean_attendance_share": round(sum(shares) / len(shares), 4) if shares else None,
        "students": students,
    }


@router.get("/alerts", summary="Open alerts and teacher triggers for the caller's courses")
def alerts(
    principal: AlertsReader,
    live: LiveIndices,
    course_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
    alert_type: Annotated[
        str | None,
        Query(description=f"One of {', '.join(ALERT_TYPES)}, or re_engage"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    if alert_type is not None and alert_type not in (*ALERT_TYPES, "re_engage"):
        raise HTTPException(422, f"unknown alert_type {alert_type!r}")
    filters: list[dict[str, Any]] = [{"term": {"status": "open"}}, *_visible(principal)]
    if course_id is not None:
        course = _reference(live, "courses", course_id, "course")
        _check_teacher(principal, course.get("teacher_ids", []), f"course {course_id}")
        filters.append({"term": {"course_id": course_id}})
    kinds: list[dict[str, Any]] = [
        {"terms": {"alert_type": list(ALERT_TYPES)}},
        {"term": {"audience": "teacher"}},
    ]
    if alert_type in ALERT_TYPES:
        kinds = [{"term": {"alert_type": alert_type}}]
    elif alert_type == "re_engage":
        kinds = [{"term": {"trigger_type": "re_engage"}}]
    with _es_errors():
        hits = live.es.search(
            index=f"{live.index('alerts')},{live.index('triggers')}",
            size=limit,
            query={"bool": {"filter": filters, "should": kinds, "minimum_should_match": 1}},
            sort=[{"detected_at": "desc"}],
        )["hits"]
    return {
        "total": hits["total"]["value"],
        "alerts": [
            {"id": h["_id"], "kind": h["_index"].removeprefix(live.prefix), **h["_source"]}
            for h in hits["hits"]
        ],
    }
