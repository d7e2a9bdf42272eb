"""Probability calibration and prediction intervals, stored as plain numbers so a model loads
without unpickling anything from the registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression


@dataclass
class IsotonicCalibrator:
    """Monotone map from raw scores to calibrated probabilities, fitted on the validation window
    (never on training rows, whose scores are optimistic)."""

    x: np.ndarray
    y: np.ndarray

    @classmethod
    def fit(cls, raw: np.ndarray, labels: np.ndarray) -> IsotonicCalibrator:
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(np.asarray(raw, dtype=float), np.asarray(labels, dtype=float))
        return cls(np.asarray(iso.X_thresholds_, dtype=float), np.asarray(iso.y_thresholds_))

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        # A little shrinkage to the fitted range keeps probabilities off exact 0/1.
        p = np.interp(np.asarray(raw, dtype=float), self.x, self.y)
        return np.clip(p, 0.001, 0.999)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "isotonic", "x": self.x.tolist(), "y": self.y.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IsotonicCalibrator:
        return cls(np.asarray(data["x"], dtype=float), np.asarray(data["y"], dtype=float))


@dataclass
class ConformalInterval:
    """Split-conformal interval: the residual quantiles on the validation window, added to each
    prediction; with exchangeable data the interval covers ``coverage`` of outcomes."""

    low: float
    high: float
    coverage: float

    @classmethod
    def fit(cls, pred: np.ndarray, y: np.ndarray, coverage: float = 0.8) -> ConformalInterval:
        residual = np.asarray(y, dtype=float) - np.asarray(pred, dtype=float)
        alpha = (1.0 - coverage) / 2.0
        return cls(
            float(np.quantile(residual, alpha)), float(np.quantile(residual, 1 - alpha)), coverage
        )

    def bounds(self, pred: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
        return np.clip(pred + self.low, lo, hi), np.clip(pred + self.high, lo, hi)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "conformal", "low": self.low, "high": self.high, "coverage": self.coverage}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConformalInterval:
        return cls(float(data["low"]), float(data["high"]), float(data["coverage"]))
