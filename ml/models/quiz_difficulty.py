"""Personalised quiz difficulty: the band of question difficulty that keeps a student's expected
success on a topic near a target (70% by default: hard enough to learn from, easy enough not to
discourage).

A Rasch-style composition of two estimates rather than a third learned model: the student's
topic mastery (``topic_mastery`` model, a probability over the topic's typical questions) and each
question's empirical difficulty (``features.question_difficulty``, smoothed share correct). The
expected success on question q of topic t is ``sigmoid(logit(mastery) + e_q - mean_e_t)`` where
``e`` is the question's easiness logit and ``mean_e_t`` the answer-weighted mean over the topic.
Questions are cut into five difficulty bands per course (quintiles); the recommended band is the
one whose median question gives the expected success closest to the target.

Evaluated on answers (``question_answer`` events in the test window, which any LMS sends through
the contract): a policy can only hold success near a target if it predicts success, so the
primary metric is the log loss of the predicted success on each answer, against the baseline of
the question's difficulty alone (the same for every student). Also reported: ``target_gap``, how
far the students' success on the answers in their recommended band was from the target, against
one band for everyone (the band whose overall success is nearest the target).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ml.bundle import ModelBundle
from ml.errors import NotEnoughData
from ml.metrics import classification

TARGET = 0.7
BANDS = ("very_easy", "easy", "medium", "hard", "very_hard")
BASELINE = "question_difficulty_only"
PRIOR_ANSWERS = 4.0  # pseudo-answers at the course's mean share when smoothing p_correct
MIN_ANSWERS = 5  # answers a question needs before it helps place the band edges


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def question_table(questions: pd.DataFrame) -> pd.DataFrame:
    """Per question: smoothed easiness logit, its topic's mean easiness and its difficulty band."""
    q = questions.copy()
    n = q["n_answers"].fillna(0).astype(float)
    course_mean = (q["p_correct"] * n).groupby(q["course_id"]).transform("sum") / n.groupby(
        q["course_id"]
    ).transform("sum").clip(lower=1)
    share = (q["p_correct"].fillna(0) * n + PRIOR_ANSWERS * course_mean.fillna(0.6)) / (
        n + PRIOR_ANSWERS
    )
    q["easiness"] = _logit(share)
    weight = n + 1.0
    q["topic_easiness"] = (q["easiness"] * weight).groupby(q["topic_id"]).transform(
        "sum"
    ) / weight.groupby(q["topic_id"]).transform("sum")
    q["difficulty"] = -q["easiness"]
    q["band"] = BANDS[len(BANDS) // 2]
    for _course, idx in q.groupby("course_id").groups.items():
        part = q.loc[idx]
        # Band edges from questions with enough answers: unanswered ones all sit at the course
        # mean and would squeeze the middle bands to a single value.
        known = part.loc[part["n_answers"].fillna(0) >= MIN_ANSWERS, "difficulty"]
        if len(known) < len(BANDS):
            continue
        edges = np.quantile(known, np.linspace(0, 1, len(BANDS) + 1)[1:-1])
        q.loc[idx, "band"] = [
            BANDS[i] for i in np.searchsorted(edges, part["difficulty"], side="right")
        ]
    return q[
        ["question_id", "course_id", "topic_id", "easiness", "topic_easiness", "difficulty", "band"]
    ]


def build(
    questions: pd.DataFrame, mastery_version: str | None, target: float = TARGET
) -> ModelBundle:
    if questions.empty:
        raise NotEnoughData("features.question_difficulty is empty")
    table = question_table(questions)
    bands = (
        table.groupby(["course_id", "band"])["difficulty"]
        .agg(low="min", high="max", median="median")
        .reset_index()
    )
    return ModelBundle(
        "quiz_difficulty",
        "policy",
        [],
        None,
        {"target": target, "bands": list(BANDS), "mastery_model_version": mastery_version},
        {"questions": table.to_dict("records"), "band_ranges": bands.to_dict("records")},
    )


def success_probability(
    mastery_p: np.ndarray, easiness: np.ndarray, topic_easiness: np.ndarray
) -> np.ndarray:
    z = _logit(mastery_p) + np.asarray(easiness) - np.asarray(topic_easiness)
    return 1.0 / (1.0 + np.exp(-z))


def recommend(bundle: ModelBundle, mastery: pd.DataFrame) -> pd.DataFrame:
    """Per student-topic (``mastery``: student_id, course_id, topic_id, mastery_p): the band whose
    median question keeps expected success nearest the target, with that expectation."""
    target = float(bundle.params["target"])
    questions = pd.DataFrame(bundle.tables["questions"])
    topic = questions.groupby("topic_id")["topic_easiness"].first().rename("topic_easiness")
    bands = pd.DataFrame(bundle.tables["band_ranges"])
    m = mastery.merge(topic.reset_index(), on="topic_id", how="inner").merge(bands, on="course_id")
    m["expected_success"] = success_probability(m["mastery_p"], -m["median"], m["topic_easiness"])
    m["gap"] = (m["expected_success"] - target).abs()
    best = m.sort_values("gap").groupby(["student_id", "course_id", "topic_id"], sort=False).head(1)
    return (
        best.rename(
            columns={"band": "recommended_band", "low": "difficulty_low", "high": "difficulty_high"}
        )[
            [
                "student_id",
                "course_id",
                "topic_id",
                "recommended_band",
                "expected_success",
                "difficulty_low",
                "difficulty_high",
                "mastery_p",
            ]
        ]
        .assign(target_success=target)
        .reset_index(drop=True)
    )


def evaluate_policy(
    bundle: ModelBundle, answers: pd.DataFrame, mastery: pd.DataFrame
) -> dict[str, Any]:
    """Score the policy on real answers: ``answers`` (student_id, course_id, topic_id,
    question_id, is_correct) from the test window, ``mastery`` estimated before that window."""
    target = float(bundle.params["target"])
    q = pd.DataFrame(bundle.tables["questions"])
    a = answers.merge(q[["question_id", "easiness", "topic_easiness", "band"]], on="question_id")
    a = a.merge(mastery[["student_id", "topic_id", "mastery_p"]], on=["student_id", "topic_id"])
    if len(a) < 20:
        raise NotEnoughData(f"quiz_difficulty: only {len(a)} test answers with a mastery estimate")
    y = a["is_correct"].astype(int).to_numpy()
    p = success_probability(a["mastery_p"], a["easiness"], a["topic_easiness"])
    metrics = classification(y, p)
    chosen = recommend(bundle, mastery)[["student_id", "topic_id", "recommended_band"]]
    a = a.merge(chosen, on=["student_id", "topic_id"], how="left")
    in_band = a[a["band"] == a["recommended_band"]]
    # Baseline: one band for everyone, the one whose overall success is nearest the target.
    overall = a.groupby("band")["is_correct"].mean()
    fixed = (overall - target).abs().idxmin()
    in_fixed = a[a["band"] == fixed]
    metrics["target_gap"] = _student_gap(in_band, target)
    metrics["answers_in_band"] = float(len(in_band))
    # Baseline: the question's own difficulty, the same for every student.
    baseline = classification(y, 1.0 / (1.0 + np.exp(-a["easiness"].to_numpy())))
    baseline["target_gap"] = _student_gap(in_fixed, target)
    baseline["answers_in_band"] = float(len(in_fixed))
    return {"model": metrics, "baseline": baseline, "baseline_band": fixed}


def _student_gap(answers: pd.DataFrame, target: float, min_answers: int = 3) -> float:
    """Answer-weighted mean over students of |their success rate - target|: a one-size band is
    too hard for some students and too easy for others, which the mean over everyone hides."""
    per = answers.groupby("student_id")["is_correct"].agg(["mean", "size"])
    per = per[per["size"] >= min_answers]
    if per.empty:
        return float("nan")
    return float(np.average((per["mean"] - target).abs(), weights=per["size"]))


def question_stats(answers: pd.DataFrame) -> pd.DataFrame:
    """The question_difficulty mart's core columns recomputed from a window of answers, so the
    evaluation's difficulty estimates never see the test window's outcomes."""
    return (
        answers.groupby("question_id")
        .agg(
            course_id=("course_id", "first"),
            topic_id=("topic_id", "first"),
            n_answers=("is_correct", "size"),
            p_correct=("is_correct", "mean"),
        )
        .reset_index()
    )


def train(
    questions: pd.DataFrame,
    answers: pd.DataFrame,
    mastery_bundle: ModelBundle,
    mastery_version: str | None,
    topic_frame: pd.DataFrame,
    split: Any,
    target: float = TARGET,
) -> Any:
    """Build the policy from the question_difficulty mart, and evaluate it honestly: difficulty
    from answers before the test window, mastery estimated as of the test window's first date,
    outcomes from the answers in the test window."""
    from ml.training import TrainingResult

    bundle = build(questions, mastery_version, target)
    start = pd.Timestamp(split.test_start, tz="UTC")
    at = pd.to_datetime(answers["occurred_at"], utc=True)
    before, after = answers[at < start], answers[at >= start]
    if before.empty or after.empty:
        raise NotEnoughData("quiz_difficulty: no answers before or after the test window start")
    dates = pd.to_datetime(topic_frame["as_of_date"])
    asof = topic_frame[dates <= pd.Timestamp(split.test_start)]
    asof = asof[pd.to_datetime(asof["as_of_date"]) == pd.to_datetime(asof["as_of_date"]).max()]
    mastery = asof[["student_id", "course_id", "topic_id"]].copy()
    mastery["mastery_p"] = mastery_bundle.predict(asof)["probability"].to_numpy()
    honest = build(question_stats(before), mastery_version, target)

    def evaluate(candidate: ModelBundle) -> dict[str, float]:
        policy = build(question_stats(before), mastery_version, float(candidate.params["target"]))
        return dict(evaluate_policy(policy, after, mastery)["model"])

    scored = evaluate_policy(honest, after, mastery)
    return TrainingResult(
        name="quiz_difficulty",
        bundle=bundle,
        split=split,
        primary_metric="log_loss",
        metrics=scored["model"],
        baselines={BASELINE: scored["baseline"]},
        best_baseline=BASELINE,
        evaluate=evaluate,
        data={
            "rows": {
                "questions": len(questions),
                "answers_before_test": len(before),
                "answers_in_test": len(after),
                "mastery_rows": len(mastery),
            },
            "features": ["mastery_p (topic_mastery)", "easiness logit (question_difficulty)"],
            "as_of_dates": [str(split.train_start), str(split.test_end)],
            "target": target,
            "one_band_for_all": scored["baseline_band"],
        },
    )
