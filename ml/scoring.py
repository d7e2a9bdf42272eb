"""Batch scoring into the warehouse's ``ml`` schema: the tables the students-at-risk mart, the
dashboards and the prediction service read.

- ``ml.student_course_scores``: dropout risk (+ band) and predicted final score (+ 80% interval)
  per student-course and as-of date (the spec'd interface with the warehouse).
- ``ml.student_topic_mastery``: mastery per student-topic, weakest first, with evidence.
- ``ml.chapter_recommendations``: the top next chapters per student-course.
- ``ml.quiz_difficulty``: the recommended question-difficulty band per student-topic.
- ``ml.online_student_course_features`` / ``ml.online_student_topic_features``: the latest
  feature vector per key (JSON), so the prediction service scores with the features the batch
  used, under the same registered model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd
from psycopg import sql

from lms.settings import Settings
from ml import data, derived, store
from ml.errors import MlError
from ml.features import feature_columns
from ml.models import dropout, next_chapter, quiz_difficulty, topic_mastery
from ml.registry import Registry

SCORES_DDL = {
    "student_id": "text not null",
    "course_id": "text not null",
    "as_of_date": "date not null",
    "dropout_risk": "double precision",
    "risk_band": "text",
    "predicted_final_score": "double precision",
    "predicted_final_score_low": "double precision",
    "predicted_final_score_high": "double precision",
    "dropout_model_version": "text",
    "score_model_version": "text",
    "scored_at": "timestamptz not null",
}
MASTERY_DDL = {
    "student_id": "text not null",
    "course_id": "text not null",
    "topic_id": "text not null",
    "as_of_date": "date not null",
    "mastery_p": "double precision",
    "n_evidence": "double precision",
    "is_weak": "boolean",
    "weak_rank": "integer",
    "model_version": "text",
    "scored_at": "timestamptz not null",
}
RECOMMENDATIONS_DDL = {
    "student_id": "text not null",
    "course_id": "text not null",
    "rank": "integer not null",
    "chapter_id": "text",
    "score": "double precision",
    "current_chapter_id": "text",
    "model_version": "text",
    "scored_at": "timestamptz not null",
}
DIFFICULTY_DDL = {
    "student_id": "text not null",
    "course_id": "text not null",
    "topic_id": "text not null",
    "recommended_band": "text",
    "expected_success": "double precision",
    "difficulty_low": "double precision",
    "difficulty_high": "double precision",
    "mastery_p": "double precision",
    "target_success": "double precision",
    "model_version": "text",
    "scored_at": "timestamptz not null",
}
ONLINE_COURSE_DDL = {
    "student_id": "text not null",
    "course_id": "text not null",
    "as_of_date": "date not null",
    "features": "jsonb not null",
    "updated_at": "timestamptz not null",
}
ONLINE_TOPIC_DDL = {
    "student_id": "text not null",
    "course_id": "text not null",
    "topic_id": "text not null",
    "as_of_date": "date not null",
    "features": "jsonb not null",
    "updated_at": "timestamptz not null",
}


@dataclass
class ScoreReport:
    rows: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def latest_rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Each key's row at its latest as_of_date, for enrollments still running on that date."""
    if frame.empty:
        return frame
    if "course_day" in frame.columns and "course_length_days" in frame.columns:
        frame = frame[frame["course_day"] <= frame["course_length_days"]]
    ordered = frame.sort_values("as_of_date")
    return ordered.groupby(keys, sort=False).tail(1).reset_index(drop=True)


def _features_json(frame: pd.DataFrame, features: list[str]) -> list[str]:
    values = frame[features].astype(float).to_dict("records")
    return [orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY).decode() for v in values]


def student_course_scores(
    frame: pd.DataFrame, drop: Any, score: Any, versions: tuple[str, str]
) -> pd.DataFrame:
    """The ``ml.student_course_scores`` rows for a frame of student-course feature rows."""
    risk = drop.predict(frame)["probability"].to_numpy()
    final = score.predict(frame)
    out = frame[["student_id", "course_id", "as_of_date"]].copy()
    out["dropout_risk"] = risk
    out["risk_band"] = dropout.risk_band(risk, drop.params.get("risk_bands"))
    out["predicted_final_score"] = final["prediction"].to_numpy()
    out["predicted_final_score_low"] = final["low"].to_numpy() if "low" in final else None
    out["predicted_final_score_high"] = final["high"].to_numpy() if "high" in final else None
    out["dropout_model_version"], out["score_model_version"] = versions
    out["scored_at"] = datetime.now(UTC)
    return out


