"""Response and request bodies of the prediction API (they document the OpenAPI spec)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
IdStr = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class Factor(BaseModel):
    feature: str = Field(examples=["f_n_active_days_last_7"])
    value: float | None = Field(description="The feature's value (null: unknown)")
    contribution: float = Field(description="SHAP value (log-odds); positive raises the risk")
    direction: Literal["raises", "lowers"]


class Answer(BaseModel):
    student_id: str = Field(examples=["stu_0000042"])
    course_id: str = Field(examples=["crs_001"])
    enrollment_status: str = Field(examples=["active"])
    as_of_date: str | None = Field(description="Date the features describe (events before it)")
    model_version: str = Field(examples=["20261124T201500123456Z-a1b2c3"])
    cold_start: bool = Field(description="True: too little history; see `reason`")
    reason: str | None = None


class Realtime(BaseModel):
    last_seen_at: str | None = Field(description="Last activity the live jobs saw (null: none)")
    active_now: bool | None = Field(description="Seen in the last 5 minutes (null: unknown)")


class DropoutRisk(Answer):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "student_id": "stu_0000042",
                "course_id": "crs_001",
                "enrollment_status": "active",
                "as_of_date": "2026-03-02",
                "features_updated_at": "2026-03-02T04:00:00+00:00",
                "model_version": "20261124T201500123456Z-a1b2c3",
                "cold_start": False,
                "reason": None,
                "probability": 0.62,
                "risk_band": "high",
                "risk_band_thresholds": {"medium": 0.2, "high": 0.5},
                "top_factors": [
                    {
                        "feature": "f_days_since_last_active",
                        "value": 12.0,
                        "contribution": 0.91,
                        "direction": "raises",
                    }
                ],
            }
        }
    )
    features_updated_at: str | None = None
    probability: float | None = Field(ge=0, le=1, description="null on a cold start")
    risk_band: Literal["low", "medium", "high", "unknown"]
    risk_band_thresholds: dict[str, float] | None = None
    top_factors: list[Factor]
    realtime: Realtime | None = Field(
        default=None, description="Live signal from the streaming jobs (not a model input)"
    )


class ExamScore(Answer):
    features_updated_at: str | None = None
    predicted_score: float | None = Field(description="Final score 0-100 (null on a cold start)")
    low: float | None = Field(description="Lower end of the prediction interval")
    high: float | None = Field(description="Upper end of the prediction interval")
    interval_coverage: float | None = Field(examples=[0.8])


class Topic(BaseModel):
    topic_id: str
    rank: int = Field(description="1 = weakest")
    mastery: float = Field(ge=0, le=1, description="P(correct) on the topic's next questions")
    is_weak: bool
    answers_so_far: int | None


class WeakTopics(Answer):
    weak_threshold: float | None
    topics: list[Topic]


class Question(BaseModel):
    question_id: str
    band: str = Field(description="The question's difficulty band")
    expected_success: float


class TopicDifficulty(BaseModel):
    topic_id: str
    mastery: float
    recommended_band: str = Field(examples=["medium"])
    expected_success: float
    difficulty_low: float
    difficulty_high: float
    suggested_questions: list[Question]


class QuizDifficulty(Answer):
    mastery_model_version: str
    target_success: float
    topics: list[TopicDifficulty]


class Chapter(BaseModel):
    chapter_id: str
    rank: int
    score: float | None = Field(description="Ranker score (null on a cold start)")
    position: int | None
    reasons: list[str]


class NextChapters(Answer):
    as_of_date: str | None = None
    current_chapter_id: str | None
    chapters: list[Chapter]


class AtRiskStudent(BaseModel):
    student_id: str
    probability: float
    risk_band: Literal["low", "medium", "high"]
    as_of_date: str | None
    top_factors: list[Factor]


class AtRisk(BaseModel):
    course_id: str
    model_version: str
    as_of_date: str | None
    n_scored: int = Field(description="Students of the course with a feature row")
    min_band: str
    students: list[AtRiskStudent]


class Band(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class BatchKind(StrEnum):
    dropout_risk = "dropout-risk"
    exam_score = "exam-score"
    weak_topics = "weak-topics"
    next_chapters = "next-chapters"
    quiz_difficulty = "quiz-difficulty"


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"student_ids": ["stu_0000001", "stu_0000002"], "k": 3}},
    )
    student_ids: list[IdStr] = Field(min_length=1, max_length=1000)
    k: int = Field(default=5, ge=1, le=50, description="For weak-topics and next-chapters")


class BatchItem(BaseModel):
    student_id: str
    status: int = Field(description="200, or 404 for an unknown student / enrollment")
    result: dict | None = None
    error: str | None = None


class BatchResponse(BaseModel):
    course_id: str
    prediction: BatchKind
    model_versions: dict[str, str]
    results: list[BatchItem]
