"""Turning online features into answers, one function per prediction (no FastAPI here).

Each function takes the request's model snapshot and the online store and returns a plain dict
(the response body), or raises :class:`NotFound` / :class:`ModelUnavailable`. The single and the
batch endpoints share them, so a batch item is exactly the answer its single call would give.

Cold start (documented in docs/api.md): an enrolled student with no feature row yet (the
scoring flow writes one per student-course every 7 days from enrollment) or with no answers /
chapter moves yet gets a 200 answer with ``cold_start: true`` and a ``reason``, never an error.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.bundle import ModelBundle
from ml.derived import apply as apply_derived
from ml.features import matrix
from ml.models import dropout, quiz_difficulty, topic_mastery
from serving.features import FeatureRow, OnlineStore
from serving.models import Loaded, Snapshot
from serving.prepared import Moves, Ranker, Tabular, top_factors

COLD_START_REASON = (
    "too little history: no weekly feature row has been computed for this enrollment yet "
    "(the first one appears 7 days after enrollment, at the next scoring run)"
)


class NotFound(Exception):
    """An unknown student, course or enrollment (404)."""


class ModelUnavailable(Exception):
    """A model the answer needs is not loaded (503: it is not promoted or the registry failed)."""


def need(snapshot: Snapshot, name: str) -> Loaded:
    loaded = snapshot.get(name)
    if loaded is None:
        raise ModelUnavailable(
            f"model {name!r} is not loaded (no promoted version in the registry yet?); "
            "see GET /ready/predictions"
        )
    return loaded


def check_enrolled(store: OnlineStore, student_id: str, course_id: str) -> str:
    """The enrollment's status, or :class:`NotFound` naming what is unknown."""
    enrollment = store.enrollment(student_id, course_id)
    if not enrollment.course_known:
        raise NotFound(f"unknown course {course_id!r}")
    if not enrollment.student_known:
        raise NotFound(f"unknown student {student_id!r}")
    if enrollment.status is None:
        raise NotFound(f"student {student_id!r} is not enrolled in course {course_id!r}")
    return enrollment.status


def _frame(features: dict[str, Any] | pd.DataFrame) -> pd.DataFrame:
    return features if isinstance(features, pd.DataFrame) else pd.DataFrame([features])


def contributions(bundle: ModelBundle, frame: pd.DataFrame, top: int) -> list[list[dict[str, Any]]]:
    """Per row, the ``top`` features with the largest SHAP contribution (XGBoost's exact tree
    SHAP, ``pred_contribs``), in log-odds for classifiers; positive raises the prediction."""
    if bundle.booster is None or top <= 0:
        return [[] for _ in range(len(frame))]
    derived = bundle.params.get("derived") or []
    if derived and any(f not in frame.columns for f in bundle.features):
        frame = apply_derived(frame, derived)
    x = matrix(frame, bundle.features)
    names = bundle.booster.feature_names
    contrib = bundle.booster.predict(
        xgb.DMatrix(x, feature_names=names, missing=np.nan, nthread=1), pred_contribs=True
    )[:, :-1]
    out: list[list[dict[str, Any]]] = []
    for row_x, row_c in zip(x, contrib, strict=True):
        order = np.argsort(-np.abs(row_c))[:top]
        out.append(
            [
                {
                    "feature": bundle.features[i],
                    "value": None if np.isnan(row_x[i]) else float(row_x[i]),
                    "contribution": round(float(row_c[i]), 6),
                    "direction": "raises" if row_c[i] > 0 else "lowers",
                }
                for i in order
                if row_c[i] != 0
            ]
        )
    return out


def risk(loaded: Loaded, frame: pd.DataFrame, top: int) -> tuple[np.ndarray, np.ndarray, list]:
    bundle = loaded.bundle
    p = bundle.predict(frame)["probability"].to_numpy(dtype=float)
    bands = dropout.risk_band(p, bundle.params.get("risk_bands"))
    return p, bands, contributions(bundle, frame, top)


