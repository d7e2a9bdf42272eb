"""Metrics: values checked against cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.calibration import ConformalInterval, IsotonicCalibrator
from ml.metrics import better, classification, expected_calibration_error, ranking, regression


def test_ranking_metrics_for_known_positions() -> None:
    ranked = [["a", "b", "c"], ["b", "a", "c"], ["c", "b", "d"]]
    out = ranking(ranked, ["a", "a", "a"])
    assert out["hit_at_1"] == pytest.approx(1 / 3)
    assert out["hit_at_3"] == pytest.approx(2 / 3)
    assert out["mrr"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert out["ndcg_at_5"] == pytest.approx((1 + 1 / math.log2(3) + 0) / 3)


def test_regression_metrics_and_interval_coverage() -> None:
    y = np.array([10.0, 20.0, 30.0, 40.0])
    pred = np.array([12.0, 18.0, 30.0, 44.0])
    out = regression(y, pred, low=pred - 3, high=pred + 3)
    assert out["mae"] == pytest.approx(2.0)
    assert out["rmse"] == pytest.approx(math.sqrt((4 + 4 + 0 + 16) / 4))
    assert out["interval_coverage"] == pytest.approx(0.75)


def test_a_calibrated_forecast_has_a_small_ece_and_a_biased_one_does_not() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, 20000) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.02
    assert expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.1
    assert classification(y, p)["roc_auc"] > 0.8


def test_better_respects_the_direction_of_each_metric() -> None:
    assert better("roc_auc", 0.8, 0.7) and not better("roc_auc", 0.7, 0.7)
    assert better("rmse", 9.0, 10.0) and not better("rmse", 10.0, 9.0)
    assert not better("roc_auc", float("nan"), 0.5)


def test_isotonic_calibration_round_trips_through_json() -> None:
    rng = np.random.default_rng(1)
    raw = rng.uniform(0, 1, 2000)
    y = (rng.uniform(0, 1, 2000) < raw**2).astype(int)
    cal = IsotonicCalibrator.fit(raw, y)
    again = IsotonicCalibrator.from_json(cal.to_json())
    assert np.allclose(cal(raw), again(raw))
    assert np.all(np.diff(cal(np.sort(raw))) >= 0)


def test_conformal_interval_covers_about_the_asked_share() -> None:
    rng = np.random.default_rng(2)
    pred = rng.uniform(0, 100, 5000)
    y = pred + rng.normal(0, 10, 5000)
    interval = ConformalInterval.fit(pred[:2500], y[:2500], coverage=0.8)
    low, high = interval.bounds(pred[2500:], -1e9, 1e9)
    assert np.mean((y[2500:] >= low) & (y[2500:] <= high)) == pytest.approx(0.8, abs=0.03)
