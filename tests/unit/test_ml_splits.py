"""Time-based splits: the model is judged on dates after everything it learned from."""

from __future__ import annotations

import pandas as pd
import pytest

from ml.errors import NotEnoughData
from ml.splits import apply_split, time_split
from ml.synthetic import student_course_frame


def test_windows_are_ordered_and_disjoint() -> None:
    frame = student_course_frame(300, weeks=10)
    split, train, valid, test = time_split(frame)
    assert train["as_of_date"].max() < valid["as_of_date"].min()
    assert valid["as_of_date"].max() < test["as_of_date"].min()
    assert len(train) + len(valid) + len(test) == len(frame)
    assert (
        split.train_end < split.valid_start <= split.valid_end < split.test_start <= split.test_end
    )


def test_apply_split_reproduces_the_windows_on_another_frame() -> None:
    frame = student_course_frame(300, weeks=10)
    split, _, _, test = time_split(frame)
    _, _, again = apply_split(frame, split)
    assert again.index.equals(test.index)


def test_too_few_dates_is_a_clear_error() -> None:
    frame = pd.DataFrame({"as_of_date": pd.to_datetime(["2026-01-05", "2026-01-12"]), "x": [1, 2]})
    with pytest.raises(NotEnoughData, match="at least 3"):
        time_split(frame)


def test_purge_drops_training_rows_whose_label_was_not_yet_known() -> None:
    frame = student_course_frame(2000, weeks=10)
    split, train, _, _ = time_split(frame, purge=True, min_purged_rows=10)
    assert split.purged
    assert (pd.to_datetime(train["label_observed_on"]) < pd.Timestamp(split.valid_start)).all()
    # Within one term the early-observed labels are the drop-outs: the reason purge is opt-in.
    assert train["label_dropout"].mean() > frame["label_dropout"].mean()
