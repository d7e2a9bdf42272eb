"""Dropout risk: the probability that a student withdraws from a course, or stops all activity in
it, between the as-of date and the course's end.

Label (``features.student_course_asof.label_dropout``): 1 when the enrollment is withdrawn after
``as_of_date`` or the student has no activity from ``as_of_date`` to the course end; 0 otherwise;
NULL while the course is still running and the outcome unknown (those rows are scored, never
trained on). Baselines: a last-week activity rule and the training dropout rate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ml.bundle import ModelBundle
from ml.features import feature_columns
from ml.metrics import classification
from ml.models.baselines import ActivityRule
from ml.splits import TimeSplit, time_split
from ml.training import TrainingResult, data_summary, strongest, train_tabular

LABEL = "label_dropout"
# Probability thresholds for the bands teachers see: high = more likely than not to drop out.
RISK_BANDS = {"medium": 0.2, "high": 0.5}


def risk_band(p: np.ndarray, bands: dict[str, float] | None = None) -> np.ndarray:
    b = bands or RISK_BANDS
    return np.where(p >= b["high"], "high", np.where(p >= b["medium"], "medium", "low"))


def uncensored(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of courses that ended by the data horizon (the latest as-of or label date). In a
    course still running only the drop-outs are labelled yet, and training on them would teach
    the model that running courses mean risk."""
    if not {"course_day", "course_length_days"} <= set(frame.columns):
        return frame
    as_of = pd.to_datetime(frame["as_of_date"])
    horizon = max(as_of.max(), pd.to_datetime(frame.get("label_observed_on")).max())
    last_day = frame["course_length_days"] - frame["course_day"] - 1
    return frame[as_of + pd.to_timedelta(last_day, unit="D") <= horizon]


def train(frame: pd.DataFrame, *, params: dict[str, Any] | None = None) -> TrainingResult:
    labelled = uncensored(frame[frame[LABEL].notna()]).copy()
    labelled[LABEL] = labelled[LABEL].astype(int)
    features = feature_columns(frame)
    split, tr, va, te = time_split(labelled)
    bundle = train_tabular(
        "dropout",
        "classifier",
        tr,
        va,
        features,
        LABEL,
        params=params,
        extra={"risk_bands": RISK_BANDS, "label": LABEL},
    )
    return evaluated(bundle, split, tr, va, te, data_summary(frame, tr, va, te, features))


def evaluated(
    bundle: ModelBundle,
    split: TimeSplit,
    tr: pd.DataFrame,
    va: pd.DataFrame,
    te: pd.DataFrame,
    data: dict[str, Any],
) -> TrainingResult:
    """Metrics of a trained dropout model and its baselines on the test window (shared by the
    in-memory and the Spark training paths, so both report the same numbers)."""
    features = bundle.features

    def evaluate(candidate: Any) -> dict[str, float]:
        return classification(te[LABEL].to_numpy(), candidate.predict(te)["probability"].to_numpy())

    rule = ActivityRule(tr, va, features, LABEL)
    prior = float(tr[LABEL].mean())
    y = te[LABEL].to_numpy()
    baselines = {
        "last_week_activity": classification(y, rule.predict(te)),
        "training_rate": classification(y, np.full(len(te), prior)),
    }
    bundle.params["baseline_rule"] = {"column": rule.column, "sign": rule.sign}
    p_model = bundle.predict(te)["probability"].to_numpy()
    return TrainingResult(
        name="dropout",
        bundle=bundle,
        split=split,
        primary_metric="roc_auc",
        metrics=evaluate(bundle),
        baselines=baselines,
        best_baseline=strongest(baselines, "roc_auc"),
        evaluate=evaluate,
        data=data,
        plots={"y": y, "p": p_model, "baseline_p": rule.predict(te), "baseline": rule.column},
    )
