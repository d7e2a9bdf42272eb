"""The model registry on the real S3 (s3proxy) and the ml tables in the real warehouse.

Models come from synthetic mart-shaped frames (seconds to train); each test uses its own
registry prefix and schema and removes them afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pandas as pd
import psycopg
import pytest

from lms.settings import Settings, get_settings
from ml import store
from ml.errors import FeatureMartMissing, RegistryError
from ml.models import dropout
from ml.promotion import register_and_promote
from ml.registry import Registry
from ml.scoring import SCORES_DDL, student_course_scores
from ml.synthetic import student_course_frame

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings() -> Settings:
    run = uuid.uuid4().hex[:8]
    return get_settings().model_copy(
        update={"model_prefix": f"models-test-{run}", "ml_schema": f"ml_test_{run}"}
    )


@pytest.fixture(scope="module")
def registry(settings: Settings) -> Iterator[Registry]:
    registry = Registry(settings)
    yield registry
    paginator = registry.s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=registry.bucket, Prefix=registry.prefix + "/"):
        for obj in page.get("Contents", []):
            registry.s3.delete_object(Bucket=registry.bucket, Key=obj["Key"])
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {settings.ml_schema} cascade")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return student_course_frame(1500, weeks=8, seed=8)


def test_first_model_is_promoted_and_an_equal_or_worse_one_is_not(
    registry: Registry, frame: pd.DataFrame
) -> None:
    first = register_and_promote(dropout.train(frame), registry)
    assert first.promoted and "first model" in first.reason
    # The identical model again: not better on the same test window, so not promoted.
    again = register_and_promote(dropout.train(frame), registry)
    assert not again.promoted and "does not beat the promoted" in again.reason
    assert again.comparison["version"] == first.version
    # Without its informative features the model falls to (or below) its baseline.
    weak = frame.drop(columns=[c for c in frame.columns if c.startswith("f_") and "noise" not in c])
    worse = register_and_promote(dropout.train(weak), registry)
    assert not worse.promoted
    assert registry.promoted("dropout").version == first.version
    assert registry.versions("dropout") == sorted([first.version, again.version, worse.version])
    card = registry.card("dropout", worse.version)
    assert card["comparison_with_promoted"]["promoted"] is False


def test_the_promoted_model_loads_and_scores_like_the_trained_one(
    registry: Registry, frame: pd.DataFrame, settings: Settings
) -> None:
    bundle, version = registry.load("dropout")
    assert version == registry.promoted("dropout").version
    sample = frame.sample(400, random_state=1)
    p = bundle.predict(sample)["probability"]
    assert p.between(0, 1).all()
    md = registry._get(f"{registry.prefix}/dropout/versions/{version}/card.md")
    assert md is not None and b"roc_auc" in md
    png = registry._get(f"{registry.prefix}/dropout/versions/{version}/roc.png")
    assert png is not None and png.startswith(b"\x89PNG")


def test_unknown_models_and_versions_are_clear_errors(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="no promoted version"):
        registry.load("no_such_model")
    with pytest.raises(RegistryError, match="no version"):
        registry.promote("dropout", "19990101T000000Z-000000", "test")


def test_scores_are_upserted_without_duplicates(
    settings: Settings, frame: pd.DataFrame, registry: Registry
) -> None:
    from ml.models import final_score

    drop, dv = registry.load("dropout")
    score = final_score.train(frame).bundle
    latest = frame.sort_values("as_of_date").groupby(["student_id", "course_id"]).tail(1)
    rows = student_course_scores(latest, drop, score, (dv, "local"))
    for _ in range(2):
        store.upsert(
            settings.warehouse_dsn,
            settings.ml_schema,
            "student_course_scores",
            rows,
            ddl=SCORES_DDL,
            key=["student_id", "course_id", "as_of_date"],
        )
    back = store.read_table(settings.warehouse_dsn, settings.ml_schema, "student_course_scores")
    assert len(back) == len(rows)
    assert back["dropout_risk"].dtype == "float64"
    assert set(back["risk_band"]) <= {"low", "medium", "high"}
    assert str(back["as_of_date"].dtype).startswith("datetime64")


def test_a_missing_mart_names_itself_and_the_fix(settings: Settings) -> None:
    with pytest.raises(
        FeatureMartMissing, match=r"nope_schema\.student_course_asof.*lms warehouse build"
    ):
        store.read_table(settings.warehouse_dsn, "nope_schema", "student_course_asof")
