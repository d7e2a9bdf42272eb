"""Reference data the jobs look events up against: questions' reading times, quizzes' pass
marks, courses' dates and teachers, live classes' schedules.

``lms stream run`` exports it (from the OLTP database, or a simulation's OLTP files) into one JSON
file before launching the jobs; the jobs load it once per worker. Without it the jobs still run,
and say what they cannot judge (no reading time: no fast-answer signal for that question).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any


def parse_instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso_ms(ms: int | float) -> str:
    """Epoch milliseconds as the ISO-8601 UTC text every document uses."""
    moment = datetime.fromtimestamp(ms / 1000.0, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Reference:
    courses: dict[str, dict[str, Any]] = field(default_factory=dict)
    questions: dict[str, dict[str, Any]] = field(default_factory=dict)
    quizzes: dict[str, dict[str, Any]] = field(default_factory=dict)
    live_classes: dict[str, dict[str, Any]] = field(default_factory=dict)
    chapter_topics: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> Reference:
        if path is None:
            return cls()
        data = json.loads(Path(path).read_text())
        return cls(
            courses=data.get("courses", {}),
            questions=data.get("questions", {}),
            quizzes=data.get("quizzes", {}),
            live_classes=data.get("live_classes", {}),
            chapter_topics=data.get("chapter_topics", {}),
        )

    def reading_time_s(self, question_id: str | None) -> float | None:
        question = self.questions.get(question_id or "")
        return float(question["reading_time_s"]) if question else None

    def pass_pct(self, quiz_id: str | None, default: float) -> float:
        quiz = self.quizzes.get(quiz_id or "")
        value = quiz.get("pass_pct") if quiz else None
        return float(value) if value is not None else default

    def teacher_ids(self, course_id: str | None) -> list[str]:
        course = self.courses.get(course_id or "")
        return list(course.get("teacher_ids", [])) if course else []

    def course_running(self, course_id: str | None, at: datetime) -> bool:
        """True while the course runs at ``at``; unknown courses count as running."""
        course = self.courses.get(course_id or "")
        if not course:
            return True
        day = at.astimezone(UTC).date()
        return (
            date.fromisoformat(course["starts_on"]) <= day <= date.fromisoformat(course["ends_on"])
        )

    def class_schedule(self, live_class_id: str | None) -> tuple[int, int] | None:
        """(starts, ends) in epoch ms, when the class is known."""
        lc = self.live_classes.get(live_class_id or "")
        if not lc:
            return None
        start = parse_instant(lc["starts_at"]).timestamp() * 1000
        end = parse_instant(lc["ends_at"]).timestamp() * 1000
        return int(start), int(end)
