"""Configuration of the streaming jobs, from the same ``LMS_*`` variables as the platform.

The streaming environment cannot import ``lms.settings`` (it has its own pins and no pydantic), so
the few names it needs are read here with the same defaults. Every detection threshold is a
variable: schools tune them without a code change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACT_SCHEMA = REPO_ROOT / "contract" / "v1" / "lms-event.schema.json"


class ConfigError(ValueError):
    """A variable has a value the jobs cannot use; the message names it."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _num(name: str, default: float) -> float:
    text = _env(name, str(default))
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number") from None


def _int(name: str, default: int) -> int:
    value = _num(name, default)
    if value != int(value) or value < 0:
        raise ConfigError(f"{name}={value!r} must be a whole number >= 0")
    return int(value)


@dataclass(frozen=True)
class Thresholds:
    """When a signal fires. Each alert stores the values it was judged with (its evidence)."""

    # An answer is "fast" below this share of the question's reading time.
    fast_answer_ratio: float = 0.25
    # An attempt is flagged with at least this many fast answers ...
    fast_answer_min: int = 3
    # ... when at least this share of the fast answers is correct.
    fast_answer_accuracy: float = 0.8
    # tab_hidden events during one quiz attempt that make an alert.
    tab_hidden_min: int = 3
    # While a quiz attempt runs, this many views of a quiz page of the same course from another
    # session on another network (a second device open on the quiz: someone helping).
    concurrent_views_min: int = 1
    # A failed quiz (score below the quiz's pass mark, or this default) triggers a review.
    default_pass_pct: float = 60.0
    # No event for this many days in a running course: a re-engagement trigger for the teacher.
    idle_days: float = 7.0

    @classmethod
    def from_env(cls) -> Thresholds:
        return cls(
            fast_answer_ratio=_num("LMS_STREAM_FAST_ANSWER_RATIO", cls.fast_answer_ratio),
            fast_answer_min=_int("LMS_STREAM_FAST_ANSWER_MIN", cls.fast_answer_min),
            fast_answer_accuracy=_num("LMS_STREAM_FAST_ANSWER_ACCURACY", cls.fast_answer_accuracy),
            tab_hidden_min=_int("LMS_STREAM_TAB_HIDDEN_MIN", cls.tab_hidden_min),
            concurrent_views_min=_int("LMS_STREAM_CONCURRENT_VIEWS_MIN", cls.concurrent_views_min),
            default_pass_pct=_num("LMS_STREAM_DEFAULT_PASS_PCT", cls.default_pass_pct),
            idle_days=_num("LMS_STREAM_IDLE_DAYS", cls.idle_days),
        )


@dataclass(frozen=True)
class StreamConfig:
    kafka_bootstrap: str
    topic: str
    group_id: str
    es_url: str
    index_prefix: str
    checkpoint_dir: str
    checkpoint_interval_s: int
    # Watermark = highest event time seen minus this: events later than that are "late".
    out_of_orderness_s: int
    # A partition without events for this long stops holding the watermark back.
    idle_partition_s: int
    active_window_s: int
    active_slide_s: int
    # A presence (last-seen) document is rewritten at most once per this many seconds of event
    # time per student and course; a student's first event is written at once.
    presence_resolution_s: int
    reference_path: Path | None
    jars: tuple[str, ...]
    parallelism: int
    # How long finished-state keys (late counters, attendance) are kept.
    state_ttl_h: int
    thresholds: Thresholds = field(default_factory=Thresholds)

    @classmethod
    def from_env(cls) -> StreamConfig:
        kafka = _env("LMS_KAFKA_BOOTSTRAP", f"127.0.0.1:{_env('LMS_KAFKA_PORT', '19092')}")
        es = _env("LMS_ES_URL", f"http://127.0.0.1:{_env('LMS_ES_PORT', '19200')}")
        state = Path(_env("LMS_STATE_DIR", str(REPO_ROOT / ".state")))
        prefix = _env("LMS_STREAM_INDEX_PREFIX", "lms-live-")
        if not prefix.startswith("lms-live-") or prefix != prefix.lower():
            raise ConfigError(
                f"LMS_STREAM_INDEX_PREFIX={prefix!r} must start with 'lms-live-' and be lowercase"
            )
        reference = _env("LMS_STREAM_REFERENCE", "")
        jars = tuple(j for j in _env("LMS_STREAM_JARS", "").split(",") if j)
        return cls(
            kafka_bootstrap=kafka,
            topic=_env("LMS_KAFKA_TOPIC_RAW", "lms.events.raw.v1"),
            group_id=_env("LMS_STREAM_GROUP_ID", "lms-stream"),
            es_url=es,
            index_prefix=prefix,
            checkpoint_dir=_env(
                "LMS_STREAM_CHECKPOINT_DIR", (state / "checkpoints" / "stream").as_uri()
            ),
            checkpoint_interval_s=_int("LMS_STREAM_CHECKPOINT_INTERVAL_S", 10),
            out_of_orderness_s=_int("LMS_STREAM_OUT_OF_ORDERNESS_S", 30),
            idle_partition_s=_int("LMS_STREAM_IDLE_PARTITION_S", 5),
            active_window_s=_int("LMS_STREAM_ACTIVE_WINDOW_S", 300),
            active_slide_s=_int("LMS_STREAM_ACTIVE_SLIDE_S", 30),
            presence_resolution_s=_int("LMS_STREAM_PRESENCE_RESOLUTION_S", 10),
            reference_path=Path(reference) if reference else None,
            jars=jars,
            parallelism=max(1, _int("LMS_STREAM_PARALLELISM", 1)),
            state_ttl_h=_int("LMS_STREAM_STATE_TTL_H", 48),
            thresholds=Thresholds.from_env(),
        )

    def index(self, name: str) -> str:
        return f"{self.index_prefix}{name}"
