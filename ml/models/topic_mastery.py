"""Topic mastery (weak topics): per student and topic, the probability of answering the topic's
next questions correctly.

Label (``features.student_topic_asof``): ``label_next_correct_share``, the share of correct
answers on the topic in the 14 days after ``as_of_date``, weighted by ``label_next_n`` (how many
answers; NULL when none). The model is XGBoost with a logistic objective on the share, so its
output is a probability. Baselines: the topic's training mean, the student's training mean, and
the student's own correct share so far on the topic.

Weak topics are the lowest-mastery topics of a student in a course among those with evidence
(answers already given), returned with that evidence.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ml import derived
from ml.features import feature_columns, find_feature
from ml.metrics import regression
from ml.models.baselines import MASTERY_PATTERNS, GroupMean, LinearOnFeature
from ml.splits import time_split
from ml.training import TrainingResult, data_summary, strongest, train_tabular

LABEL = "label_next_correct_share"
WEIGHT = "label_next_n"
EVIDENCE_PATTERNS = (r"^f_(n_)?answers(_n|_total)?$", r"^f_.*n_answers", r"^f_.*answers")
# Below this mastery probability a topic with evidence counts as weak.
WEAK_THRESHOLD = 0.6
DERIVED = ("student_context",)


def train(frame: pd.DataFrame, *, params: dict[str, Any] | None = None) -> TrainingResult:
    frame = derived.apply(frame, DERIVED)
    labelled = frame[frame[LABEL].notna() & (frame[WEIGHT].fillna(0) > 0)]
    features = feature_columns(frame)
    split, tr, va, te = time_split(labelled)
    evidence = find_feature(features, *EVIDENCE_PATTERNS)
    bundle = train_tabular(
        "topic_mastery",
        "share",
        tr,
        va,
        features,
        LABEL,
        weight=WEIGHT,
        params=params,
        extra={
            "label": LABEL,
            "weak_threshold": WEAK_THRESHOLD,
            "evidence_feature": evidence,
            "derived": list(DERIVED),
        },
    )
    y, w = te[LABEL].to_numpy(float), te[WEIGHT].to_numpy(float)

    def evaluate(candidate: Any) -> dict[str, float]:
        return regression(y, candidate.predict(te)["probability"].to_numpy(), weight=w)

    baselines = {
        "topic_mean": regression(
            y, GroupMean(tr, ["topic_id"], LABEL, WEIGHT).predict(te), weight=w
        ),
        "student_mean": regression(
            y, GroupMean(tr, ["student_id"], LABEL, WEIGHT).predict(te), weight=w
        ),
    }
    history = find_feature(features, *MASTERY_PATTERNS)
    if history is not None:
        baselines["student_topic_history"] = regression(
            y, np.clip(LinearOnFeature(tr, history, LABEL, WEIGHT).predict(te), 0, 1), weight=w
        )
    pred = bundle.predict(te)["probability"].to_numpy()
    return TrainingResult(
        name="topic_mastery",
        bundle=bundle,
        split=split,
        primary_metric="rmse",
        metrics=evaluate(bundle),
        baselines=baselines,
        best_baseline=strongest(baselines, "rmse"),
        evaluate=evaluate,
        data=data_summary(frame, tr, va, te, features) | {"history_feature": history},
        plots={"y": y, "pred": pred, "weight": w},
    )


def weak_topics(bundle: Any, latest: pd.DataFrame) -> pd.DataFrame:
    """Mastery for each student-topic row (one as-of date per student-course), ranked weakest
    first within the student-course, with the evidence it rests on."""
    out = latest[["student_id", "course_id", "topic_id", "as_of_date"]].copy()
    out["mastery_p"] = bundle.predict(latest)["probability"].to_numpy()
    column = bundle.params.get("evidence_feature")
    out["n_evidence"] = latest[column].fillna(0).to_numpy(float) if column else np.nan
    threshold = float(bundle.params.get("weak_threshold", WEAK_THRESHOLD))
    has_evidence = out["n_evidence"].fillna(1) > 0
    out["is_weak"] = has_evidence & (out["mastery_p"] < threshold)
    out = out.sort_values(["student_id", "course_id", "mastery_p"])
    out["weak_rank"] = out.groupby(["student_id", "course_id"]).cumcount() + 1
    return out
