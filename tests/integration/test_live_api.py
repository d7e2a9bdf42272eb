"""``GET /v1/live/...`` on the real Elasticsearch and the real key store.

The live indices are created by the streaming code's own templates (``streaming.elastic``) under
a prefix of this module, and filled with documents in the shape the jobs write (the jobs'
output itself is checked in test_streaming.py). Keys are real keys in ``platform.api_keys``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from lms.auth.manage import create_key, revoke_key
from lms.auth.store import PostgresKeyStore
from lms.services.manager import ServiceManager
from lms.settings import REPO_ROOT, get_settings

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from serving.app import create_app
from streaming import elastic

pytestmark = pytest.mark.integration


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def seed(es: Elasticsearch, prefix: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=30)
    docs: list[elastic.Action] = []

    def add(index: str, doc_id: str, doc: dict[str, Any], version: int | None = None) -> None:
        docs.append(elastic.Action(f"{prefix}{index}", doc_id, version, doc))

    add("courses", "crs_a", {"course_id": "crs_a", "teacher_ids": ["tch_a"]})
    add("courses", "crs_b", {"course_id": "crs_b", "teacher_ids": ["tch_b"]})
    add(
        "live-classes",
        "lcl_a",
        {
            "live_class_id": "lcl_a",
            "course_id": "crs_a",
            "teacher_ids": ["tch_a"],
            "starts_at": iso(start),
            "ends_at": iso(start + timedelta(minutes=90)),
        },
    )
    for course, n in (("crs_a", 7), ("crs_b", 3)):
        for k, active in enumerate((n - 1, n)):
            end = now - timedelta(seconds=30 * (1 - k))
            add(
                "active-students",
                f"{course}|{iso(end)}",
                {
                    "course_id": course,
                    "window_start": iso(end - timedelta(minutes=5)),
                    "window_end": iso(end),
                    "window_s": 300,
                    "active_students": active,
                    "teacher_ids": ["tch_a" if course == "crs_a" else "tch_b"],
                },
            )
    for i in range(4):
        seen = now - timedelta(seconds=20 if i < 3 else 3600)
        add(
            "presence",
            f"crs_a|stu_{i}",
            {"course_id": "crs_a", "student_id": f"stu_{i}", "last_seen_at": iso(seen)},
        )
    for i, (minutes, in_class) in enumerate(((30.0, True), (12.5, False))):
        add(
            "attendance",
            f"lcl_a|stu_{i}",
            {
                "live_class_id": "lcl_a",
                "course_id": "crs_a",
                "student_id": f"stu_{i}",
                "minutes": minutes,
                "attendance_share": round(minutes / 90, 4),
                "in_class": in_class,
                "missing_leave": False,
                "inferred_join": False,
                "joins": 1,
                "teacher_ids": ["tch_a"],
            },
            version=2,
        )
    for course, teacher in (("crs_a", "tch_a"), ("crs_b", "tch_b")):
        add(
            "alerts",
            f"fast_answers|att_{course}",
            {
                "alert_type": "fast_answers",
                "status": "open",
                "student_id": "stu_9",
                "course_id": course,
                "attempt_id": f"att_{course}",
                "detected_at": iso(now),
                "evidence": [{"event_id": "e1"}],
                "thresholds": {"fast_answer_min": 3},
                "teacher_ids": [teacher],
            },
        )
    add(
        "triggers",
        "re_engage|stu_8|crs_a|x",
        {
            "trigger_type": "re_engage",
            "audience": "teacher",
            "status": "open",
            "student_id": "stu_8",
            "course_id": "crs_a",
            "detected_at": iso(now),
            "teacher_ids": ["tch_a"],
        },
    )
    add(
        "triggers",
        "review_chapter|att_1",
        {
            "trigger_type": "review_chapter",
            "audience": "student",
            "status": "open",
            "student_id": "stu_8",
            "course_id": "crs_a",
            "detected_at": iso(now),
            "teacher_ids": ["tch_a"],
        },
    )
    elastic.write(es, docs)
    es.indices.refresh(index=",".join(f"{prefix}{n}" for n in elastic.MAPPINGS))


@pytest.fixture(scope="module")
def api(services: ServiceManager) -> Iterator[dict[str, Any]]:
    run = uuid.uuid4().hex[:8]
    prefix = f"lms-live-api{run}-"
    settings = get_settings().model_copy(update={"stream_index_prefix": prefix})
    es = Elasticsearch(settings.es_base_url, request_timeout=30)
    elastic.ensure_indices(es, prefix)
    seed(es, prefix)
    store = PostgresKeyStore(settings.platform_dsn)
    keys = {}
    specs = {
        "live": ("live:read", None),
        "alerts": ("alerts:read", None),
        "writer": ("events:write", None),
        "teacher": ("live:read,alerts:read", "tch_a"),
    }
    for label, (scopes, teacher) in specs.items():
        keys[label], _ = create_key(store, f"live-{label}-{run}", scopes, teacher_id=teacher)
    app = create_app(settings, key_store=store, es=es)
    try:
        with TestClient(app) as client:
            yield {"client": client, "keys": keys}
    finally:
        for label in specs:
            revoke_key(store, f"live-{label}-{run}")
        for name in elastic.MAPPINGS:
            es.options(ignore_status=404).indices.delete(index=f"{prefix}{name}")
            es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}{name}")
        es.close()


def get(api: dict[str, Any], path: str, key: str | None = None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {api['keys'][key]}"} if key else {}
    return api["client"].get(path, headers=headers, params=params)


def test_health_and_ready(api: dict[str, Any]) -> None:
    assert get(api, "/health").json() == {"status": "ok"}
    assert get(api, "/ready").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v1/live/active-students",
        "/v1/live/courses/crs_a/active-students",
        "/v1/live/live-classes/lcl_a/attendance",
        "/v1/live/alerts",
    ],
)
def test_auth_matrix(api: dict[str, Any], path: str) -> None:
    assert get(api, path).status_code == 401
    bad = api["client"].get(path, headers={"X-API-Key": "lms_nokey000_secret"})
    assert bad.status_code == 401
    assert get(api, path, "writer").status_code == 403
    wrong = "live" if path.endswith("/alerts") else "alerts"
    assert get(api, path, wrong).status_code == 403
    assert get(api, path, "teacher").status_code == 200


def test_active_students_per_course(api: dict[str, Any]) -> None:
    body = get(api, "/v1/live/courses/crs_a/active-students", "live").json()
    assert body["latest_window"]["active_students"] == 7
    assert body["active_now"] == 3  # seen within the window; one student an hour ago
    every = get(api, "/v1/live/active-students", "live").json()
    assert [c["course_id"] for c in every["courses"]] == ["crs_a", "crs_b"]
    mine = get(api, "/v1/live/active-students", "teacher").json()
    assert [c["course_id"] for c in mine["courses"]] == ["crs_a"]


def test_teacher_outside_their_course_is_refused(api: dict[str, Any]) -> None:
    assert get(api, "/v1/live/courses/crs_b/active-students", "teacher").status_code == 403
    assert get(api, "/v1/live/alerts", "teacher", course_id="crs_b").status_code == 403
    assert get(api, "/v1/live/courses/crs_b/active-students", "live").status_code == 200


def test_attendance_of_a_live_class(api: dict[str, Any]) -> None:
    body = get(api, "/v1/live/live-classes/lcl_a/attendance", "teacher").json()
    assert body["attendees"] == 2
    assert body["in_class_now"] == 1
    assert body["mean_attendance_share"] == round((30 / 90 + 12.5 / 90) / 2, 4)
    assert [s["student_id"] for s in body["students"]] == ["stu_0", "stu_1"]


def test_open_alerts_are_scoped_to_the_teachers_courses(api: dict[str, Any]) -> None:
    mine = get(api, "/v1/live/alerts", "teacher").json()
    kinds = sorted((a["kind"], a["course_id"]) for a in mine["alerts"])
    # Their course's cheating alert and re-engagement trigger; not the student-facing review.
    assert kinds == [("alerts", "crs_a"), ("triggers", "crs_a")]
    assert next(a for a in mine["alerts"] if a["kind"] == "alerts")["evidence"]
    every = get(api, "/v1/live/alerts", "alerts", alert_type="fast_answers").json()
    assert every["total"] == 2


def test_bad_input_is_a_4xx(api: dict[str, Any]) -> None:
    assert get(api, "/v1/live/courses/crs_zz/active-students", "live").status_code == 404
    assert get(api, "/v1/live/courses/bad%20id!/active-students", "live").status_code == 422
    assert get(api, "/v1/live/alerts", "alerts", alert_type="nope").status_code == 422
    assert get(api, "/v1/live/alerts", "alerts", limit=0).status_code == 422
    assert get(api, "/v1/live/live-classes/lcl_zz/attendance", "live").status_code == 404
