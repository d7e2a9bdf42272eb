"""The prediction service on the real registry (S3), the real warehouse (PostgreSQL), the real key
store and Elasticsearch.

Models are trained and registered with the ML library on mart-shaped synthetic frames (seconds to
train, known signal); the online feature tables and the batch scores are written by the ML
library's own scoring functions into an ``ml`` schema of this module; the reference facts the
service checks (students, courses, enrollments, course teachers) are a small raw-layer snapshot in
a raw schema of this module. Everything is removed afterwards.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from lms.auth.manage import create_key, revoke_key
from lms.auth.store import PostgresKeyStore
from lms.services.manager import ServiceManager
from lms.settings import REPO_ROOT, Settings, get_settings
from ml.models import dropout, quiz_difficulty
from ml.registry import Registry

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from serving import sample
from serving.app import create_app
from serving.metrics import JsonFormatter
from serving.routes.schemas import DropoutRisk, NextChapters
from serving.sample import COLD, LONELY, course_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@dataclass
class School:
    settings: Settings
    registry: Registry
    course: pd.DataFrame
    scores: pd.DataFrame
    keys: dict[str, str]


@pytest.fixture(scope="module")
def school(services: ServiceManager) -> Iterator[School]:
    run = uuid.uuid4().hex[:8]
    settings = sample.isolated(get_settings(), run)
    keys_store = PostgresKeyStore(settings.platform_dsn)
    names = {
        "lms": ("predictions:read", None),
        "alerts": ("alerts:read", None),
        "collector": ("events:write", None),
        "teacher": ("predictions:read,alerts:read", "tch_a"),
        "admin": ("admin", None),
    }
    keys: dict[str, str] = {}
    try:  # whatever fails part-way, the registry prefix, schemas and keys are removed
        built = sample.build(settings)
        for label, (scopes, teacher) in names.items():
            keys[label], _ = create_key(
                keys_store, f"t-serve-{run}-{label}", scopes, teacher_id=teacher
            )
        yield School(settings, built.registry, built.course, built.scores, keys)
    finally:
        for label in keys:
            revoke_key(keys_store, f"t-serve-{run}-{label}")
        sample.remove(settings)


@pytest.fixture(scope="module")
def client(school: School) -> Iterator[TestClient]:
    saved = os.environ.get("LMS_SERVE_MODEL_POLL_S")
    os.environ["LMS_SERVE_MODEL_POLL_S"] = "0.5"
    es = Elasticsearch(school.settings.es_base_url, request_timeout=10)
    try:
        with TestClient(create_app(school.settings, es=es), raise_server_exceptions=False) as c:
            yield c
    finally:
        if saved is None:
            os.environ.pop("LMS_SERVE_MODEL_POLL_S", None)
        else:
            os.environ["LMS_SERVE_MODEL_POLL_S"] = saved
        es.close()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def student(school: School, course: str = "crs_001") -> str:
    ids = school.scores.loc[school.scores["course_id"] == course, "student_id"]
    return str(sorted(ids)[0])


def url(student_id: str, course_id: str, what: str) -> str:
    return f"/v1/students/{student_id}/courses/{course_id}/{what}"


ENDPOINTS = ("dropout-risk", "exam-score", "weak-topics", "quiz-difficulty", "next-chapters")


def test_ready_when_models_loaded_and_database_up(client: TestClient, school: School) -> None:
    r = client.get("/ready/predictions")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["database"] == "ok"
    assert body["models"]["dropout"]["version"] == school.registry.promoted("dropout").version
    assert all(m["loaded"] for m in body["models"].values())


def test_dropout_risk_answers_with_band_factors_version_and_as_of(
    client: TestClient, school: School
) -> None:
    sid = student(school)
    r = client.get(url(sid, "crs_001", "dropout-risk"), headers=auth(school.keys["lms"]))
    assert r.status_code == 200, r.text
    body = r.json()
    version = school.registry.promoted("dropout").version
    assert r.headers["x-model-version"] == f"dropout={version}"
    assert body["model_version"] == version
    assert 0 <= body["probability"] <= 1
    assert body["risk_band"] in ("low", "medium", "high")
    assert body["cold_start"] is False
    assert 1 <= len(body["top_factors"]) <= 5
    assert all(f["feature"].startswith("f_") for f in body["top_factors"])
    contributions = [abs(f["contribution"]) for f in body["top_factors"]]
    assert contributions == sorted(contributions, reverse=True)
    expected = school.scores.set_index("student_id").loc[sid, "as_of_date"]
    assert body["as_of_date"] == pd.Timestamp(expected).date().isoformat()
    assert r.headers["x-request-id"]


def test_served_predictions_agree_with_the_batch_scores(client: TestClient, school: School) -> None:
    sample = school.scores.sample(25, random_state=2)
    for row in sample.itertuples():
        r = client.get(
            url(row.student_id, row.course_id, "dropout-risk"), headers=auth(school.keys["lms"])
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model_version"] == row.dropout_model_version
        assert body["probability"] == pytest.approx(row.dropout_risk, abs=1e-9)
        assert body["risk_band"] == row.risk_band
        assert body["as_of_date"] == pd.Timestamp(row.as_of_date).date().isoformat()
        e = client.get(
            url(row.student_id, row.course_id, "exam-score"), headers=auth(school.keys["lms"])
        ).json()
        assert e["predicted_score"] == pytest.approx(row.predicted_final_score, abs=1e-3)
        assert e["low"] == pytest.approx(row.predicted_final_score_low, abs=1e-3)
        assert e["high"] == pytest.approx(row.predicted_final_score_high, abs=1e-3)


def test_fast_bodies_have_every_field_of_their_response_model(
    client: TestClient, school: School
) -> None:
    """dropout-risk and next-chapters skip FastAPI's response validation (orjson bodies): each
    body, warm or cold start, must still be exactly its documented model."""
    h = auth(school.keys["lms"])
    for sid, course in (("stu_0000001", course_of("stu_0000001")), (COLD, "crs_001")):
        for what, model in (("dropout-risk", DropoutRisk), ("next-chapters?k=4", NextChapters)):
            r = client.get(url(sid, course, what), headers=h)
            assert r.status_code == 200, r.text
            assert set(r.json()) == set(model.model_fields), what
            model.model_validate(r.json())


def test_hot_path_answers_exactly_like_the_fastapi_route(
    client: TestClient, school: School
) -> None:
    """``serving.hot`` answers plain dropout-risk/next-chapters requests before FastAPI does; a
    repeated parameter sends the same request through the FastAPI route. Both must give the
    same status, body and headers (request ids aside), and the same log/metrics route."""
    h = auth(school.keys["teacher"])
    sid = student(school)
    for sid_, course in ((sid, "crs_001"), (COLD, "crs_001")):
        for what, query in (
            ("dropout-risk", "factors=3"),
            ("dropout-risk", "realtime=false"),
            ("next-chapters", "k=4"),
            ("next-chapters", ""),
        ):
            path = url(sid_, course, what)
            hot = client.get(f"{path}?{query}", headers=h)
            routed = client.get(
                f"{path}?{query}&{query}" if query else f"{path}?k=3&k=3", headers=h
            )
            assert hot.status_code == routed.status_code == 200, (path, hot.text, routed.text)
            assert hot.content == routed.content, path
            for name in ("content-type", "content-length", "x-model-version"):
                assert hot.headers[name] == routed.headers[name], (path, name)
    text = client.get("/metrics").text
    assert 'route="/v1/students/{student_id}/courses/{course_id}/next-chapters"' in text


def test_every_prediction_endpoint_answers(client: TestClient, school: School) -> None:
    sid = "stu_0000001"  # in every synthetic frame: course features, topics and chapter moves
    course = course_of(sid)
    h = auth(school.keys["lms"])
    exam = client.get(url(sid, course, "exam-score"), headers=h)
    assert exam.status_code == 200, exam.text
    e = exam.json()
    assert e["low"] <= e["predicted_score"] <= e["high"] and e["low"] >= 0 and e["high"] <= 100
    assert e["interval_coverage"] == pytest.approx(0.8)
    assert exam.headers["x-model-version"].startswith("final_score=")

    weak = client.get(url(sid, course, "weak-topics") + "?k=3", headers=h)
    assert weak.status_code == 200, weak.text
    topics = weak.json()["topics"]
    assert 1 <= len(topics) <= 3
    assert [t["mastery"] for t in topics] == sorted(t["mastery"] for t in topics)
    assert [t["rank"] for t in topics] == list(range(1, len(topics) + 1))

    quiz = client.get(url(sid, course, "quiz-difficulty"), headers=h)
    assert quiz.status_code == 200, quiz.text
    q = quiz.json()
    assert q["topics"] and q["target_success"] == pytest.approx(0.7)
    for t in q["topics"]:
        assert t["recommended_band"] in quiz_difficulty.BANDS
        assert 1 <= len(t["suggested_questions"]) <= 3
    assert {"quiz_difficulty", "topic_mastery"} == {
        part.split("=")[0] for part in quiz.headers["x-model-version"].split(",")
    }
    one = client.get(
        url(sid, course, "quiz-difficulty") + f"?topic_id={q['topics'][0]['topic_id']}", headers=h
    )
    assert [t["topic_id"] for t in one.json()["topics"]] == [q["topics"][0]["topic_id"]]

    nxt = client.get(url(sid, course, "next-chapters") + "?k=4", headers=h)
    assert nxt.status_code == 200, nxt.text
    n = nxt.json()
    assert n["current_chapter_id"] and 1 <= len(n["chapters"]) <= 4
    assert all(c["reasons"] for c in n["chapters"])
    scores = [c["score"] for c in n["chapters"]]
    assert scores == sorted(scores, reverse=True)


def test_at_risk_lists_the_riskiest_students_first(client: TestClient, school: School) -> None:
    r = client.get("/v1/courses/crs_002/at-risk?limit=10", headers=auth(school.keys["alerts"]))
    assert r.status_code == 200, r.text
    body = r.json()
    expected = school.scores[school.scores["course_id"] == "crs_002"].nlargest(10, "dropout_risk")
    assert [s["student_id"] for s in body["students"]] == list(expected["student_id"])
    assert body["n_scored"] == int((school.scores["course_id"] == "crs_002").sum())
    assert all(s["top_factors"] for s in body["students"])
    high = client.get(
        "/v1/courses/crs_002/at-risk?limit=500&min_band=high", headers=auth(school.keys["alerts"])
    ).json()
    assert all(s["risk_band"] == "high" for s in high["students"])
    assert len(high["students"]) == int(
        ((school.scores["course_id"] == "crs_002") & (school.scores["risk_band"] == "high")).sum()
    )


def test_cold_start_is_a_documented_answer_not_an_error(client: TestClient, school: School) -> None:
    h = auth(school.keys["lms"])
    for what in ENDPOINTS:
        r = client.get(url(COLD, "crs_001", what), headers=h)
        assert r.status_code == 200, (what, r.text)
        body = r.json()
        assert body["cold_start"] is True and "history" in body["reason"], what
    risk = client.get(url(COLD, "crs_001", "dropout-risk"), headers=h).json()
    assert risk["probability"] is None and risk["risk_band"] == "unknown"
    chapters = client.get(url(COLD, "crs_001", "next-chapters") + "?k=2", headers=h).json()
    assert [c["position"] for c in chapters["chapters"]] == [1, 2]


def test_unknown_ids_are_404_with_a_clear_body(client: TestClient, school: School) -> None:
    h = auth(school.keys["admin"])
    sid = student(school)
    cases = {
        url("stu_nobody", "crs_001", "dropout-risk"): "unknown student 'stu_nobody'",
        url(sid, "crs_nope", "exam-score"): "unknown course 'crs_nope'",
        url(LONELY, "crs_001", "weak-topics"): "is not enrolled in course 'crs_001'",
        "/v1/courses/crs_nope/at-risk": "unknown course 'crs_nope'",
    }
    for path, detail in cases.items():
        r = client.get(path, headers=h)
        assert r.status_code == 404, (path, r.text)
        assert detail in r.json()["detail"]


def test_bad_parameters_are_422_never_500(client: TestClient, school: School) -> None:
    h = auth(school.keys["admin"])
    sid = student(school)
    for path in (
        url(sid, "crs_001", "weak-topics") + "?k=0",
        url(sid, "crs_001", "weak-topics") + "?k=51",
        url(sid, "crs_001", "next-chapters") + "?k=abc",
        url(sid, "crs_001", "next-chapters") + "?k=21",
        url(sid, "crs_001", "quiz-difficulty") + "?topic_id=bad%20id",
        url("bad id!", "crs_001", "dropout-risk"),
        url("x" * 65, "crs_001", "dropout-risk"),
        "/v1/courses/crs_001/at-risk?limit=0",
        "/v1/courses/crs_001/at-risk?min_band=extreme",
    ):
        r = client.get(path, headers=h)
        assert r.status_code == 422, (path, r.status_code, r.text)
    for body in ({}, {"student_ids": []}, {"student_ids": ["ok", "bad id"]}, {"k": 2}, []):
        r = client.post("/v1/courses/crs_001/batch/dropout-risk", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
    r = client.post("/v1/courses/crs_001/batch/nope", json={"student_ids": [sid]}, headers=h)
    assert r.status_code == 422


def test_auth_matrix(client: TestClient, school: School) -> None:
    k = school.keys
    a_course, b_course = "crs_001", "crs_005"  # tch_a teaches crs_000..003
    a_student, b_student = student(school, a_course), student(school, b_course)
    risk_a, risk_b = (
        url(a_student, a_course, "dropout-risk"),
        url(b_student, b_course, "dropout-risk"),
    )
    assert client.get(risk_a).status_code == 401
    assert client.get(risk_a, headers=auth("lms_bad_key")).status_code == 401
    assert client.get(risk_a, headers=auth(k["collector"])).status_code == 403
    assert client.get(risk_a, headers=auth(k["alerts"])).status_code == 403
    assert client.get(risk_a, headers={"X-API-Key": k["lms"]}).status_code == 200
    assert client.get(risk_a, headers=auth(k["teacher"])).status_code == 200
    outside = client.get(risk_b, headers=auth(k["teacher"]))
    assert outside.status_code == 403 and "another teacher" in outside.json()["detail"]
    for what in ENDPOINTS:
        assert (
            client.get(url(b_student, b_course, what), headers=auth(k["teacher"])).status_code
            == 403
        )
    assert client.get(risk_b, headers=auth(k["admin"])).status_code == 200
    # The at-risk list needs alerts:read; the teacher sees only their courses.
    assert client.get(f"/v1/courses/{a_course}/at-risk", headers=auth(k["lms"])).status_code == 403
    assert (
        client.get(f"/v1/courses/{a_course}/at-risk", headers=auth(k["teacher"])).status_code == 200
    )
    assert (
        client.get(f"/v1/courses/{b_course}/at-risk", headers=auth(k["teacher"])).status_code == 403
    )
    assert (
        client.get(f"/v1/courses/{b_course}/at-risk", headers=auth(k["admin"])).status_code == 200
    )
    batch = client.post(
        f"/v1/courses/{b_course}/batch/dropout-risk",
        json={"student_ids": [b_student]},
        headers=auth(k["teacher"]),
    )
    assert batch.status_code == 403


def test_batch_answers_each_student_like_the_single_endpoint(
    client: TestClient, school: School
) -> None:
    h = auth(school.keys["lms"])
    ids = [*sorted(school.scores.loc[school.scores["course_id"] == "crs_003", "student_id"])[:20]]
    for kind in ENDPOINTS:
        r = client.post(
            f"/v1/courses/crs_003/batch/{kind}",
            json={"student_ids": [*ids, "stu_nobody", ids[0]], "k": 2},
            headers=h,
        )
        assert r.status_code == 200, (kind, r.text)
        body = r.json()
        assert r.headers["x-model-version"]
        results = body["results"]
        assert len(results) == len(ids) + 1  # duplicates answered once
        assert results[-1] == {
            "student_id": "stu_nobody",
            "status": 404,
            "result": None,
            "error": "unknown student 'stu_nobody'",
        }
        single = client.get(
            url(ids[0], "crs_003", kind) + ("?k=2" if "k" in kind else ""), headers=h
        )
        first = results[0]["result"]
        if kind == "dropout-risk":
            assert first["probability"] == single.json()["probability"]
        if kind == "next-chapters":
            assert (
                first["chapters"]
                == client.get(url(ids[0], "crs_003", kind) + "?k=2", headers=h).json()["chapters"]
            )


def test_realtime_signal_from_the_presence_index(client: TestClient, school: School) -> None:
    ids = school.scores.loc[school.scores["course_id"] == "crs_001", "student_id"]
    sid = sorted(ids)[-1]  # not asked before: the signal is cached for a few seconds
    es = Elasticsearch(school.settings.es_base_url)
    index = f"{school.settings.stream_index_prefix}presence"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    try:
        es.index(
            index=index,
            id=f"crs_001|{sid}",
            document={"course_id": "crs_001", "student_id": sid, "last_seen_at": now},
            refresh=True,
        )
        path = url(sid, "crs_001", "dropout-risk")
        body = client.get(path + "?realtime=true", headers=auth(school.keys["lms"])).json()
        assert body["realtime"]["active_now"] is True
        assert body["realtime"]["last_seen_at"].startswith(now[:19])
        plain = client.get(path, headers=auth(school.keys["lms"])).json()
        assert plain["realtime"] is None and plain["probability"] == body["probability"]
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
        es.close()


def test_metrics_and_structured_logs_without_personal_data(
    client: TestClient, school: School
) -> None:
    sid = student(school)
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("serving.access").addHandler(handler)
    try:
        r = client.get(
            url(sid, "crs_001", "dropout-risk"),
            headers=auth(school.keys["lms"]) | {"X-Request-ID": "req-test-12345"},
        )
    finally:
        logging.getLogger("serving.access").removeHandler(handler)
    assert r.headers["x-request-id"] == "req-test-12345"
    lines = [line for line in sink.getvalue().splitlines() if "req-test-12345" in line]
    assert len(lines) == 1, sink.getvalue()
    record = json.loads(lines[0])
    assert record["status"] == 200 and record["latency_ms"] > 0
    assert record["route"] == "/v1/students/{student_id}/courses/{course_id}/dropout-risk"
    assert record["model_versions"]["dropout"] == r.json()["model_version"]
    assert sid not in lines[0]
    text = client.get("/metrics").text
    assert "lms_serve_requests_total" in text and "lms_serve_model_loaded" in text
    assert 'route="/v1/students/{student_id}/courses/{course_id}/dropout-risk"' in text
    assert sid not in text


def test_hot_swap_during_requests_drops_nothing(client: TestClient, school: School) -> None:
    old = school.registry.promoted("dropout").version
    sid = student(school)
    path = url(sid, "crs_001", "dropout-risk")
    h = auth(school.keys["lms"])
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            r = client.get(path, headers=h)
            seen.append((r.status_code, r.headers.get("x-model-version", "")))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        retrained = dropout.train(school.course, params={"max_depth": 2, "eta": 0.2})
        new = sample.promote(school.registry, retrained.bundle, "hot-swap test")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(v == f"dropout={new}" for _, v in seen):
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert seen and all(status == 200 for status, _ in seen), {s for s, _ in seen}
    versions = [v for _, v in seen]
    assert f"dropout={old}" in versions and f"dropout={new}" in versions
    # Once swapped, never back.
    first_new = versions.index(f"dropout={new}")
    assert all(v == f"dropout={new}" for v in versions[first_new + 50 :])
    body = client.get(path, headers=h).json()
    assert body["model_version"] == new


def test_fuzzing_the_openapi_spec_finds_no_server_error(client: TestClient, school: School) -> None:
    """schemathesis generates requests from the OpenAPI spec (valid and invalid parameters and
    bodies); whatever it sends, the answer is never a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/v1/") or "/live/" in operation.path:
            continue  # the live routes are the streaming work's (test_live_api.py)

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def run(case: Any) -> None:
            nonlocal calls
            for key in (school.keys["admin"], school.keys["teacher"]):
                response = case.call(headers={"Authorization": f"Bearer {key}"})
                calls += 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        run()
    assert calls > 100
    assert not failures, failures[:10]
