"""The feature marts' conventions, discovered from the data rather than hard-coded.

dbt owns the marts (schema ``features``): numeric feature columns start with ``f_``, labels with
``label_``, everything else is a key or metadata. Models therefore train on whatever ``f_*``
columns the mart has today, and record that list in the registry so scoring uses the same ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ml.errors import MlError, NotEnoughData

FEATURE_PREFIX = "f_"
LABEL_PREFIX = "label_"

STUDENT_COURSE = "student_course_asof"
STUDENT_TOPIC = "student_topic_asof"
CHAPTER_TRANSITIONS = "chapter_transitions"
QUESTION_DIFFICULTY = "question_difficulty"
MARTS = (STUDENT_COURSE, STUDENT_TOPIC, CHAPTER_TRANSITIONS, QUESTION_DIFFICULTY)


def feature_columns(frame: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """The ``f_*`` columns of a mart, in the mart's order (numeric ones only: a non-numeric ``f_``
    column is a mart bug, reported rather than silently dropped)."""
    skip = set(exclude)
    columns = [c for c in frame.columns if c.startswith(FEATURE_PREFIX) and c not in skip]
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise MlError(
            f"feature columns {bad} are not numeric; the feature marts must cast every f_* column "
            "to a number (fix the dbt model)"
        )
    if not columns:
        raise NotEnoughData("the feature mart has no f_* columns; rebuild it with dbt")
    return columns


def label_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(LABEL_PREFIX)]


def find_feature(features: Iterable[str], *patterns: str) -> str | None:
    """The first feature whose name matches one of the regular expressions, tried in order: how a
    baseline finds e.g. last week's activity without depending on one exact column name."""
    names = list(features)
    for pattern in patterns:
        regex = re.compile(pattern)
        for name in names:
            if regex.search(name):
                return name
    return None


def matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The float32 design matrix in the registered feature order (missing values stay NaN, which
    XGBoost handles natively)."""
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise MlError(
            f"the frame lacks features the model was trained on: {missing[:8]}"
            f"{' …' if len(missing) > 8 else ''}; retrain the model or rebuild the feature marts"
        )
    return frame[features].to_numpy(dtype=np.float32, na_value=np.nan)
