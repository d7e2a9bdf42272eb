"""Feature discovery: models train on whatever f_* columns the marts have."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.errors import MlError, NotEnoughData
from ml.features import feature_columns, find_feature, label_columns, matrix


def test_features_and_labels_are_found_by_prefix() -> None:
    frame = pd.DataFrame(
        {"student_id": ["a"], "f_x": [1.0], "f_y": [2], "label_dropout": [1], "course_day": [3]}
    )
    assert feature_columns(frame) == ["f_x", "f_y"]
    assert label_columns(frame) == ["label_dropout"]


def test_a_text_feature_is_a_mart_bug_reported_by_name() -> None:
    frame = pd.DataFrame({"f_x": [1.0], "f_country": ["PT"]})
    with pytest.raises(MlError, match="f_country"):
        feature_columns(frame)


def test_a_mart_without_features_is_not_enough_data() -> None:
    with pytest.raises(NotEnoughData):
        feature_columns(pd.DataFrame({"student_id": ["a"]}))


def test_find_feature_tries_patterns_in_order() -> None:
    names = ["f_n_active_days", "f_n_active_days_last_7", "f_avg_quiz_score_pct"]
    assert find_feature(names, r"last_7d", r"active.*last_7") == "f_n_active_days_last_7"
    assert find_feature(names, r"nothing") is None


def test_matrix_keeps_the_registered_order_and_names_missing_columns() -> None:
    frame = pd.DataFrame({"f_b": [1.0, None], "f_a": [3.0, 4.0]})
    x = matrix(frame, ["f_a", "f_b"])
    assert x.dtype == np.float32
    assert x[0].tolist() == [3.0, 1.0] and np.isnan(x[1, 1])
    with pytest.raises(MlError, match="f_c"):
        matrix(frame, ["f_a", "f_c"])
