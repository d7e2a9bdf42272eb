"""The event contract v1 as pydantic models: the single source of truth.

`contract/v1/lms-event.schema.json` is exported from these models (``lms contract export``) and a
unit test fails when the committed file differs, so other languages read the same contract.

Models are strict (no "5" for 5, no 1 for true) because JSON Schema is: anything the collector
accepts, a JSON Schema consumer downstream must accept too.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from lms.contract.fields import (
    ID_PATTERN,
    INTEGRAL_FLOAT_AS_INT,
    SCHEMA_VERSION_PATTERN,
    Id,
    JsonInt,
    UtcTimestamp,
    Uuid,
)

SCHEMA_VERSION = "1.0"

NonNegative = Annotated[float, Field(ge=0)]
# Counts stay within INT32 so every downstream store (Parquet, BigQuery, PostgreSQL integer)
# holds them exactly; JSON itself would allow 2**70.
INT32_MAX = 2_147_483_647


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


# --- payloads -------------------------------------------------------------------------------


class LoginPayload(_Strict):
    """A student signed in; starts a session."""

    method: Literal["password", "sso", "token"]


class LogoutPayload(_Strict):
    """A session ended, by the student or by inactivity."""

    reason: Literal["user", "timeout"]


class PageViewPayload(_Strict):
    """A page of the LMS was opened."""

    page_type: Literal[
        "course_home", "chapter", "quiz", "assignment", "video", "live_class", "forum", "other"
    ]
    chapter_id: Id | None = Field(description="Chapter the page belongs to; null outside chapters.")
    path: str = Field(min_length=1, max_length=512, description="LMS-relative path of the page.")


class ScrollEventPayload(_Strict):
    """Reading progress on a chapter page, sent when the student scrolls."""

    chapter_id: Id
    depth_pct: float = Field(ge=0, le=100, description="Deepest point reached, in % of the page.")
    visible_s: NonNegative = Field(description="Seconds the page has been visible so far.")


class VideoPlayPayload(_Strict):
    """Playback started or resumed."""

    video_id: Id
    chapter_id: Id
    position_s: NonNegative = Field(description="Playhead position in seconds.")


class VideoPausePayload(_Strict):
    """Playback paused."""

    video_id: Id
    chapter_id: Id
    position_s: NonNegative = Field(description="Playhead position in seconds.")
    watched_s: NonNegative = Field(description="Seconds actually played since the last play.")


class VideoSeekPayload(_Strict):
    """The student moved the playhead."""

    video_id: Id
    chapter_id: Id
    from_s: NonNegative
    to_s: NonNegative


class VideoCompletePayload(_Strict):
    """Playback reached the end of the video."""

    video_id: Id
    chapter_id: Id
    duration_s: float = Field(gt=0, description="Length of the video in seconds.")
    watched_s: NonNegative = Field(description="Seconds actually played in total.")


class QuizStartPayload(_Strict):
    """A quiz attempt started."""

    quiz_id: Id
    attempt_id: Id
    chapter_id: Id


class QuestionAnswerPayload(_Strict):
    """One question of an attempt was answered."""

    quiz_id: Id
    attempt_id: Id
    question_id: Id
    topic_id: Id
    answer: str = Field(max_length=1000, description="The answer as entered; may be empty.")
    is_correct: bool
    points: NonNegative
    time_taken_s: NonNegative = Field(description="Seconds spent on the question.")


class QuizSubmitPayload(_Strict):
    """A quiz attempt was submitted and graded."""

    quiz_id: Id
    attempt_id: Id
    chapter_id: Id
    score: NonNegative
    max_score: float = Field(gt=0)
    n_questions: JsonInt = Field(ge=1, le=INT32_MAX)
    n_correct: JsonInt = Field(ge=0, le=INT32_MAX)
    duration_s: NonNegative = Field(description="Seconds from quiz_start to submit.")


class AssignmentSubmitPayload(_Strict):
    """An assignment was handed in."""

    assignment_id: Id
    chapter_id: Id
    is_late: bool = Field(description="Submitted after the assignment's due_at.")
    word_count: JsonInt = Field(ge=0, le=INT32_MAX)
    attachment_count: JsonInt = Field(ge=0, le=INT32_MAX)


class LiveClassJoinPayload(_Strict):
    """The student joined a live class."""

    live_class_id: Id


class LiveClassLeavePayload(_Strict):
    """The student left a live class."""

    live_class_id: Id


TabContext = Literal["quiz", "video", "page", "live_class", "other"]


class TabHiddenPayload(_Strict):
    """The LMS tab lost visibility (the student switched tab or window)."""

    context: TabContext = Field(description="What the hidden tab was showing.")
    quiz_id: Id | None = Field(description="Set when context is quiz.")
    attempt_id: Id | None = Field(description="Set when context is quiz.")


class TabVisiblePayload(_Strict):
    """The LMS tab became visible again."""

    context: TabContext = Field(description="What the tab is showing.")
    quiz_id: Id | None = Field(description="Set when context is quiz.")
    attempt_id: Id | None = Field(description="Set when context is quiz.")
    hidden_s: NonNegative = Field(description="Seconds the tab was hidden.")


class FeedbackPayload(_Strict):
    """The student rated or commented on something."""

    target_type: Literal["course", "chapter", "video", "quiz", "live_class"]
    target_id: Id
    # Constraints before the validator: the other order exports "ge"/"le", which JSON Schema ignores.
    rating: Annotated[int, Field(ge=1, le=5), INTEGRAL_FLOAT_AS_INT] | None = Field(
        description="1 to 5 stars; null for a comment without rating."
    )
    text: str = Field(
        max_length=2000,
        description="Free text. PERSONAL DATA: may contain anything the student typed.",
    )


# --- envelope -------------------------------------------------------------------------------


class Client(_Strict):
    """The device and app that produced the event."""

    device: Literal["desktop", "mobile", "tablet", "other"]
    app_version: str = Field(min_length=1, max_length=32)
    os: str | None = Field(default=None, min_length=1, max_length=32)
    network_id: str | None = Field(
        default=None,
        description="Pseudonymous id of the client's network address computed by the LMS "
        "(e.g. a salted hash of the IP); never the IP itself.",
    )


class _Envelope(_Strict):
    """Fields every event carries. Subclasses fix event_type and the payload type."""

    event_id: Uuid = Field(description="Unique per event; producers retry with the same id.")
    # Declared here only to fix the field order of dumps; every subclass narrows it to a Literal.
    event_type: str
    schema_version: str = Field(
        pattern=SCHEMA_VERSION_PATTERN,
        description="Contract version the producer wrote, 1.<minor>; this release writes 1.0.",
    )
    occurred_at: UtcTimestamp = Field(description="When it happened, by the client's clock.")
    received_at: UtcTimestamp | None = Field(
        default=None,
        description="Stamped by the collector on receipt; a client-sent value is overwritten.",
    )
    student_id: Id = Field(description="Pseudonymous student id (OLTP lms.students.student_id).")
    course_id: Id | None = Field(description="Course in context; null only for login and logout.")
    session_id: Id = Field(description="One LMS login session.")
    client: Client
    payload: BaseModel


class _CourseEnvelope(_Envelope):
    course_id: Id = Field(description="Course in context.")


class LoginEvent(_Envelope):
    event_type: Literal["login"]
    payload: LoginPayload


class LogoutEvent(_Envelope):
    event_type: Literal["logout"]
    payload: LogoutPayload


class PageViewEvent(_CourseEnvelope):
    event_type: Literal["page_view"]
    payload: PageViewPayload


class ScrollEventEvent(_CourseEnvelope):
    event_type: Literal["scroll_event"]
    payload: ScrollEventPayload


class VideoPlayEvent(_CourseEnvelope):
    event_type: Literal["video_play"]
    payload: VideoPlayPayload


class VideoPauseEvent(_CourseEnvelope):
    event_type: Literal["video_pause"]
    payload: VideoPausePayload


class VideoSeekEvent(_CourseEnvelope):
    event_type: Literal["video_seek"]
    payload: VideoSeekPayload


class VideoCompleteEvent(_CourseEnvelope):
    event_type: Literal["video_complete"]
    payload: VideoCompletePayload


class QuizStartEvent(_CourseEnvelope):
    event_type: Literal["quiz_start"]
    payload: QuizStartPayload


class QuestionAnswerEvent(_CourseEnvelope):
    event_type: Literal["question_answer"]
    payload: QuestionAnswerPayload


class QuizSubmitEvent(_CourseEnvelope):
    event_type: Literal["quiz_submit"]
    payload: QuizSubmitPayload


class AssignmentSubmitEvent(_CourseEnvelope):
    event_type: Literal["assignment_submit"]
    payload: AssignmentSubmitPayload


class LiveClassJoinEvent(_CourseEnvelope):
    event_type: Literal["live_class_join"]
    payload: LiveClassJoinPayload


class LiveClassLeaveEvent(_CourseEnvelope):
    event_type: Literal["live_class_leave"]
    payload: LiveClassLeavePayload


class TabHiddenEvent(_CourseEnvelope):
    event_type: Literal["tab_hidden"]
    payload: TabHiddenPayload


class TabVisibleEvent(_CourseEnvelope):
    event_type: Literal["tab_visible"]
    payload: TabVisiblePayload


class FeedbackEvent(_CourseEnvelope):
    event_type: Literal["feedback"]
    payload: FeedbackPayload


EventModel = (
    LoginEvent
    | LogoutEvent
    | PageViewEvent
    | ScrollEventEvent
    | VideoPlayEvent
    | VideoPauseEvent
    | VideoSeekEvent
    | VideoCompleteEvent
    | QuizStartEvent
    | QuestionAnswerEvent
    | QuizSubmitEvent
    | AssignmentSubmitEvent
    | LiveClassJoinEvent
    | LiveClassLeaveEvent
    | TabHiddenEvent
    | TabVisibleEvent
    | FeedbackEvent
)
LmsEvent = Annotated[EventModel, Field(discriminator="event_type")]

EVENT_MODELS: dict[str, type[_Envelope]] = {
    get_args(cls.model_fields["event_type"].annotation)[0]: cls for cls in get_args(EventModel)
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_MODELS)
PAYLOAD_MODELS: dict[str, type[BaseModel]] = {
    name: cls.model_fields["payload"].annotation  # type: ignore[misc]
    for name, cls in EVENT_MODELS.items()
}
# Events whose course_id may be null (everything else happens inside a course).
COURSELESS_EVENT_TYPES: frozenset[str] = frozenset(
    name for name, cls in EVENT_MODELS.items() if not issubclass(cls, _CourseEnvelope)
)

# Built once: compiling the validator per call would cost more than validating.
EVENT_ADAPTER: TypeAdapter[EventModel] = TypeAdapter(LmsEvent)

__all__ = [
    "COURSELESS_EVENT_TYPES",
    "EVENT_ADAPTER",
    "EVENT_MODELS",
    "EVENT_TYPES",
    "ID_PATTERN",
    "PAYLOAD_MODELS",
    "SCHEMA_VERSION",
    "Client",
    "EventModel",
    "LmsEvent",
]