def _base(student_id: str, course_id: str, status: str, row: FeatureRow | None) -> dict[str, Any]:
    return {
        "student_id": student_id,
        "course_id": course_id,
        "enrollment_status": status,
        "as_of_date": row.as_of_date.isoformat() if row else None,
        "features_updated_at": row.updated_at.isoformat() if row else None,
        "cold_start": row is None,
        "reason": COLD_START_REASON if row is None else None,
    }


def dropout_risk(
    snapshot: Snapshot, store: OnlineStore, student_id: str, course_id: str, *, top: int = 5
) -> dict[str, Any]:
    loaded = need(snapshot, "dropout")
    status = check_enrolled(store, student_id, course_id)
    row = store.course_features(student_id, course_id)
    out = _base(student_id, course_id, status, row) | {"model_version": loaded.version}
    if row is None:
        return out | {"probability": None, "risk_band": "unknown", "top_factors": []}
    key = ("dropout", loaded.version, top)
    scored = row.memo.get(key)
    if scored is None:
        scored = row.memo[key] = _score_dropout(loaded, row, top)
    return out | scored


def _score_dropout(loaded: Loaded, row: FeatureRow, top: int) -> dict[str, Any]:
    """The model part of a dropout answer: one float32 row through the prepared path, or the
    library's frame path when the model has none (derived features, another kind)."""
    bundle, fast = loaded.bundle, loaded.prepared
    x = fast.row(row.features) if isinstance(fast, Tabular) else None
    if isinstance(fast, Tabular) and x is not None and bundle.booster is not None:
        p = fast.probability(bundle.booster, x)
        band = fast.band(p)
        factors = top_factors(bundle.booster, bundle.features, x, top)
    else:
        probs, bands, many = risk(loaded, _frame(row.features), top)
        p, band, factors = float(probs[0]), str(bands[0]), many[0]
    return {
        "probability": p,
        "risk_band": band,
        "risk_band_thresholds": bundle.params.get("risk_bands") or dropout.RISK_BANDS,
        "top_factors": factors,
    }


def exam_score(
    snapshot: Snapshot, store: OnlineStore, student_id: str, course_id: str
) -> dict[str, Any]:
    loaded = need(snapshot, "final_score")
    status = check_enrolled(store, student_id, course_id)
    row = store.course_features(student_id, course_id)
    interval = loaded.bundle.params.get("interval") or {}
    out = _base(student_id, course_id, status, row) | {
        "model_version": loaded.version,
        "interval_coverage": interval.get("coverage"),
    }
    if row is None:
        return out | {"predicted_score": None, "low": None, "high": None}
    key = ("final_score", loaded.version)
    scored = row.memo.get(key)
    if scored is None:
        pred = loaded.bundle.predict(_frame(row.features)).iloc[0]
        scored = row.memo[key] = {
            "predicted_score": round(float(pred["prediction"]), 3),
            "low": round(float(pred["low"]), 3) if "low" in pred else None,
            "high": round(float(pred["high"]), 3) if "high" in pred else None,
        }
    return out | scored


def _mastery(snapshot: Snapshot, store: OnlineStore, student_id: str, course_id: str):
    loaded = need(snapshot, "topic_mastery")
    status = check_enrolled(store, student_id, course_id)
    rows = store.topic_rows(student_id, course_id)
    if rows.as_of_date is None:
        return loaded, status, rows.as_of_date, None
    return loaded, status, rows.as_of_date, topic_mastery.weak_topics(loaded.bundle, rows.frame)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


NO_ANSWERS = "too little history: the student has answered no questions in this course yet"


