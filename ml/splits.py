"""Time-based train / validation / test splits: the model is always judged on dates after the ones
it learned from, the way it will be used.

The split is by ``as_of_date`` (the date a row's features were computed for): the last dates form
the test window, the dates before them the validation window (early stopping, calibration,
prediction intervals), the rest training. Every feature in the marts only uses events before its
``as_of_date``, so no feature crosses a window boundary. Labels can: a training row's label (say,
"dropped out before course end") may be observed after the test window starts. With a
``label_observed_on`` column, ``purge=True`` drops such training rows (when enough remain). That is
only unbiased when whole courses ended before the validation window (several terms of history):
within one term the labels observed early are mostly withdrawals, so purging would train on a
sample of drop-outs. The default is therefore off, and the model card records the setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from ml.errors import NotEnoughData


@dataclass(frozen=True)
class TimeSplit:
    train_start: date
    train_end: date  # inclusive
    valid_start: date
    valid_end: date
    test_start: date
    test_end: date
    purged: bool

    def window(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}


def _dates(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_datetime(frame[column]).dt.normalize()


def time_split(
    frame: pd.DataFrame,
    *,
    date_column: str = "as_of_date",
    valid_share: float = 0.2,
    test_share: float = 0.2,
    purge: bool = False,
    observed_column: str = "label_observed_on",
    min_purged_rows: int = 200,
) -> tuple[TimeSplit, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split labelled rows into train/valid/test by distinct dates (at least one date each)."""
    if frame.empty:
        raise NotEnoughData("no labelled rows to split")
    dates = _dates(frame, date_column)
    distinct = np.sort(dates.unique())
    if len(distinct) < 3:
        raise NotEnoughData(
            f"only {len(distinct)} distinct {date_column} values; a time-based split needs at "
            "least 3 (simulate or collect more days)"
        )
    n = len(distinct)
    n_test = max(1, round(n * test_share))
    n_valid = max(1, round(n * valid_share))
    if n - n_test - n_valid < 1:
        n_test, n_valid = 1, 1
    test_start = distinct[n - n_test]
    valid_start = distinct[n - n_test - n_valid]
    train = frame[dates < valid_start]
    valid = frame[(dates >= valid_start) & (dates < test_start)]
    test = frame[dates >= test_start]
    purged = False
    if purge and observed_column in frame.columns:
        observed = pd.to_datetime(train[observed_column]).dt.normalize()
        kept = train[observed < valid_start]
        if len(kept) >= min_purged_rows:
            train, purged = kept, True
    split = TimeSplit(
        train_start=pd.Timestamp(distinct[0]).date(),
        train_end=pd.Timestamp(distinct[n - n_test - n_valid - 1]).date(),
        valid_start=pd.Timestamp(valid_start).date(),
        valid_end=pd.Timestamp(distinct[n - n_test - 1]).date(),
        test_start=pd.Timestamp(test_start).date(),
        test_end=pd.Timestamp(distinct[-1]).date(),
        purged=purged,
    )
    return split, train, valid, test


def apply_split(
    frame: pd.DataFrame, split: TimeSplit, *, date_column: str = "as_of_date"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The same windows applied to another frame (how the current model is re-evaluated on the
    candidate's test window)."""
    dates = _dates(frame, date_column)
    valid_start, test_start = pd.Timestamp(split.valid_start), pd.Timestamp(split.test_start)
    test_end = pd.Timestamp(split.test_end)
    return (
        frame[dates < valid_start],
        frame[(dates >= valid_start) & (dates < test_start)],
        frame[(dates >= test_start) & (dates <= test_end)],
    )
