"""The suites: which tables each one checks and what it expects of them.

A suite is a list of table checks; a table lives either in the raw layer (the schema ingestion
writes, `Settings.raw_schema`) or in a dbt schema (`Settings.dbt_schema_prefix` + name), so the
same suites run on the dev warehouse and on a test's isolated schemas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from lms.contract import EVENT_TYPES

ID_REGEX = r"^[A-Za-z0-9_-]{1,64}$"


@dataclass(frozen=True)
class TableCheck:
    """Expectations on one table. `expectations` is called at run time (bounds like "now")."""

    layer: Literal["raw", "dbt"]
    schema: str  # for dbt tables: the unprefixed dbt schema name
    table: str
    expectations: Callable[[], list[Any]]


def _raw_events() -> list[Any]:
    import great_expectations.expectations as gxe

    now = datetime.now(UTC)
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="event_id"),
        gxe.ExpectColumnValuesToBeUnique(column="event_id"),
        gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=sorted(EVENT_TYPES)),
        gxe.ExpectColumnValuesToBeInSet(column="schema_version", value_set=["1.0"]),
        gxe.ExpectColumnValuesToNotBeNull(column="student_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="student_id", regex=ID_REGEX),
        gxe.ExpectColumnValuesToMatchRegex(column="course_id", regex=ID_REGEX),
        gxe.ExpectColumnValuesToBeBetween(
            column="occurred_at",
            min_value=datetime(2000, 1, 1, tzinfo=UTC),
            max_value=now + timedelta(days=1),
        ),
        # A client clock far ahead of the collector's is a broken device, not a late event.
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="received_at", column_B="occurred_at", or_equal=True, mostly=0.99
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="payload"),
    ]


def _raw_students() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeUnique(column="student_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="student_id"),
        # Personal data never reaches the warehouse: exactly these columns, no name, email, birth date.
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[
                "student_id",
                "country",
                "created_at",
                "updated_at",
                "email_hash",
                "_snapshot_at",
            ],
            exact_match=True,
        ),
        gxe.ExpectColumnValuesToMatchRegex(column="email_hash", regex=r"^[0-9a-f]{64}$"),
    ]


def _raw_enrollments() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeUnique(column="enrollment_id"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["student_id", "course_id"]),
        gxe.ExpectColumnValuesToBeInSet(
            column="status", value_set=["active", "completed", "withdrawn"]
        ),
        gxe.ExpectColumnValuesToBeBetween(column="final_score", min_value=0, max_value=100),
    ]


def _raw_courses() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToBeUnique(column="course_id"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="ends_on", column_B="starts_on", or_equal=True
        ),
    ]


def _student_course() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["student_id", "course_id", "as_of_date"]),
        gxe.ExpectColumnValuesToNotBeNull(column="as_of_date"),
        gxe.ExpectColumnValuesToBeInSet(column="label_dropout", value_set=[0, 1]),
        gxe.ExpectColumnValuesToBeBetween(column="label_final_score", min_value=0, max_value=100),
        gxe.ExpectColumnValuesToBeBetween(
            column="f_course_elapsed_share", min_value=0, max_value=1
        ),
        gxe.ExpectColumnValuesToBeBetween(column="f_share_correct", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="f_n_events", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="f_days_since_last_active", min_value=0),
        gxe.ExpectColumnValuesToNotBeNull(column="f_n_events"),
        # no label is known before its row's as-of date (that would be leakage)
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="label_observed_on",
            column_B="as_of_date",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
    ]


def _student_topic() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["student_id", "course_id", "topic_id", "as_of_date"]
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="f_share_correct_smoothed", min_value=0, max_value=1
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="label_next_correct_share", min_value=0, max_value=1
        ),
        gxe.ExpectColumnValuesToBeBetween(column="label_next_n", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="f_n_answers", min_value=0),
    ]


def _chapter_transitions() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeUnique(column="transition_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="from_chapter_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="to_chapter_id"),
        gxe.ExpectColumnValuesToBeBetween(column="from_position", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="to_position", min_value=1),
    ]


def _question_difficulty() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeUnique(column="question_id"),
        gxe.ExpectColumnValuesToBeBetween(column="p_correct", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="n_answers", min_value=0),
        gxe.ExpectColumnValuesToNotBeNull(column="f_difficulty_logit"),
    ]


SUITES: dict[str, list[TableCheck]] = {
    "raw_events": [TableCheck("raw", "", "events", _raw_events)],
    "raw_oltp": [
        TableCheck("raw", "", "oltp_students", _raw_students),
        TableCheck("raw", "", "oltp_enrollments", _raw_enrollments),
        TableCheck("raw", "", "oltp_courses", _raw_courses),
    ],
    "features_student_course": [
        TableCheck("dbt", "features", "student_course_asof", _student_course)
    ],
    "features_student_topic": [TableCheck("dbt", "features", "student_topic_asof", _student_topic)],
    "features_chapter_transitions": [
        TableCheck("dbt", "features", "chapter_transitions", _chapter_transitions)
    ],
    "features_question_difficulty": [
        TableCheck("dbt", "features", "question_difficulty", _question_difficulty)
    ],
}
