"""A trained model as the registry stores it: JSON metadata, an XGBoost booster in XGBoost's own
JSON format, and JSON tables — no pickles, so loading a model never executes code from storage."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.calibration import ConformalInterval, IsotonicCalibrator
from ml.derived import apply as apply_derived
from ml.errors import RegistryError
from ml.features import matrix

KINDS = ("classifier", "regressor", "share", "ranker", "policy")


@dataclass
class ModelBundle:
    name: str
    kind: str
    features: list[str]
    booster: xgb.Booster | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        if self.booster is None:
            raise RegistryError(f"model {self.name} has no booster")
        derived = self.params.get("derived") or []
        if derived and any(f not in frame.columns for f in self.features):
            frame = apply_derived(frame, derived)
        return np.asarray(self.booster.inplace_predict(matrix(frame, self.features)))

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predictions for a frame holding the model's features (index preserved).

        classifier/share: ``probability`` (calibrated); regressor: ``prediction`` with the
        conformal ``low``/``high`` interval, clipped to the label's range."""
        raw = self.raw(frame)
        if self.kind in ("classifier", "share"):
            calib = self.params.get("calibrator")
            p = IsotonicCalibrator.from_json(calib)(raw) if calib else np.clip(raw, 0.001, 0.999)
            return pd.DataFrame({"probability": p}, index=frame.index)
        if self.kind == "regressor":
            lo, hi = self.params.get("clip", (-np.inf, np.inf))
            pred = np.clip(raw, lo, hi)
            out = pd.DataFrame({"prediction": pred}, index=frame.index)
            interval = self.params.get("interval")
            if interval:
                low, high = ConformalInterval.from_json(interval).bounds(pred, lo, hi)
                out["low"], out["high"] = low, high
            return out
        raise RegistryError(f"model {self.name} ({self.kind}) is not a tabular predictor")

    def to_files(self) -> dict[str, bytes]:
        meta = {
            "name": self.name,
            "kind": self.kind,
            "features": self.features,
            "params": self.params,
        }
        files = {
            "model.json": json.dumps(meta, indent=2, default=_json_default).encode(),
            "tables.json": json.dumps(self.tables, default=_json_default).encode(),
        }
        if self.booster is not None:
            files["booster.json"] = bytes(self.booster.save_raw(raw_format="json"))
        return files

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> ModelBundle:
        try:
            meta = json.loads(files["model.json"])
            tables = json.loads(files.get("tables.json", b"{}"))
        except (KeyError, ValueError) as exc:
            raise RegistryError(f"unreadable model files: {exc}") from None
        booster = None
        if "booster.json" in files:
            booster = xgb.Booster()
            booster.load_model(bytearray(files["booster.json"]))
            booster.set_param({"nthread": 2})
        if meta.get("kind") not in KINDS:
            raise RegistryError(f"unknown model kind {meta.get('kind')!r}")
        return cls(
            meta["name"], meta["kind"], list(meta["features"]), booster, meta["params"], tables
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
