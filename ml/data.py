"""Loading what the models learn from: the feature marts, and answer events for evaluating the
quiz-difficulty policy. Only what a real LMS sends (contract events, OLTP facts) — the simulator's
hidden truth is read in :mod:`ml.truth`, for evaluation only."""

from __future__ import annotations

import pandas as pd
from psycopg import sql

from lms.settings import Settings
from ml import store
from ml.features import CHAPTER_TRANSITIONS, QUESTION_DIFFICULTY, STUDENT_COURSE, STUDENT_TOPIC


def features_schema(settings: Settings) -> str:
    """The marts' schema as dbt names it: a test's ``LMS_DBT_SCHEMA_PREFIX`` prefixes it too."""
    return getattr(settings, "dbt_schema_prefix", "") + settings.features_schema


def mart(settings: Settings, name: str, *, schema: str | None = None) -> pd.DataFrame:
    return store.read_table(settings.warehouse_dsn, schema or features_schema(settings), name)


def student_course(settings: Settings, schema: str | None = None) -> pd.DataFrame:
    return mart(settings, STUDENT_COURSE, schema=schema)


def student_topic(settings: Settings, schema: str | None = None) -> pd.DataFrame:
    return mart(settings, STUDENT_TOPIC, schema=schema)


def chapter_transitions(settings: Settings, schema: str | None = None) -> pd.DataFrame:
    return mart(settings, CHAPTER_TRANSITIONS, schema=schema)


def question_difficulty(settings: Settings, schema: str | None = None) -> pd.DataFrame:
    return mart(settings, QUESTION_DIFFICULTY, schema=schema)


def answers(settings: Settings, *, since: str | None = None) -> pd.DataFrame:
    """``question_answer`` events (student, course, topic, question, outcome, time) from the
    warehouse raw layer, optionally only those at or after ``since``."""
    where = sql.SQL("event_type = 'question_answer'")
    if since is not None:
        where = sql.SQL("{} and occurred_at >= {}").format(where, sql.Literal(since))
    query = sql.SQL(
        "select student_id, course_id, payload->>'topic_id' as topic_id,"
        " payload->>'question_id' as question_id,"
        " (payload->>'is_correct')::boolean as is_correct, occurred_at"
        " from {}.events where {}"
    ).format(sql.Identifier(settings.raw_schema), where)
    if not store.relation_exists(settings.warehouse_dsn, settings.raw_schema, "events"):
        return pd.DataFrame(
            columns=[
                "student_id",
                "course_id",
                "topic_id",
                "question_id",
                "is_correct",
                "occurred_at",
            ]
        )
    return store.read_query(settings.warehouse_dsn, query)