def weak_topics(
    snapshot: Snapshot, store: OnlineStore, student_id: str, course_id: str, *, k: int = 5
) -> dict[str, Any]:
    loaded, status, as_of, mastery = _mastery(snapshot, store, student_id, course_id)
    out = {
        "student_id": student_id,
        "course_id": course_id,
        "enrollment_status": status,
        "as_of_date": _iso(as_of),
        "model_version": loaded.version,
        "weak_threshold": loaded.bundle.params.get("weak_threshold"),
        "cold_start": mastery is None,
        "reason": NO_ANSWERS if mastery is None else None,
        "topics": [],
    }
    if mastery is None:
        return out
    has_evidence = mastery["n_evidence"].fillna(0) > 0
    if not has_evidence.any():
        out |= {"cold_start": True, "reason": NO_ANSWERS}
    ranked = mastery[has_evidence].head(k)
    out["topics"] = [
        {
            "topic_id": r.topic_id,
            "rank": i + 1,
            "mastery": round(float(r.mastery_p), 6),
            "is_weak": bool(r.is_weak),
            "answers_so_far": None if pd.isna(r.n_evidence) else int(r.n_evidence),
        }
        for i, r in enumerate(ranked.itertuples())
    ]
    return out


def quiz_difficulty_answer(
    snapshot: Snapshot,
    store: OnlineStore,
    student_id: str,
    course_id: str,
    *,
    topic_id: str | None = None,
    questions: int = 3,
) -> dict[str, Any]:
    policy = need(snapshot, "quiz_difficulty")
    loaded, status, as_of, mastery = _mastery(snapshot, store, student_id, course_id)
    target = float(policy.bundle.params["target"])
    out = {
        "student_id": student_id,
        "course_id": course_id,
        "enrollment_status": status,
        "as_of_date": _iso(as_of),
        "model_version": policy.version,
        "mastery_model_version": loaded.version,
        "target_success": target,
        "cold_start": mastery is None,
        "reason": NO_ANSWERS if mastery is None else None,
        "topics": [],
    }
    if mastery is None:
        return out
    if topic_id is not None:
        mastery = mastery[mastery["topic_id"] == topic_id]
        if mastery.empty:
            raise NotFound(f"course {course_id!r} has no topic {topic_id!r} for this student")
    bands = quiz_difficulty.recommend(policy.bundle, mastery)
    table = _questions(policy)
    table = table[table["course_id"] == course_id]
    for r in bands.itertuples():
        # The topic's questions in the recommended band first, then the others, each by how
        # close the expected success is to the target (a small topic may lack some bands).
        pool = table[table["topic_id"] == r.topic_id]
        expected = quiz_difficulty.success_probability(
            np.full(len(pool), r.mastery_p), pool["easiness"], pool["topic_easiness"]
        )
        pool = pool.assign(
            expected=expected,
            other_band=pool["band"] != r.recommended_band,
            gap=np.abs(expected - target),
        ).sort_values(["other_band", "gap"], kind="stable")[:questions]
        out["topics"].append(
            {
                "topic_id": r.topic_id,
                "mastery": round(float(r.mastery_p), 6),
                "recommended_band": r.recommended_band,
                "expected_success": round(float(r.expected_success), 6),
                "difficulty_low": float(r.difficulty_low),
                "difficulty_high": float(r.difficulty_high),
                "suggested_questions": [
                    {
                        "question_id": q.question_id,
                        "band": q.band,
                        "expected_success": round(float(q.expected), 6),
                    }
                    for q in pool.itertuples()
                ],
            }
        )
    return out


_TABLES: dict[tuple[str, str], pd.DataFrame] = {}


def _questions(policy: Loaded) -> pd.DataFrame:
    """The policy's question table as a frame, built once per loaded version."""
    key = (policy.name, policy.version)
    if key not in _TABLES:
        if len(_TABLES) > 8:
            _TABLES.clear()
        _TABLES[key] = pd.DataFrame(policy.bundle.tables["questions"])
    return _TABLES[key]


def next_chapters(
    snapshot: Snapshot, store: OnlineStore, student_id: str, course_id: str, *, k: int = 3
) -> dict[str, Any]:
    loaded = need(snapshot, "next_chapter")
    status = check_enrolled(store, student_id, course_id)
    moves = store.transitions(student_id, course_id)
    key = ("next_chapter", loaded.version, course_id, k)
    ranked = moves.memo.get(key)
    if ranked is None:
        ranked = moves.memo[key] = _rank_chapters(loaded, course_id, moves, k)
    return {
        "student_id": student_id,
        "course_id": course_id,
        "enrollment_status": status,
        "model_version": loaded.version,
    } | ranked