# Each output table: its columns and its key.
TABLES: dict[str, tuple[dict[str, str], list[str]]] = {
    "student_course_scores": (SCORES_DDL, ["student_id", "course_id", "as_of_date"]),
    "student_topic_mastery": (MASTERY_DDL, ["student_id", "course_id", "topic_id", "as_of_date"]),
    "chapter_recommendations": (RECOMMENDATIONS_DDL, ["student_id", "course_id", "rank"]),
    "quiz_difficulty": (DIFFICULTY_DDL, ["student_id", "course_id", "topic_id"]),
    "online_student_course_features": (ONLINE_COURSE_DDL, ["student_id", "course_id"]),
    "online_student_topic_features": (ONLINE_TOPIC_DDL, ["student_id", "course_id", "topic_id"]),
}


def write(
    settings: Settings,
    report: ScoreReport,
    name: str,
    frame: pd.DataFrame,
    *,
    replace: bool = False,
) -> None:
    """Upsert one output table (``replace``: the run's rows supersede all previous ones)."""
    ddl, key = TABLES[name]
    report.rows[name] = store.upsert(
        settings.warehouse_dsn,
        settings.ml_schema,
        name,
        frame,
        ddl=ddl,
        key=key,
        replace_where=sql.SQL("true") if replace else None,
    )


def online_features(latest: pd.DataFrame, keys: list[str], features: list[str]) -> pd.DataFrame:
    out = latest[[*keys, "as_of_date"]].copy()
    out["features"] = _features_json(latest, features)
    out["updated_at"] = datetime.now(UTC)
    return out


def _load_promoted(registry: Registry, report: ScoreReport) -> dict[str, Any]:
    loaded: dict[str, Any] = {}
    for name in ("dropout", "final_score", "topic_mastery", "next_chapter", "quiz_difficulty"):
        try:
            loaded[name] = registry.load(name)
            report.versions[name] = loaded[name][1]
        except MlError as exc:
            report.skipped[name] = str(exc)
    return loaded


def score_all(
    settings: Settings, registry: Registry, *, schema: str | None = None, history: bool = False
) -> ScoreReport:
    """Score every running student-course (or every as-of row, ``history=True``) with the promoted
    models and write the ``ml`` tables. A model that is not promoted yet is reported as skipped."""
    now = datetime.now(UTC)
    report = ScoreReport()
    loaded = _load_promoted(registry, report)
    course = data.student_course(settings, schema)
    course_keys = ["student_id", "course_id"]
    course_latest = latest_rows(course, course_keys)
    if "dropout" in loaded and "final_score" in loaded:
        (drop, dv), (fin, sv) = loaded["dropout"], loaded["final_score"]
        rows = course if history else course_latest
        write(
            settings,
            report,
            "student_course_scores",
            student_course_scores(rows, drop, fin, (dv, sv)),
        )
    features = feature_columns(course)
    write(
        settings,
        report,
        "online_student_course_features",
        online_features(course_latest, course_keys, features),
    )

    # Derived features (a student's share over all topics) need every topic of the as-of date,
    # so they are computed before picking each key's latest row.
    topics = derived.apply(data.student_topic(settings, schema), topic_mastery.DERIVED)
    topic_keys = ["student_id", "course_id", "topic_id"]
    topic_latest = latest_rows(topics, topic_keys)
    if not topic_latest.empty:
        online = online_features(topic_latest, topic_keys, feature_columns(topics))
        write(settings, report, "online_student_topic_features", online)
    if "topic_mastery" in loaded and not topic_latest.empty:
        bundle, version = loaded["topic_mastery"]
        mastery = topic_mastery.weak_topics(bundle, topic_latest)
        write(
            settings,
            report,
            "student_topic_mastery",
            mastery.assign(model_version=version, scored_at=now),
        )
        if "quiz_difficulty" in loaded:
            policy, pversion = loaded["quiz_difficulty"]
            bands = quiz_difficulty.recommend(policy, mastery)
            write(
                settings,
                report,
                "quiz_difficulty",
                bands.assign(model_version=pversion, scored_at=now),
            )
    if "next_chapter" in loaded:
        bundle, version = loaded["next_chapter"]
        recs = next_chapter.recommend(bundle, data.chapter_transitions(settings, schema))
        recs = recs.assign(model_version=version, scored_at=now)
        write(settings, report, "chapter_recommendations", recs, replace=True)
    return report
