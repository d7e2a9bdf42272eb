"""Simple baselines every model must beat on the same test window.

They are deliberately what a teacher or an LMS report would do without ML: a rule on last week's
activity, the class average, the student's own average so far, the most common next chapter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ml.calibration import IsotonicCalibrator
from ml.features import find_feature

# Activity over the last week, in the names dbt is likely to use; the first match wins.
ACTIVITY_PATTERNS = (
    r"^f_(active_days|events|sessions|minutes|logins).*(7d|last_?7|last_?week)",
    r"^f_.*(7d|last_?7|last_?week).*(active|event|session|minute|login)",
    r"^f_.*(active|event|session|minute|login).*(7d|last_?7|week)",
    r"^f_.*(days_since_last|inactive_days)",
)
QUIZ_PATTERNS = (
    r"^f_.*last_quiz.*(score|pct|share)",
    r"^f_.*quiz.*(score|pct|share|correct)",
    r"^f_.*(correct_share|share_correct|p_correct|accuracy)",
)
MASTERY_PATTERNS = (
    r"^f_.*(correct_share|share_correct|p_correct|accuracy)",
    r"^f_.*correct.*(share|rate|pct)",
)


def best_single_feature(train: pd.DataFrame, features: list[str], label: str) -> tuple[str, int]:
    """The feature (and sign) with the highest training ROC AUC: the fallback activity rule when
    the mart has no recognisable last-week activity column."""
    best, sign, best_auc = features[0], 1, 0.0
    y = train[label].to_numpy(int)
    if len(np.unique(y)) < 2:
        return best, sign
    for f in features:
        x = train[f].fillna(0).to_numpy(float)
        if np.all(x == x[0]):
            continue
        auc = roc_auc_score(y, x)
        for s, a in ((1, auc), (-1, 1 - auc)):
            if a > best_auc:
                best, sign, best_auc = f, s, a
    return best, sign


class ActivityRule:
    """Dropout risk from one activity column: less activity, more risk (or the direction the
    training data shows for a fallback column), calibrated on the validation window."""

    def __init__(self, train: pd.DataFrame, valid: pd.DataFrame, features: list[str], label: str):
        column = find_feature(features, *ACTIVITY_PATTERNS)
        if column is not None:
            inactive = "since_last" in column or "inactive" in column
            self.column, self.sign = column, 1 if inactive else -1
        else:
            self.column, self.sign = best_single_feature(train, features, label)
        self.calibrator = IsotonicCalibrator.fit(self._score(valid), valid[label].to_numpy(float))

    def _score(self, frame: pd.DataFrame) -> np.ndarray:
        return self.sign * frame[self.column].fillna(0).to_numpy(float)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.calibrator(self._score(frame))


class LinearOnFeature:
    """The label as a straight line of one feature (e.g. the last quiz score), fitted on training
    rows; missing values get the training mean of the label."""

    def __init__(self, train: pd.DataFrame, column: str, label: str, weight: str | None = None):
        self.column = column
        ok = train[column].notna()
        x, y = train.loc[ok, column].to_numpy(float), train.loc[ok, label].to_numpy(float)
        w = None if weight is None else train.loc[ok, weight].to_numpy(float)
        self.fallback = float(
            np.average(train[label], weights=None if weight is None else train[weight])
        )
        if len(x) >= 2 and np.ptp(x) > 0:
            self.slope, self.intercept = np.polyfit(x, y, 1, w=None if w is None else np.sqrt(w))
        else:
            self.slope, self.intercept = 0.0, self.fallback

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame[self.column].to_numpy(float)
        pred = self.slope * x + self.intercept
        return np.where(np.isnan(x), self.fallback, pred)


class GroupMean:
    """The training mean of the label per group (e.g. per topic), the overall mean for groups not
    seen in training."""

    def __init__(self, train: pd.DataFrame, keys: list[str], label: str, weight: str | None = None):
        self.keys = keys
        w = train[weight] if weight else pd.Series(1.0, index=train.index)
        grouped = (train[label] * w).groupby([train[k] for k in keys]).sum() / w.groupby(
            [train[k] for k in keys]
        ).sum()
        self.means = grouped.rename("baseline").reset_index()
        self.overall = float(np.average(train[label], weights=w))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        merged = frame[self.keys].merge(self.means, on=self.keys, how="left")
        return merged["baseline"].fillna(self.overall).to_numpy(float)
