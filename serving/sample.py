"""A small scored school for the prediction service's tests and benchmark, built with the ML
library itself: models trained on mart-shaped synthetic frames (``ml.synthetic``: seconds to
train, known signal) and registered/promoted on the real registry; online feature tables and
batch scores written by ``ml.scoring``'s own functions; the reference facts the service checks
(students, courses, enrollments, course teachers) as a small raw-layer snapshot.

Everything goes under the names of the given settings (registry prefix, ``ml`` schema, raw
schema, dbt schema prefix), so a caller isolates it with ``settings.model_copy(update=...)`` and
removes it with :func:`remove`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from lms.settings import Settings
from ml import derived, store
from ml.features import feature_columns
from ml.models import dropout, final_score, next_chapter, quiz_difficulty, topic_mastery
from ml.promotion import register_and_promote
from ml.registry import Registry
from ml.scoring import ScoreReport, latest_rows, online_features, student_course_scores, write
from ml.synthetic import chapter_transitions_frame, student_course_frame, student_topic_frame

N_COURSES = 7
TEACHERS = {f"crs_{c:03d}": ("tch_a" if c < 4 else "tch_b") for c in range(N_COURSES)}
COLD = "stu_cold0001"  # enrolled in crs_001, no feature row yet
LONELY = "stu_lonely01"  # a known student enrolled nowhere
TRANSITIONS_DDL = {
    "student_id": "text",
    "course_id": "text",
    "from_chapter_id": "text",
    "to_chapter_id": "text",
    "transitioned_at": "timestamptz",
    "from_position": "integer",
    "to_position": "integer",
    "student_final_score": "double precision",
    "is_successful_student": "boolean",
}


def course_of(student_id: str) -> str:
    """The synthetic frames' course of a student (student_course_frame puts stu_i in i % 7)."""
    return f"crs_{int(student_id.split('_')[1]) % N_COURSES:03d}"


@dataclass
class Sample:
    settings: Settings
    registry: Registry
    course: pd.DataFrame
    scores: pd.DataFrame


def promote(registry: Registry, bundle: Any, reason: str) -> str:
    """Register and promote a bundle unconditionally (a test's or a benchmark's choice)."""
    version = registry.register(bundle, {"reason": reason})
    registry.promote(bundle.name, version, reason)
    return version


def _snapshot(settings: Settings, students: list[str]) -> None:
    """The OLTP facts the service checks, in the raw layer's shape (``raw.oltp_<table>``)."""
    dsn, raw, now = settings.warehouse_dsn, settings.raw_schema, datetime.now(UTC)
    everyone = [*students, COLD, LONELY]
    enrolled = [(s, course_of(s)) for s in students] + [(COLD, "crs_001")]
    tables: dict[str, tuple[pd.DataFrame, list[str]]] = {
        "oltp_students": (
            pd.DataFrame({"student_id": everyone, "email_hash": "", "updated_at": now}),
            ["student_id"],
        ),
        "oltp_courses": (
            pd.DataFrame({"course_id": list(TEACHERS), "updated_at": now}),
            ["course_id"],
        ),
        "oltp_course_teachers": (
            pd.DataFrame(
                {"course_id": list(TEACHERS), "teacher_id": list(TEACHERS.values()), "role": "lead"}
            ),
            ["course_id", "teacher_id"],
        ),
        "oltp_enrollments": (
            pd.DataFrame(enrolled, columns=["student_id", "course_id"]).assign(
                status="active", updated_at=now
            ),
            ["student_id", "course_id"],
        ),
    }
    for name, (frame, key) in tables.items():
        ddl = {c: ("timestamptz" if c == "updated_at" else "text") for c in frame.columns}
        store.upsert(dsn, raw, name, frame, ddl=ddl, key=key)


def build(settings: Settings, *, students: int = 1200, seed: int = 3) -> Sample:
    registry = Registry(settings)
    course = student_course_frame(students, weeks=8, seed=seed)
    drop = register_and_promote(dropout.train(course), registry)
    fin = register_and_promote(final_score.train(course), registry)
    if not (drop.promoted and fin.promoted):
        raise RuntimeError(f"sample models not promoted: {drop.reason}; {fin.reason}")
    topics = student_topic_frame(210, 6, weeks=6, seed=seed + 1)
    topics["course_id"] = topics["student_id"].map(course_of)
    mastery_version = promote(registry, topic_mastery.train(topics).bundle, "sample")
    moves = chapter_transitions_frame(300, 8, seed=seed + 2)
    moves["course_id"] = moves["student_id"].map(course_of)
    promote(registry, next_chapter.train(moves).bundle, "sample")
    rng = np.random.default_rng(seed + 3)
    pairs = topics[["course_id", "topic_id"]].drop_duplicates()
    questions = pairs.loc[pairs.index.repeat(8)].reset_index(drop=True)
    questions["question_id"] = [f"q_{i:05d}" for i in range(len(questions))]
    questions["n_answers"] = rng.integers(5, 60, len(questions))
    questions["p_correct"] = rng.beta(4, 2, len(questions))
    promote(registry, quiz_difficulty.build(questions, mastery_version), "sample")

    report = ScoreReport()
    keys = ["student_id", "course_id"]
    latest = latest_rows(course, keys)
    scores = student_course_scores(
        latest,
        registry.load("dropout")[0],
        registry.load("final_score")[0],
        (drop.version, fin.version),
    )
    write(settings, report, "student_course_scores", scores)
    online = online_features(latest, keys, feature_columns(course))
    write(settings, report, "online_student_course_features", online)
    topics = derived.apply(topics, topic_mastery.DERIVED)
    tkeys = [*keys, "topic_id"]
    online = online_features(latest_rows(topics, tkeys), tkeys, feature_columns(topics))
    write(settings, report, "online_student_topic_features", online)
    store.upsert(
        settings.warehouse_dsn,
        settings.dbt_schema_prefix + settings.features_schema,
        "chapter_transitions",
        moves,
        ddl=TRANSITIONS_DDL,
        key=["student_id", "course_id", "transitioned_at"],
    )
    _snapshot(settings, sorted(set(course["student_id"])))
    return Sample(settings, registry, course, scores)


def remove(settings: Settings) -> None:
    """Delete the sample's registry objects and schemas."""
    registry = Registry(settings)
    paginator = registry.s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=registry.bucket, Prefix=registry.prefix + "/"):
        for obj in page.get("Contents", []):
            registry.s3.delete_object(Bucket=registry.bucket, Key=obj["Key"])
    schemas = (
        settings.ml_schema,
        settings.raw_schema,
        settings.dbt_schema_prefix + settings.features_schema,
    )
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


def isolated(settings: Settings, run: str) -> Settings:
    """Settings whose registry prefix, schemas and live indices are this run's own."""
    return settings.model_copy(
        update={
            "model_prefix": f"models-test-serve-{run}",
            "ml_schema": f"ml_serve_{run}",
            "raw_schema": f"raw_serve_{run}",
            "dbt_schema_prefix": f"t_srv{run}_",
            "stream_index_prefix": f"lms-live-test-serve-{run}-",
        }
    )
