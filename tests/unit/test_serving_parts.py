"""Prediction service pieces that need no services: cache, explanations, request plumbing."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient
from pydantic import ValidationError

from lms.auth.dependencies import presented_key
from lms.settings import get_settings
from ml.features import matrix
from ml.models import dropout, next_chapter
from ml.synthetic import chapter_transitions_frame, student_course_frame
from serving.features import (
    MISSING,
    FeatureRow,
    NeedsDatabase,
    OnlineStore,
    RealtimeSignals,
    TTLCache,
)
from serving.hot import Bounds, HotRoute, HotRoutes
from serving.metrics import JsonFormatter, Metrics, ObservabilityMiddleware
from serving.models import Loaded, Snapshot
from serving.predict import ModelUnavailable, contributions, need, risk
from serving.prepared import Moves, Ranker, Tabular, prepare, top_factors
from serving.routes.schemas import BatchRequest
from serving.settings import ServeSettings


def test_ttl_cache_expires_and_stays_bounded() -> None:
    cache = TTLCache(ttl_s=0.05, max_size=10)
    cache.put("a", 1)
    assert cache.get("a") == 1
    time.sleep(0.06)
    assert cache.get("a") is MISSING
    for i in range(25):
        cache.put(i, i)
    assert len(cache._data) <= 10
    assert cache.get(24) == 24
    assert cache.hits == 2 and cache.misses == 1


def test_a_zero_ttl_disables_the_cache() -> None:
    cache = TTLCache(ttl_s=0, max_size=10)
    cache.put("a", 1)
    assert cache.get("a") is MISSING


@pytest.fixture(scope="module")
def trained() -> tuple[Loaded, object]:
    frame = student_course_frame(600, weeks=6, seed=1)
    bundle = dropout.train(frame).bundle
    loaded = Loaded("dropout", "v1", bundle, "2026-01-01T00:00:00+00:00", None)  # type: ignore[arg-type]
    return loaded, frame


def test_top_factors_are_the_largest_shap_values_and_add_up_to_the_margin(trained) -> None:
    loaded, frame = trained
    rows = frame.sample(20, random_state=0)
    full = contributions(loaded.bundle, rows, top=len(loaded.bundle.features))
    booster = loaded.bundle.booster
    x = xgb.DMatrix(matrix(rows, loaded.bundle.features), feature_names=booster.feature_names)
    margin = booster.predict(x, output_margin=True)
    bias = booster.predict(x, pred_contribs=True)[:, -1]
    for factors, m, b in zip(full, margin, bias, strict=True):
        assert sum(f["contribution"] for f in factors) + b == pytest.approx(m, abs=1e-3)
        sizes = [abs(f["contribution"]) for f in factors]
        assert sizes == sorted(sizes, reverse=True)
        assert all(
            f["direction"] == ("raises" if f["contribution"] > 0 else "lowers") for f in factors
        )
    top3 = contributions(loaded.bundle, rows, top=3)
    assert all(len(t) <= 3 and t == f[: len(t)] for t, f in zip(top3, full, strict=True))


def test_risk_bands_follow_the_models_thresholds(trained) -> None:
    loaded, frame = trained
    p, bands, _ = risk(loaded, frame.head(200), 0)
    thresholds = loaded.bundle.params["risk_bands"]
    assert np.all((p >= thresholds["high"]) == (bands == "high"))
    assert np.all((p < thresholds["medium"]) == (bands == "low"))


def test_a_missing_model_is_a_clear_error() -> None:
    with pytest.raises(ModelUnavailable, match="'dropout' is not loaded"):
        need(Snapshot(), "dropout")


def test_batch_requests_are_validated() -> None:
    assert BatchRequest(student_ids=["stu_1"]).k == 5
    for bad in ({"student_ids": []}, {"student_ids": ["a b"]}, {"student_ids": ["a"], "k": 0}):
        with pytest.raises(ValidationError):
            BatchRequest(**bad)
    with pytest.raises(ValidationError):
        BatchRequest(student_ids=[f"s{i}" for i in range(1001)])


def test_middleware_sets_request_id_model_version_metrics_and_a_json_log() -> None:
    metrics = Metrics()
    app = FastAPI()
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)

    @app.get("/things/{thing_id}")
    def thing(thing_id: str, request: Request) -> dict[str, str]:
        request.state.model_versions = {"dropout": "v7"}
        return {"id": thing_id}

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("serving.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        client = TestClient(app)
        r = client.get("/things/stu_secret", headers={"X-Request-ID": "abcdefgh-1234"})
        generated = client.get("/things/x", headers={"X-Request-ID": "bad id"})
    finally:
        logger.removeHandler(handler)
    assert r.headers["x-request-id"] == "abcdefgh-1234"
    assert r.headers["x-model-version"] == "dropout=v7"
    assert len(generated.headers["x-request-id"]) == 32
    line = JsonFormatter().format(records[0])
    record = json.loads(line)
    assert record["route"] == "/things/{thing_id}" and record["status"] == 200
    assert "stu_secret" not in line
    text = metrics.render().decode()
    assert (
        'lms_serve_requests_total{method="GET",route="/things/{thing_id}",status="200"} 2.0' in text
    )


def test_metrics_follow_model_swaps() -> None:
    metrics = Metrics()
    metrics.swapped("dropout", "v1", None)
    metrics.swapped("dropout", "v2", "v1")
    text = metrics.render().decode()
    assert 'lms_serve_model_loaded{model="dropout",version="v2"} 1.0' in text
    assert 'version="v1"' not in text
    assert 'lms_serve_model_swaps_total{model="dropout"} 2.0' in text


def test_realtime_activity_window() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    assert RealtimeSignals.active_now(now - timedelta(minutes=1)) is True
    assert RealtimeSignals.active_now(now - timedelta(hours=1)) is False
    assert RealtimeSignals.active_now(None) is None


def test_an_unexpected_error_is_a_logged_503_not_a_500() -> None:
    app = FastAPI()
    app.add_middleware(ObservabilityMiddleware, metrics=Metrics())

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    r = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert r.status_code == 503
    assert r.json()["request_id"] == r.headers["x-request-id"]


# -- the prepared one-row paths must give the library's answers, bit for bit ------------------


def test_prepared_dropout_path_equals_the_library_path_on_random_rows(trained) -> None:
    loaded, frame = trained
    fast = prepare(loaded.bundle)
    assert isinstance(fast, Tabular)
    booster = loaded.bundle.booster
    rng = np.random.default_rng(7)
    rows = frame.sample(150, random_state=3)[loaded.bundle.features].astype(float)
    rows = rows.mask(rng.random(rows.shape) < 0.15)  # missing values take the default branches
    for _, series in rows.iterrows():
        values = {k: (None if np.isnan(v) else float(v)) for k, v in series.items()}
        x = fast.row(values)
        assert x is not None
        p, bands, factors = risk(loaded, pd.DataFrame([values]), 5)
        assert fast.probability(booster, x) == float(p[0])
        assert fast.band(float(p[0])) == str(bands[0])
        assert top_factors(booster, loaded.bundle.features, x, 5) == factors[0]
    assert fast.row({"f_unknown": 1.0}) is None  # a missing feature: the library's clear error


def test_prepared_next_chapter_ranker_equals_the_library_recommendation() -> None:
    moves = chapter_transitions_frame(160, 8, seed=5)
    moves["course_id"] = "crs_" + (moves["student_id"].str[-1].astype(int) % 3).astype(str)
    moves["transitioned_at"] = pd.to_datetime(moves["transitioned_at"], utc=True)  # as stored
    bundle = next_chapter.train(moves).bundle
    ranker = prepare(bundle)
    assert isinstance(ranker, Ranker)
    assert ranker.fast, f"serving.prepared cannot build {set(bundle.features) - Ranker.KNOWN}"
    checked = 0
    groups = list(moves.groupby(["student_id", "course_id"]))[:25]  # the library is slow
    for (_, course), own in groups:
        own = own.sort_values("transitioned_at")
        for cut in (2, len(own)):  # a short and a long history
            part = own.head(cut)
            entry = Moves(
                tuple(part["from_chapter_id"]),
                tuple(part["to_chapter_id"]),
                tuple(int(p) for p in part["from_position"]),
                tuple(int(p) for p in part["to_position"]),
                tuple(t.to_pydatetime() for t in part["transitioned_at"]),
            )
            expected = next_chapter.recommend(bundle, part, top=5)
            got = ranker.recommend(bundle.booster, course, entry, 5)
            assert got == [(r.chapter_id, float(r.score)) for r in expected.itertuples()]
            checked += 1
    assert checked == 50


def test_cached_only_answers_from_the_cache_and_never_queries() -> None:
    store = OnlineStore(get_settings(), ServeSettings(feature_ttl_s=60))
    store.cache.put(("enr", "s", "c"), "cached")

    def query() -> str:
        raise AssertionError("no query may run in cached-only mode")

    with store.cached_only():
        assert store._cached(("enr", "s", "c"), query) == "cached"
        with pytest.raises(NeedsDatabase):
            store._cached(("enr", "s", "other"), query)
    assert store._cached(("enr", "s", "other"), lambda: "loaded") == "loaded"  # outside: loads


def test_memoised_answers_expire_with_their_feature_row() -> None:
    cache = TTLCache(ttl_s=0.05, max_size=10)
    row = FeatureRow(date(2026, 3, 2), {"f_a": 1.0}, datetime(2026, 3, 2, tzinfo=UTC))
    cache.put("row", row)
    row.memo["answer"] = {"probability": 0.5}
    assert cache.get("row").memo["answer"] == {"probability": 0.5}
    assert row == FeatureRow(row.as_of_date, row.features, row.updated_at)  # memo not compared
    time.sleep(0.06)
    assert cache.get("row") is MISSING  # the next request loads a new row with an empty memo


# -- the hot path in front of FastAPI (serving.hot) -------------------------------------------


def _hot_app(answers: list[str]) -> TestClient:
    """A FastAPI route and its hot twin that says which of the two answered."""
    app = FastAPI()

    @app.get("/v1/students/{student_id}/courses/{course_id}/risk")
    def risk_route(student_id: str, course_id: str, n: int = 2) -> dict[str, object]:
        return {"by": "fastapi", "student_id": student_id, "n": n}

    async def handler(
        request: Request, student_id: str, course_id: str, params: dict[str, object]
    ) -> dict[str, object]:
        if student_id == "refused":
            raise HTTPException(403, "no")
        answers.append(student_id)
        return {"by": "hot", "student_id": student_id, "n": params["n"]}

    route = next(r for r in app.router.routes if getattr(r, "name", "") == "risk_route")
    hot = HotRoute(route, {"n": Bounds(1, 5, 2)}, frozenset({"live"}), handler, {"extra": None})
    app.add_middleware(HotRoutes, prefix="/v1", routes={"risk": hot})
    return TestClient(app)


def test_hot_route_parses_only_plain_valid_parameters() -> None:
    hot = HotRoute(None, {"k": Bounds(1, 20, 3)}, frozenset({"realtime"}), None, {})  # type: ignore[arg-type]
    assert hot.parse(b"") == {"k": 3}
    assert hot.parse(b"k=20&other=x") == {"k": 20}
    assert hot.parse(b"k=7&realtime=false") == {"k": 7}
    assert hot.parse(b"realtime=0") == {"k": 3}
    for query in (b"k=0", b"k=21", b"k=abc", b"k=", b"k=-1", b"k=3&k=3", b"realtime=true"):
        assert hot.parse(query) is None, query


def test_hot_routes_answer_successes_and_pass_everything_else_to_fastapi() -> None:
    answers: list[str] = []
    client = _hot_app(answers)
    r = client.get("/v1/students/stu_1/courses/crs_1/risk?n=4")
    assert r.json() == {"extra": None, "by": "hot", "student_id": "stu_1", "n": 4}
    assert r.headers["content-type"] == "application/json"
    for path in (
        "/v1/students/stu_1/courses/crs_1/risk?n=9",  # out of range: FastAPI decides
        "/v1/students/stu_1/courses/crs_1/risk?live=true",
        "/v1/students/bad%20id/courses/crs_1/risk",
        "/v1/students/refused/courses/crs_1/risk",  # the handler's HTTPException
    ):
        assert client.get(path).json()["by"] == "fastapi", path
    assert client.post("/v1/students/stu_1/courses/crs_1/risk").status_code == 405
    assert client.get("/v1/students/stu_1/courses/crs_1/risk/more").status_code == 404
    assert answers == ["stu_1"]


def test_presented_key_reads_bearer_then_x_api_key_like_the_security_dependencies() -> None:
    def key(headers: dict[str, str]) -> str | None:
        scope = {
            "type": "http",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
        return presented_key(Request(scope))

    assert key({"Authorization": "Bearer lms_a_b"}) == "lms_a_b"
    assert key({"Authorization": "bearer  lms_a_b "}) == "lms_a_b"
    assert key({"Authorization": "Basic abc", "X-API-Key": "lms_c_d"}) == "lms_c_d"
    assert key({"Authorization": "Bearer ", "X-API-Key": ""}) is None
    assert key({}) is None
