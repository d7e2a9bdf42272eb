"""Metrics for every model kind, each a plain dict of floats so cards, artifacts and promotion
decisions read the same numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    mean_absolute_error,
    roc_auc_score,
)

# Which way is better, per metric name: promotion compares candidates with this.
HIGHER_IS_BETTER = {
    "roc_auc": True,
    "pr_auc": True,
    "brier": False,
    "log_loss": False,
    "ece": False,
    "rmse": False,
    "mae": False,
    "r2": True,
    "interval_coverage": True,
    "ndcg_at_5": True,
    "hit_at_1": True,
    "hit_at_3": True,
    "mrr": True,
    "weighted_rmse": False,
    "weighted_brier": False,
    "target_gap": False,
}


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - predicted probability| over equal-width bins, weighted by bin size."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / max(len(y), 1))


def calibration_curve(
    y: np.ndarray, p: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per non-empty bin: mean predicted probability, observed rate, row count."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    pred, obs, count = [], [], []
    for b in range(bins):
        mask = idx == b
        if mask.any():
            pred.append(p[mask].mean())
            obs.append(y[mask].mean())
            count.append(int(mask.sum()))
    return np.asarray(pred), np.asarray(obs), np.asarray(count)


def classification(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, p)) if both else math.nan,
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "positive_rate": float(y.mean()),
        "n": float(len(y)),
    }


def regression(
    y: np.ndarray,
    pred: np.ndarray,
    *,
    weight: np.ndarray | None = None,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
) -> dict[str, float]:
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    w = np.ones_like(y) if weight is None else np.asarray(weight, dtype=float)
    err = pred - y
    rmse = float(np.sqrt(np.average(err**2, weights=w)))
    var = float(np.average((y - np.average(y, weights=w)) ** 2, weights=w))
    out = {
        "rmse": rmse,
        "mae": float(mean_absolute_error(y, pred, sample_weight=w)),
        "r2": float(1 - rmse**2 / var) if var > 0 else math.nan,
        "n": float(len(y)),
    }
    if low is not None and high is not None:
        out["interval_coverage"] = float(np.mean((y >= low) & (y <= high)))
        out["interval_width"] = float(np.mean(np.asarray(high) - np.asarray(low)))
    return out


def ranking(ranked: Sequence[Sequence[str]], actual: Sequence[str], k: int = 5) -> dict[str, float]:
    """Hit rate at 1/3, NDCG@k (one relevant item per query) and MRR over queries."""
    if not actual:
        return {"ndcg_at_5": math.nan, "hit_at_1": math.nan, "hit_at_3": math.nan, "mrr": math.nan}
    ndcg, hit1, hit3, mrr = [], [], [], []
    for items, truth in zip(ranked, actual, strict=True):
        items = list(items)
        pos = items.index(truth) if truth in items else -1
        ndcg.append(1.0 / math.log2(pos + 2) if 0 <= pos < k else 0.0)
        hit1.append(1.0 if pos == 0 else 0.0)
        hit3.append(1.0 if 0 <= pos < 3 else 0.0)
        mrr.append(1.0 / (pos + 1) if pos >= 0 else 0.0)
    return {
        "ndcg_at_5": float(np.mean(ndcg)),
        "hit_at_1": float(np.mean(hit1)),
        "hit_at_3": float(np.mean(hit3)),
        "mrr": float(np.mean(mrr)),
        "n": float(len(actual)),
    }


def better(metric: str, candidate: float, current: float, min_gain: float = 0.0) -> bool:
    """Whether ``candidate`` beats ``current`` on ``metric`` by more than ``min_gain``."""
    if math.isnan(candidate):
        return False
    if math.isnan(current):
        return True
    if HIGHER_IS_BETTER[metric]:
        return candidate > current + min_gain
    return candidate < current - min_gain
