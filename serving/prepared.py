"""One-row serving paths, prepared once per loaded model version (no pandas per request).

The ML library scores frames: right for the nightly batch, but building a one-row DataFrame,
selecting its columns and merging small tables costs milliseconds per request, a hundred times
the model itself. At load (:func:`prepare`) each model gets what a single request needs as plain
Python and numpy: the feature order, the calibrator object, the risk bands, the next-chapter
ranker's move counts and popularity per course. A request then builds one float32 row (or a few
candidate rows) and calls XGBoost's ``inplace_predict`` on it, the very call the batch path makes
on the same float32 values, so the answers are the batch answers bit for bit
(``tests/unit/test_serving_parts.py`` checks both paths against each other on random rows).

XGBoost's own predictor is kept rather than a tree walker written here: its float32 summation
order and sigmoid would have to be copied exactly for the isotonic calibration (steep in
places) to give the same probability to 1e-9, and the measured gain would not pay for that risk.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.bundle import ModelBundle
from ml.calibration import IsotonicCalibrator
from ml.models import dropout
from ml.models import next_chapter as next_chapter_model

NAN = float("nan")


@dataclass(frozen=True)
class Tabular:
    """A classifier or regressor scored from one feature dict (the online row)."""

    features: tuple[str, ...]
    calibrator: IsotonicCalibrator | None
    bands: dict[str, float]

    def row(self, values: Mapping[str, Any]) -> np.ndarray | None:
        """The model's float32 row, or None when the dict lacks a feature (the slow path then
        raises the library's clear error)."""
        try:
            row = [NAN if (v := values[f]) is None else float(v) for f in self.features]
        except (KeyError, TypeError, ValueError):
            return None
        return np.asarray(row, dtype=np.float64).astype(np.float32).reshape(1, -1)

    def probability(self, booster: xgb.Booster, x: np.ndarray) -> float:
        """``ModelBundle.predict(...)["probability"]`` for one row, without the frame."""
        raw = np.asarray(booster.inplace_predict(x))
        p = self.calibrator(raw) if self.calibrator is not None else np.clip(raw, 0.001, 0.999)
        return float(p[0])

    def band(self, p: float) -> str:
        b = self.bands
        return "high" if p >= b["high"] else "medium" if p >= b["medium"] else "low"


def top_factors(
    booster: xgb.Booster, names: Sequence[str], x: np.ndarray, top: int
) -> list[dict[str, Any]]:
    """The ``top`` largest SHAP contributions of one row (the same values and order as
    ``serving.predict.contributions``; the DMatrix needs no names: order is the booster's)."""
    if top <= 0:
        return []
    contrib = booster.predict(
        xgb.DMatrix(x, missing=np.nan, nthread=1), pred_contribs=True, validate_features=False
    )[0, :-1]
    row = x[0]
    return [
        {
            "feature": names[i],
            "value": None if math.isnan(row[i]) else float(row[i]),
            "contribution": round(float(contrib[i]), 6),
            "direction": "raises" if contrib[i] > 0 else "lowers",
        }
        for i in np.argsort(-np.abs(contrib))[:top]
        if contrib[i] != 0
    ]


@dataclass(frozen=True)
class Moves:
    """One student's chapter moves in one course, oldest first (the online store's row shape),
    with a per-entry memo: answers computed from these moves live exactly as long as they do."""

    from_chapter_id: tuple[str, ...] = ()
    to_chapter_id: tuple[str, ...] = ()
    from_position: tuple[int, ...] = ()
    to_position: tuple[int, ...] = ()
    transitioned_at: tuple[datetime, ...] = ()
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.to_chapter_id)

    @property
    def empty(self) -> bool:
        return not self.to_chapter_id


def moves_frame(student_id: str, course_id: str, moves: Moves) -> pd.DataFrame:
    """The moves as the library's ``features.chapter_transitions`` frame."""
    return pd.DataFrame(
        {
            "student_id": student_id,
            "course_id": course_id,
            "from_chapter_id": list(moves.from_chapter_id),
            "to_chapter_id": list(moves.to_chapter_id),
            "from_position": list(moves.from_position),
            "to_position": list(moves.to_position),
            "transitioned_at": pd.to_datetime(list(moves.transitioned_at), utc=True),
        }
    )


