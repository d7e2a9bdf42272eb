"""The school's catalogue: courses with their chapters, topics, videos, quizzes (with IRT-calibrated
questions), assignments and live classes, and the teachers who give them.

The catalogue is small (thousands of rows), so it is built in the main process with plain Python
structures that pickle cheaply to the workers, and turned into tables for the OLTP and truth files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from lms.simulator.config import SimulationConfig
from lms.simulator.names import (
    COURSE_ADJECTIVES,
    FIRST_NAMES,
    LAST_NAMES,
    SUBJECTS,
    TOPIC_WORDS,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
LEVELS = ("beginner", "intermediate", "advanced")


def day_start_ms(cfg: SimulationConfig, day: int) -> int:
    start = datetime(cfg.start.year, cfg.start.month, cfg.start.day, tzinfo=UTC)
    return int((start + timedelta(days=day)).timestamp() * 1000)


@dataclass(frozen=True)
class Question:
    question_id: str
    topic_index: int  # global topic index (column of the ability matrix)
    position: int
    reading_time_s: float
    max_points: float
    difficulty: float  # IRT b
    discrimination: float  # IRT a
    correct_option: str


@dataclass(frozen=True)
class Quiz:
    quiz_id: str
    title: str
    time_limit_s: int | None
    pass_pct: float
    questions: tuple[Question, ...]

    @property
    def max_score(self) -> float:
        return float(sum(q.max_points for q in self.questions))


@dataclass(frozen=True)
class Video:
    video_id: str
    title: str
    duration_s: int


@dataclass(frozen=True)
class Assignment:
    assignment_id: str
    title: str
    due_ms: int
    max_points: float


@dataclass(frozen=True)
class Chapter:
    chapter_id: str
    position: int  # 1-based
    title: str
    release_ms: int  # when the course schedule opens it; students cannot work ahead of it
    topic_indexes: tuple[int, ...]
    videos: tuple[Video, ...]
    quiz: Quiz
    assignment: Assignment | None


@dataclass(frozen=True)
class LiveClass:
    live_class_id: str
    teacher_id: str
    title: str
    starts_ms: int
    ends_ms: int
    day: int


@dataclass(frozen=True)
class Course:
    course_id: str
    code: str
    title: str
    subject: str
    level: str
    start_day: int  # days after the simulation start
    end_day: int  # inclusive; may lie beyond the simulated days
    chapters: tuple[Chapter, ...]
    live_classes: tuple[LiveClass, ...]
    popularity: float
    difficulty_shift: float


@dataclass(frozen=True)
class Topic:
    topic_id: str
    course_id: str
    chapter_id: str
    name: str


@dataclass
class Catalog:
    courses: tuple[Course, ...]
    topics: tuple[Topic, ...]
    teachers: list[tuple[str, str, str]]  # (teacher_id, full_name, email)
    course_teachers: list[tuple[str, str, str]]  # (course_id, teacher_id, role)
    course_dates: list[tuple[str, str]] = field(default_factory=list)  # ISO starts_on, ends_on

    @property
    def n_topics(self) -> int:
        return len(self.topics)


def build_catalog(cfg: SimulationConfig, rng: np.random.Generator) -> Catalog:
    n_teachers = max(2, round(cfg.courses * 1.5))
    teachers = []
    for t in range(n_teachers):
        first = FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))]
        last = LAST_NAMES[int(rng.integers(len(LAST_NAMES)))]
        teachers.append(
            (
                f"tch_{t + 1:03d}",
                f"{first} {last}",
                f"{first}.{last}.t{t + 1}@faculty.example".lower(),
            )
        )

    courses: list[Course] = []
    topics: list[Topic] = []
    course_teachers: list[tuple[str, str, str]] = []
    course_dates: list[tuple[str, str]] = []
    # Courses start in the first quarter of the term and last 6 to 16 weeks, so a long enough
    # simulation sees some complete and others still running at the end.
    latest_start = max(0, cfg.days // 4)
    for c in range(cfg.courses):
        cnum = c + 1
        course_id = f"crs_{cnum:03d}"
        subject, code_prefix = SUBJECTS[c % len(SUBJECTS)]
        level = LEVELS[int(rng.integers(3))]
        start_day = 0 if c == 0 else int(rng.integers(0, latest_start + 1))
        weeks = int(rng.integers(6, 17))
        end_day = start_day + weeks * 7 - 1
        n_chapters = int(rng.integers(8, 15))
        adjective = COURSE_ADJECTIVES[int(rng.integers(len(COURSE_ADJECTIVES)))]
        title = f"{adjective} {subject}"
        code = f"{code_prefix}{100 * (1 + LEVELS.index(level)) + cnum}"
        difficulty_shift = {"beginner": -0.4, "intermediate": 0.0, "advanced": 0.4}[level]
        course_start_ms = day_start_ms(cfg, start_day)
        span_ms = (end_day - start_day + 1) * DAY_MS
        chapters: list[Chapter] = []
        for p in range(1, n_chapters + 1):
            chapter_id = f"chp_{cnum:03d}_{p:02d}"
            # Chapter p opens at its share of the course span, from 9:00 on that day.
            release_ms = course_start_ms + (p - 1) * span_ms // n_chapters
            release_ms = release_ms - release_ms % DAY_MS + 9 * HOUR_MS
            topic_idx: list[int] = []
            for k in range(1, int(rng.integers(1, 4)) + 1):
                word = TOPIC_WORDS[int(rng.integers(len(TOPIC_WORDS)))]
                topic_idx.append(len(topics))
                topics.append(
                    Topic(
                        f"top_{cnum:03d}_{p:02d}_{k}",
                        course_id,
                        chapter_id,
                        f"{subject} {p}.{k}: {word}",
                    )
                )
            videos = tuple(
                Video(
                    f"vid_{cnum:03d}_{p:02d}_{v}",
                    f"{subject} {p}.{v} lecture",
                    int(rng.integers(120, 1500)),
                )
                for v in range(1, int(rng.integers(1, 4)) + 1)
            )
            # Later chapters are harder; the course level shifts the whole scale.
            chapter_shift = difficulty_shift + 0.6 * (p - 1) / max(1, n_chapters - 1) - 0.3
            questions = []
            for q in range(1, int(rng.integers(5, 11)) + 1):
                questions.append(
                    Question(
                        question_id=f"qst_{cnum:03d}_{p:02d}_{q:02d}",
                        topic_index=topic_idx[int(rng.integers(len(topic_idx)))],
                        position=q,
                        reading_time_s=float(round(rng.uniform(8, 75), 1)),
                        max_points=float(rng.choice([1.0, 1.0, 2.0, 3.0])),
                        difficulty=float(round(rng.normal(chapter_shift, 0.9), 3)),
                        discrimination=float(round(np.clip(rng.lognormal(0.1, 0.35), 0.3, 3.0), 3)),
                        correct_option="ABCD"[int(rng.integers(4))],
                    )
                )
            quiz = Quiz(
                quiz_id=f"quz_{cnum:03d}_{p:02d}",
                title=f"{subject} chapter {p} quiz",
                time_limit_s=None if rng.random() < 0.3 else int(rng.choice([600, 900, 1200])),
                pass_pct=float(rng.choice([50.0, 60.0, 70.0])),
                questions=tuple(questions),
            )
            assignment = None
            if p % 3 == 0:
                assignment = Assignment(
                    f"asg_{cnum:03d}_{p:02d}",
                    f"{subject} assignment {p // 3}",
                    release_ms + 7 * DAY_MS + 14 * HOUR_MS,  # due a week later, 23:00
                    float(rng.choice([10.0, 20.0, 100.0])),
                )
            chapters.append(
                Chapter(
                    chapter_id,
                    p,
                    f"Chapter {p}: {TOPIC_WORDS[int(rng.integers(len(TOPIC_WORDS)))]}",
                    release_ms,
                    tuple(topic_idx),
                    videos,
                    quiz,
                    assignment,
                )
            )
        lead, assistant = (int(x) for x in rng.choice(n_teachers, size=2, replace=False))
        course_teachers.append((course_id, teachers[lead][0], "lead"))
        if rng.random() < 0.6:
            course_teachers.append((course_id, teachers[assistant][0], "assistant"))
        # A weekly live class on a fixed weekday and hour, for the whole course.
        live: list[LiveClass] = []
        weekday_offset = int(rng.integers(0, 5))
        hour = int(rng.integers(14, 20))
        length_min = int(rng.choice([45, 60, 90]))
        for w, d in enumerate(range(start_day + weekday_offset, end_day + 1, 7)):
            starts = day_start_ms(cfg, d) + hour * HOUR_MS
            live.append(
                LiveClass(
                    f"lcl_{cnum:03d}_{w + 1:02d}",
                    teachers[lead][0],
                    f"{title}: live session {w + 1}",
                    starts,
                    starts + length_min * 60_000,
                    d,
                )
            )
        courses.append(
            Course(
                course_id,
                code,
                title,
                subject,
                level,
                start_day,
                end_day,
                tuple(chapters),
                tuple(live),
                float(rng.uniform(0.5, 1.5)),
                difficulty_shift,
            )
        )
        starts_on = cfg.start + timedelta(days=start_day)
        ends_on = cfg.start + timedelta(days=end_day)
        course_dates.append((starts_on.isoformat(), ends_on.isoformat()))
    return Catalog(tuple(courses), tuple(topics), teachers, course_teachers, course_dates)


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


def catalog_tables(catalog: Catalog) -> dict[str, pd.DataFrame]:
    """The catalogue as OLTP tables (columns as in the spec's schema `lms`)."""
    courses, chapters, topics, videos, quizzes, questions, assignments, live = (
        [] for _ in range(8)
    )
    for course, (starts_on, ends_on) in zip(catalog.courses, catalog.course_dates, strict=True):
        courses.append(
            (
                course.course_id,
                course.code,
                course.title,
                course.subject,
                course.level,
                starts_on,
                ends_on,
            )
        )
        for ch in course.chapters:
            chapters.append((ch.chapter_id, course.course_id, ch.position, ch.title))
            for v in ch.videos:
                videos.append((v.video_id, ch.chapter_id, v.title, v.duration_s))
            qz = ch.quiz
            quizzes.append((qz.quiz_id, ch.chapter_id, qz.title, qz.time_limit_s, qz.pass_pct))
            for q in qz.questions:
                questions.append(
                    (
                        q.question_id,
                        qz.quiz_id,
                        catalog.topics[q.topic_index].topic_id,
                        q.position,
                        q.reading_time_s,
                        q.max_points,
                    )
                )
            if ch.assignment is not None:
                a = ch.assignment
                assignments.append(
                    (a.assignment_id, ch.chapter_id, a.title, _ts(a.due_ms), a.max_points)
                )
        for lc in course.live_classes:
            live.append(
                (
                    lc.live_class_id,
                    course.course_id,
                    lc.teacher_id,
                    lc.title,
                    _ts(lc.starts_ms),
                    _ts(lc.ends_ms),
                )
            )
    for t in catalog.topics:
        topics.append((t.topic_id, t.course_id, t.chapter_id, t.name))

    def frame(rows: Sequence[tuple[object, ...]], cols: list[str]) -> pd.DataFrame:
        return pd.DataFrame.from_records(rows, columns=cols)

    quizzes_df = frame(quizzes, ["quiz_id", "chapter_id", "title", "time_limit_s", "pass_pct"])
    quizzes_df["time_limit_s"] = quizzes_df["time_limit_s"].astype("Int64")
    return {
        "teachers": frame(catalog.teachers, ["teacher_id", "full_name", "email"]),
        "courses": frame(
            courses, ["course_id", "code", "title", "subject", "level", "starts_on", "ends_on"]
        ),
        "chapters": frame(chapters, ["chapter_id", "course_id", "position", "title"]),
        "topics": frame(topics, ["topic_id", "course_id", "chapter_id", "name"]),
        "videos": frame(videos, ["video_id", "chapter_id", "title", "duration_s"]),
        "quizzes": quizzes_df,
        "questions": frame(
            questions,
            ["question_id", "quiz_id", "topic_id", "position", "reading_time_s", "max_points"],
        ),
        "assignments": frame(
            assignments, ["assignment_id", "chapter_id", "title", "due_at", "max_points"]
        ),
        "live_classes": frame(
            live, ["live_class_id", "course_id", "teacher_id", "title", "starts_at", "ends_at"]
        ),
        "course_teachers": frame(catalog.course_teachers, ["course_id", "teacher_id", "role"]),
    }


def question_truth(catalog: Catalog) -> pd.DataFrame:
    rows = []
    for course in catalog.courses:
        for ch in course.chapters:
            for q in ch.quiz.questions:
                rows.append(
                    (
                        q.question_id,
                        ch.quiz.quiz_id,
                        course.course_id,
                        catalog.topics[q.topic_index].topic_id,
                        q.difficulty,
                        q.discrimination,
                        q.reading_time_s,
                        q.correct_option,
                    )
                )
    return pd.DataFrame.from_records(
        rows,
        columns=[
            "question_id",
            "quiz_id",
            "course_id",
            "topic_id",
            "difficulty_b",
            "discrimination_a",
            "reading_time_s",
            "correct_option",
        ],
    )