def _ranker(loaded: Loaded) -> Ranker:
    """The ranker's per-course tables (prepared at load; built here for a bundle without)."""
    if isinstance(loaded.prepared, Ranker):
        return loaded.prepared
    return Ranker.of(loaded.bundle.features, loaded.bundle.tables)


def _rank_chapters(loaded: Loaded, course_id: str, moves: Moves, k: int) -> dict[str, Any]:
    """The model part of a next-chapters answer, computed once per moves entry and version."""
    ranker = _ranker(loaded)
    chapters = ranker.in_order.get(course_id, [])
    if moves.empty:
        return {
            "current_chapter_id": None,
            "cold_start": True,
            "reason": "too little history: no chapter moves yet; the course's first chapters",
            "chapters": [
                {
                    "chapter_id": chapter,
                    "rank": i + 1,
                    "score": None,
                    "position": pos,
                    "reasons": ["start of the course, in course order"],
                }
                for i, (chapter, pos) in enumerate(chapters[:k])
            ],
        }
    if loaded.bundle.booster is None:
        raise ModelUnavailable("the next_chapter model has no booster")
    recs = ranker.recommend(loaded.bundle.booster, course_id, moves, k)
    position = dict(chapters)
    current = moves.to_chapter_id[-1]
    visited = set(moves.from_chapter_id) | set(moves.to_chapter_id)
    frontier = max(max(moves.from_position), max(moves.to_position))
    shares = ranker.shares(course_id, current)
    here = position.get(current, moves.to_position[-1])
    out: list[dict[str, Any]] = []
    for rank, (chapter, score) in enumerate(recs, start=1):
        pos = position.get(chapter)
        reasons = []
        if pos is not None and pos == here + 1:
            reasons.append("the next chapter in course order")
        if shares.get(chapter, 0) > 0:
            reasons.append(
                f"{shares[chapter]:.0%} of successful students went here next from {current}"
            )
        if chapter in visited:
            reasons.append("already opened before: a review")
        elif pos is not None and pos > frontier:
            reasons.append("new material just past the furthest chapter reached")
        out.append(
            {
                "chapter_id": chapter,
                "rank": rank,
                "score": round(score, 6),
                "position": pos,
                "reasons": reasons or ["ranked by the model from the student's path"],
            }
        )
    return {"current_chapter_id": current, "cold_start": False, "reason": None, "chapters": out}


def at_risk(
    snapshot: Snapshot,
    store: OnlineStore,
    course_id: str,
    *,
    limit: int = 50,
    min_band: str = "low",
    top: int = 3,
) -> dict[str, Any]:
    """Every student of the course with a feature row, scored now, riskiest first."""
    loaded = need(snapshot, "dropout")
    frame = store.course_frame(course_id)
    out: dict[str, Any] = {
        "course_id": course_id,
        "model_version": loaded.version,
        "as_of_date": None,
        "n_scored": len(frame),
        "min_band": min_band,
        "students": [],
    }
    if frame.empty:
        return out
    p, bands, _ = risk(loaded, frame, 0)
    order = np.argsort(-p, kind="stable")
    rank = {"low": 0, "medium": 1, "high": 2}
    keep = [i for i in order if rank[str(bands[i])] >= rank[min_band]][:limit]
    chosen = frame.iloc[keep]
    factors = contributions(loaded.bundle, chosen, top)
    out["as_of_date"] = _iso(max(frame["as_of_date"]))
    out["students"] = [
        {
            "student_id": str(frame["student_id"].iloc[i]),
            "probability": float(p[i]),
            "risk_band": str(bands[i]),
            "as_of_date": _iso(frame["as_of_date"].iloc[i]),
            "top_factors": f,
        }
        for i, f in zip(keep, factors, strict=True)
    ]
    return out
