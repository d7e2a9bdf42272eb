"""Checks against the simulator's planted truth (``<simulation>/truth/*.parquet``).

Evaluation only: nothing here feeds a model. A real school has no truth folder and these checks
are simply skipped; on the simulator they show whether the models recover what was planted
(who was going to drop out, each student's topic ability, each question's difficulty).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from ml.bundle import ModelBundle
from ml.models import quiz_difficulty


def load(truth_dir: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for name in ("students", "topic_ability", "questions"):
        path = Path(truth_dir) / f"{name}.parquet"
        if path.exists():
            out[name] = pd.read_parquet(path)
    return out


def dropout(bundle: ModelBundle, test: pd.DataFrame, students: pd.DataFrame) -> dict[str, float]:
    """AUC of the risk against "the planted dropout day falls after the as-of date", and the mean
    risk per planted cohort (dropout > decaying > steady when the model is right)."""
    t = test.merge(students[["student_id", "cohort", "dropout_at"]], on="student_id")
    risk = bundle.predict(t)["probability"].to_numpy()
    as_of = pd.to_datetime(t["as_of_date"]).dt.tz_localize("UTC")
    planted = (t["dropout_at"].notna() & (t["dropout_at"] >= as_of)).to_numpy(int)
    out = {
        "truth_roc_auc": float(roc_auc_score(planted, risk))
        if len(set(planted)) == 2
        else float("nan")
    }
    for cohort, value in pd.Series(risk).groupby(t["cohort"].to_numpy()).mean().items():
        out[f"mean_risk_{cohort}"] = float(value)
    return out


def final_score(
    bundle: ModelBundle, test: pd.DataFrame, students: pd.DataFrame
) -> dict[str, float]:
    t = test.merge(students[["student_id", "theta"]], on="student_id")
    pred = bundle.predict(t)["prediction"].to_numpy()
    return {"spearman_with_planted_theta": float(spearmanr(pred, t["theta"]).statistic)}


def topic_mastery(
    bundle: ModelBundle, test: pd.DataFrame, ability: pd.DataFrame
) -> dict[str, float]:
    t = test.merge(ability, on=["student_id", "topic_id"])
    p = bundle.predict(t)["probability"].to_numpy()
    return {
        "spearman_with_planted_ability": float(spearmanr(p, t["ability"]).statistic),
        "n": float(len(t)),
    }


def quiz_policy(
    bundle: ModelBundle,
    mastery: pd.DataFrame,
    ability: pd.DataFrame,
    questions: pd.DataFrame,
    fixed_band: str,
) -> dict[str, float]:
    """True success probability (the simulator's IRT: sigmoid(a(ability - b))) on the questions
    of the recommended band vs one band for everyone, as mean |p - target| over student-topics."""
    target = float(bundle.params["target"])
    rec = quiz_difficulty.recommend(bundle, mastery)
    q = pd.DataFrame(bundle.tables["questions"])[["question_id", "topic_id", "band"]].merge(
        questions[["question_id", "difficulty_b", "discrimination_a"]], on="question_id"
    )
    # Questions of the recommended band anywhere in the course, answered with the student's
    # planted ability on this topic: a topic alone rarely has a question in every band.
    q = q.drop(columns="topic_id").merge(
        pd.DataFrame(bundle.tables["questions"])[["question_id", "course_id"]], on="question_id"
    )
    pairs = rec.merge(ability, on=["student_id", "topic_id"]).merge(q, on="course_id")
    p = 1 / (1 + np.exp(-pairs["discrimination_a"] * (pairs["ability"] - pairs["difficulty_b"])))
    pairs = pairs.assign(p=p)
    keys = ["student_id", "topic_id"]
    chosen = pairs[pairs["band"] == pairs["recommended_band"]].groupby(keys)["p"].mean()
    fixed = pairs[pairs["band"] == fixed_band].groupby(keys)["p"].mean()
    both = pd.concat([chosen.rename("chosen"), fixed.rename("fixed")], axis=1).dropna()
    return {
        "truth_target_gap": float((both["chosen"] - target).abs().mean()),
        "truth_target_gap_one_band": float((both["fixed"] - target).abs().mean()),
        "n": float(len(both)),
    }