@dataclass(frozen=True)
class Ranker:
    """The next-chapter ranker's tables, indexed per course at load.

    It rebuilds ``ml.models.next_chapter.candidates`` for one student's latest move with numpy
    on a handful of rows instead of six DataFrame merges. Only the features it knows are built
    (:data:`KNOWN`); a model trained with any other feature is ranked by the library instead
    (``fast`` is False), and the unit tests compare both paths on random moves."""

    features: tuple[str, ...]
    chapters: dict[str, list[tuple[str, int]]]  # course -> (chapter, position) in table order
    in_order: dict[str, list[tuple[str, int]]]  # course -> the same, by position
    moves: dict[tuple[str, str, str], tuple[float, float]]  # (course, from, to) -> n_all, n_success
    out: dict[tuple[str, str], tuple[float, float]]  # (course, from) -> total n_all, n_success
    share: dict[tuple[str, str], float]  # (course, chapter) -> popularity share
    opened: dict[tuple[str, str], pd.Timestamp]  # (course, chapter) -> first opened by anyone
    success_next: dict[tuple[str, str], list[tuple[str, float]]]  # (course, from) -> to, n_success
    tables: Mapping[str, Any]  # the bundle's own, for the library path

    KNOWN: ClassVar[frozenset[str]] = frozenset(
        {
            "f_p_success",
            "f_p_all",
            "f_evidence",
            "f_popularity",
            "f_delta",
            "f_is_next",
            "f_ahead_of_frontier",
            "f_visited",
            "f_opened",
        }
    )

    @classmethod
    def of(cls, features: Sequence[str], tables: Mapping[str, Any]) -> Ranker:
        chapters: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for c in tables.get("chapters", []):
            chapters[c["course_id"]].append((c["chapter_id"], int(c["position"])))
        moves: dict[tuple[str, str, str], tuple[float, float]] = {}
        out: dict[tuple[str, str], tuple[float, float]] = {}
        success_next: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
        for m in tables.get("moves", []):
            n_all, n_success = float(m["n_all"]), float(m["n_success"])
            key = (m["course_id"], m["from_chapter_id"])
            moves[(*key, m["to_chapter_id"])] = (n_all, n_success)
            a, s = out.get(key, (0.0, 0.0))
            out[key] = (a + n_all, s + n_success)
            success_next[key].append((m["to_chapter_id"], n_success))
        totals: dict[str, int] = defaultdict(int)
        for p in tables.get("popularity", []):
            totals[p["course_id"]] += p["n"]
        share = {
            (p["course_id"], p["to_chapter_id"]): p["n"] / totals[p["course_id"]]
            for p in tables.get("popularity", [])
            if totals[p["course_id"]] > 0
        }
        opened: dict[tuple[str, str], pd.Timestamp] = {}
        for o in tables.get("opened") or []:
            at = pd.Timestamp(o["opened_at"])
            at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
            key = (o["course_id"], o["chapter_id"])
            opened[key] = min(at, opened.get(key, at))
        return cls(
            tuple(features),
            dict(chapters),
            {c: sorted(v, key=lambda cp: cp[1]) for c, v in chapters.items()},
            moves,
            out,
            share,
            opened,
            dict(success_next),
            tables,
        )

    @property
    def fast(self) -> bool:
        return set(self.features) <= self.KNOWN

    def candidates(self, course_id: str, moves: Moves) -> tuple[list[str], np.ndarray]:
        """The candidate chapters at the student's current position (sorted by id, as the
        library sorts them) and their float32 feature rows in the model's order."""
        current, here = moves.to_chapter_id[-1], moves.to_position[-1]
        frontier = max(max(moves.from_position), max(moves.to_position))
        visited = set(moves.from_chapter_id) | set(moves.to_chapter_id)
        limit = frontier + next_chapter_model.MAX_SKIP
        chosen = sorted(
            (c, p) for c, p in self.chapters.get(course_id, []) if c != current and p <= limit
        )
        if not chosen:
            return [], np.zeros((0, len(self.features)), dtype=np.float32)
        ids = [c for c, _ in chosen]
        position = np.asarray([p for _, p in chosen], dtype=np.float64)
        counts = np.asarray(
            [self.moves.get((course_id, current, c), (0.0, 0.0)) for c in ids], dtype=np.float64
        )
        out_all, out_success = self.out.get((course_id, current), (0.0, 0.0))
        n_ch = float(len(ids))
        smooth = next_chapter_model.SMOOTHING
        # Whole-column numpy operations, like the library's pandas ones (same ufuncs, same bits).
        delta = position - float(here)
        at = pd.Timestamp(moves.transitioned_at[-1]) + pd.Timedelta(seconds=1)
        at = at.tz_localize("UTC") if at.tzinfo is None else at  # the library reads UTC
        columns = {
            "f_p_success": (counts[:, 1] + smooth / n_ch) / (out_success + smooth),
            "f_p_all": (counts[:, 0] + smooth / n_ch) / (out_all + smooth),
            "f_evidence": np.log1p(np.full(len(ids), out_success)),
            "f_popularity": np.asarray([self.share.get((course_id, c), 0.0) for c in ids]),
            "f_delta": delta,
            "f_is_next": (delta == 1).astype(np.float64),
            "f_ahead_of_frontier": position - float(frontier),
            "f_visited": np.asarray([float(c in visited) for c in ids]),
            "f_opened": np.asarray(
                [float(c in visited or self.opened.get((course_id, c), at) < at) for c in ids]
            ),
        }
        x = np.column_stack([columns[f] for f in self.features]).astype(np.float32)
        return ids, x

    def recommend(
        self, booster: xgb.Booster, course_id: str, moves: Moves, top: int
    ) -> list[tuple[str, float]]:
        """``ml.models.next_chapter.recommend`` for one student: (chapter, score), best first,
        ties in chapter-id order (pandas' stable sort over the id-sorted candidates)."""
        if not self.fast:
            return self._library_recommend(booster, course_id, moves, top)
        chapters, x = self.candidates(course_id, moves)
        if not chapters:
            return []
        score = np.asarray(booster.inplace_predict(x), dtype=np.float32)
        order = sorted(range(len(chapters)), key=lambda i: -score[i])  # stable: ids stay sorted
        return [(chapters[i], float(score[i])) for i in order[:top]]

    def _library_recommend(
        self, booster: xgb.Booster, course_id: str, moves: Moves, top: int
    ) -> list[tuple[str, float]]:
        bundle = ModelBundle(
            "next_chapter", "ranker", list(self.features), booster, {}, self.tables
        )
        recs = next_chapter_model.recommend(bundle, moves_frame("-", course_id, moves), top=top)
        return [(str(r.chapter_id), float(r.score)) for r in recs.itertuples()]

    def shares(self, course_id: str, current: str) -> dict[str, float]:
        """Share of successful students' moves from ``current`` that went to each chapter."""
        nexts = self.success_next.get((course_id, current), [])
        total = sum(n for _, n in nexts)
        return {to: n / total for to, n in nexts if total > 0}


def prepare(bundle: ModelBundle) -> Tabular | Ranker | None:
    """What one request needs of ``bundle``, built once at load; None: serve via the library."""
    if bundle.booster is None or bundle.params.get("derived"):
        return None
    if bundle.kind == "ranker" and bundle.name == "next_chapter":
        return Ranker.of(bundle.features, bundle.tables)
    if bundle.kind == "classifier":
        calib = bundle.params.get("calibrator")
        return Tabular(
            tuple(bundle.features),
            IsotonicCalibrator.from_json(calib) if calib else None,
            bundle.params.get("risk_bands") or dropout.RISK_BANDS,
        )
    return None
