"""Final score: the enrollment's final score (0-100) predicted as of a date, with an 80%
prediction interval.

Label (``features.student_course_asof.label_final_score``): the final score of a completed
enrollment, NULL otherwise (withdrawn or still running). Baselines: the training mean, and a
straight line on the student's latest quiz result when the mart has one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ml.features import feature_columns, find_feature
from ml.metrics import regression
from ml.models.baselines import QUIZ_PATTERNS, LinearOnFeature
from ml.splits import time_split
from ml.training import TrainingResult, data_summary, strongest, train_tabular

LABEL = "label_final_score"


def train(frame: pd.DataFrame, *, params: dict[str, Any] | None = None) -> TrainingResult:
    labelled = frame[frame[LABEL].notna()]
    features = feature_columns(frame)
    split, tr, va, te = time_split(labelled)
    bundle = train_tabular(
        "final_score",
        "regressor",
        tr,
        va,
        features,
        LABEL,
        params=params,
        clip=(0.0, 100.0),
        extra={"label": LABEL},
    )

    def evaluate(candidate: Any) -> dict[str, float]:
        out = candidate.predict(te)
        return regression(
            te[LABEL].to_numpy(),
            out["prediction"].to_numpy(),
            low=out.get("low"),
            high=out.get("high"),
        )

    y = te[LABEL].to_numpy(float)
    baselines = {"mean_score": regression(y, np.full(len(te), float(tr[LABEL].mean())))}
    quiz = find_feature(features, *QUIZ_PATTERNS)
    if quiz is not None:
        baselines["last_quiz"] = regression(y, LinearOnFeature(tr, quiz, LABEL).predict(te))
    metrics = evaluate(bundle)
    return TrainingResult(
        name="final_score",
        bundle=bundle,
        split=split,
        primary_metric="rmse",
        metrics=metrics,
        baselines=baselines,
        best_baseline=strongest(baselines, "rmse"),
        evaluate=evaluate,
        data=data_summary(frame, tr, va, te, features) | {"quiz_baseline_feature": quiz},
        plots={"y": y, "pred": bundle.predict(te)["prediction"].to_numpy()},
    )
