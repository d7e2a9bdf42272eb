"""The steps the flows run, as plain functions: train one model, train all, register, score.

Prefect adds retries, logs and artifacts around these; they also run without it (tests, bench,
a notebook).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lms.settings import Settings
from ml import data, truth
from ml.models import dropout, final_score, next_chapter, quiz_difficulty, topic_mastery
from ml.splits import apply_split
from ml.training import TrainingResult


@dataclass
class TrainingData:
    """The marts, loaded once per flow run and shared by the models."""

    student_course: pd.DataFrame
    student_topic: pd.DataFrame
    transitions: pd.DataFrame
    questions: pd.DataFrame
    answers: pd.DataFrame
    truth: dict[str, pd.DataFrame] = field(default_factory=dict)

    @classmethod
    def load(
        cls, settings: Settings, *, schema: str | None = None, truth_dir: Path | None = None
    ) -> TrainingData:
        return cls(
            data.student_course(settings, schema),
            data.student_topic(settings, schema),
            data.chapter_transitions(settings, schema),
            data.question_difficulty(settings, schema),
            data.answers(settings),
            truth.load(truth_dir) if truth_dir else {},
        )


def train_model(
    name: str, td: TrainingData, *, mastery: tuple[TrainingResult, str | None] | None = None
) -> TrainingResult:
    """Train and evaluate one model; ``quiz_difficulty`` needs the topic-mastery result (and its
    registered version) it builds on."""
    if name in ("dropout", "final_score"):
        module = dropout if name == "dropout" else final_score
        result = module.train(td.student_course)
        if "students" in td.truth:
            test = apply_split(td.student_course, result.split)[2]
            test = test[test[module.LABEL].notna()]
            check = truth.dropout if name == "dropout" else truth.final_score
            result.truth = check(result.bundle, test, td.truth["students"])
        return result
    if name == "topic_mastery":
        result = topic_mastery.train(td.student_topic)
        if "topic_ability" in td.truth:
            test = apply_split(td.student_topic, result.split)[2]
            result.truth = truth.topic_mastery(result.bundle, test, td.truth["topic_ability"])
        return result
    if name == "next_chapter":
        return next_chapter.train(td.transitions)
    if name == "quiz_difficulty":
        if mastery is None:
            raise ValueError("quiz_difficulty needs the topic_mastery result")
        mres, mversion = mastery
        result = quiz_difficulty.train(
            td.questions, td.answers, mres.bundle, mversion, td.student_topic, mres.split
        )
        if "topic_ability" in td.truth and "questions" in td.truth:
            asof = td.student_topic[
                pd.to_datetime(td.student_topic["as_of_date"])
                <= pd.Timestamp(mres.split.test_start)
            ]
            asof = asof[
                pd.to_datetime(asof["as_of_date"]) == pd.to_datetime(asof["as_of_date"]).max()
            ]
            m = asof[["student_id", "course_id", "topic_id"]].assign(
                mastery_p=mres.bundle.predict(asof)["probability"].to_numpy()
            )
            fixed = str(result.data["one_band_for_all"])
            result.truth = truth.quiz_policy(
                result.bundle, m, td.truth["topic_ability"], td.truth["questions"], fixed
            )
        return result
    raise ValueError(f"unknown model {name!r}")


def metric_rows(results: list[TrainingResult]) -> list[dict[str, Any]]:
    """One row per model: the primary metric for the model and its strongest baseline."""
    return [r.summary() for r in results]
