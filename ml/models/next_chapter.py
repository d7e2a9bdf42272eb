"""Next chapter: a ranked list of chapters for a student to study next, learned from the moves of
students who did well, never recommending a chapter whose predecessors were not reached.

Data (``features.chapter_transitions``): consecutive chapters a student moved between, with the
chapters' positions in the course and whether the student was successful. Each move is a query:
the candidates are the course's other chapters up to one past the furthest the student has
reached (the order constraint), and the one the student opened next is the relevant item. An
XGBoost ranker (LambdaMART, ``rank:ndcg``) scores candidates from: the candidate's distance from
the current chapter and from the student's frontier, whether the student visited it already,
whether any student had opened it yet (not released otherwise), and the successful students'
move probability with how much evidence it rests on. Trained and evaluated on successful
students' moves (the path worth recommending); baselines rank by popularity, by course order
(next-in-order) and by the successful students' move probability.

Chapter-keyed statistics alone (move probability, popularity) lose to course order on a later
window: chapters are released over a term, so the training weeks' counts describe where students
were then, not where a student returning from a revision at the end of term goes. The relative
features carry over; see docs/ml.md ("Next chapter") for the figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.bundle import ModelBundle
from ml.errors import NotEnoughData
from ml.metrics import ranking
from ml.splits import apply_split, time_split
from ml.training import DEFAULT_PARAMS, TrainingResult, strongest, trim

FEATURES = [
    "f_p_success",
    "f_evidence",
    "f_delta",
    "f_is_next",
    "f_ahead_of_frontier",
    "f_visited",
    "f_opened",
]
MAX_SKIP = 1  # a candidate may be at most this many positions past the furthest chapter reached
SMOOTHING = 1.0


def chapters_of(transitions: pd.DataFrame) -> pd.DataFrame:
    """Every chapter the transitions mention, with its position in its course."""
    a = transitions[["course_id", "from_chapter_id", "from_position"]].set_axis(
        ["course_id", "chapter_id", "position"], axis=1
    )
    b = transitions[["course_id", "to_chapter_id", "to_position"]].set_axis(
        ["course_id", "chapter_id", "position"], axis=1
    )
    return pd.concat([a, b]).drop_duplicates(["course_id", "chapter_id"]).reset_index(drop=True)


def move_tables(train: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Move counts (successful students / everyone) and popularity from the training window."""
    ok = train["is_successful_student"].fillna(False).astype(bool)
    keys = ["course_id", "from_chapter_id", "to_chapter_id"]
    moves = train.groupby(keys).size().rename("n_all").to_frame()
    moves["n_success"] = train[ok].groupby(keys).size()
    moves = moves.fillna(0).reset_index()
    pop = train.groupby(["course_id", "to_chapter_id"]).size().rename("n").reset_index()
    return {"moves": moves.to_dict("records"), "popularity": pop.to_dict("records")}


def candidates(
    queries: pd.DataFrame,
    chapters: pd.DataFrame,
    tables: dict[str, Any],
    first_visit: pd.DataFrame,
    opened: pd.DataFrame,
    *,
    own_moves: bool = False,
) -> pd.DataFrame:
    """One row per (query, candidate chapter) with the ranker's features.

    ``queries``: query_id, student_id, course_id, from_chapter_id, from_position, frontier, at
    (and to_chapter_id, is_successful_student when ``own_moves``).

    ``own_moves``: the queries are moves the tables were counted from (the training window).
    Each query's own move is then taken out of the counts (leave-one-out), so that no training
    move's answer is part of its own features; moves scored later are never in the counts."""
    cand = queries.merge(chapters, on="course_id")
    cand = cand[cand["chapter_id"] != cand["from_chapter_id"]]
    cand = cand[cand["position"] <= cand["frontier"] + MAX_SKIP]
    moves = pd.DataFrame(
        tables["moves"],
        columns=["course_id", "from_chapter_id", "to_chapter_id", "n_all", "n_success"],
    )
    out_all = moves.groupby(["course_id", "from_chapter_id"])[["n_all", "n_success"]].sum()
    out_all.columns = ["out_all", "out_success"]
    cand = cand.merge(
        moves.rename(columns={"to_chapter_id": "chapter_id"}),
        on=["course_id", "from_chapter_id", "chapter_id"],
        how="left",
    ).merge(out_all.reset_index(), on=["course_id", "from_chapter_id"], how="left")
    n_ch = cand.groupby("query_id")["chapter_id"].transform("size").astype(float)
    for col in ("n_all", "n_success", "out_all", "out_success"):
        cand[col] = cand[col].fillna(0.0)
    if own_moves:
        own = (cand["chapter_id"] == cand["to_chapter_id"]).astype(float)
        ok = cand["is_successful_student"].fillna(False).astype(bool).astype(float)
        cand["n_all"] -= own
        cand["n_success"] -= own * ok
        cand["out_all"] -= 1.0
        cand["out_success"] -= ok
    else:
        own = 0.0
    cand["f_p_success"] = (cand["n_success"] + SMOOTHING / n_ch) / (cand["out_success"] + SMOOTHING)
    cand["f_evidence"] = np.log1p(cand["out_success"])
    cand["f_p_all"] = (cand["n_all"] + SMOOTHING / n_ch) / (cand["out_all"] + SMOOTHING)
    pop = pd.DataFrame(tables["popularity"], columns=["course_id", "to_chapter_id", "n"])
    pop["total"] = pop.groupby("course_id")["n"].transform("sum")
    cand = cand.merge(
        pop.rename(columns={"to_chapter_id": "chapter_id"}),
        on=["course_id", "chapter_id"],
        how="left",
    )
    total = cand["total"].fillna(0.0) - (1.0 if own_moves else 0.0)
    share = (cand["n"].fillna(0.0) - own) / total.where(total > 0)
    cand["f_popularity"] = share.fillna(0.0)
    cand["f_delta"] = (cand["position"] - cand["from_position"]).astype(float)
    cand["f_is_next"] = (cand["f_delta"] == 1).astype(float)
    cand["f_ahead_of_frontier"] = (cand["position"] - cand["frontier"]).astype(float)
    cand = cand.merge(first_visit, on=["student_id", "course_id", "chapter_id"], how="left")
    cand["f_visited"] = (cand["first_visit"].notna() & (cand["first_visit"] < cand["at"])).astype(
        float
    )
    cand = cand.merge(opened, on=["course_id", "chapter_id"], how="left")
    cand["f_opened"] = (cand["opened_at"].notna() & (cand["opened_at"] < cand["at"])).astype(float)
    return cand.sort_values(["query_id", "chapter_id"]).reset_index(drop=True)


def first_visits(transitions: pd.DataFrame) -> pd.DataFrame:
    """When each student first reached each chapter (as the source or the target of a move)."""
    t = transitions
    a = t[["student_id", "course_id", "from_chapter_id", "transitioned_at"]].set_axis(
        ["student_id", "course_id", "chapter_id", "at"], axis=1
    )
    b = t[["student_id", "course_id", "to_chapter_id", "transitioned_at"]].set_axis(
        ["student_id", "course_id", "chapter_id", "at"], axis=1
    )
    both = pd.concat([a, b])
    return (
        both.groupby(["student_id", "course_id", "chapter_id"])["at"]
        .min()
        .rename("first_visit")
        .reset_index()
    )


def opened_chapters(
    transitions: pd.DataFrame, known: list[dict[str, Any]] | None = None
) -> pd.DataFrame:
    """When any student first reached each chapter: a chapter nobody has opened yet is most
    likely not released, so a student who has caught up goes back rather than forward.

    ``known``: the ``opened`` table of a trained model, merged in (earliest time wins), so a
    student's own moves are enough to score them (serving)."""
    visits = first_visits(transitions)[["course_id", "chapter_id", "first_visit"]]
    visits = visits.rename(columns={"first_visit": "opened_at"})
    if known:
        old = pd.DataFrame(known, columns=["course_id", "chapter_id", "opened_at"])
        when = pd.to_datetime(old["opened_at"], utc=True, format="ISO8601")
        if getattr(transitions["transitioned_at"].dtype, "tz", None) is None:
            when = when.dt.tz_convert(None)  # compared with the moves' own (naive) times
        visits = pd.concat([visits, old.assign(opened_at=when)])
    return visits.groupby(["course_id", "chapter_id"])["opened_at"].min().reset_index()


def queries_of(transitions: pd.DataFrame) -> pd.DataFrame:
    """Each move as a ranking query, with the furthest position the student had reached before it."""
    t = transitions.sort_values(["student_id", "course_id", "transitioned_at"]).reset_index(
        drop=True
    )
    reached = np.maximum(t["from_position"], t["to_position"])
    prev = reached.groupby([t["student_id"], t["course_id"]]).shift(1)
    frontier = pd.concat([prev, t["from_position"]], axis=1).max(axis=1)
    t["frontier"] = frontier.groupby([t["student_id"], t["course_id"]]).cummax()
    t["query_id"] = np.arange(len(t))
    t["at"] = t["transitioned_at"]
    return t


def _rank_lists(cand: pd.DataFrame, score: np.ndarray) -> list[list[str]]:
    ranked = cand.assign(_s=score).sort_values(["query_id", "_s"], ascending=[True, False])
    return ranked.groupby("query_id", sort=True)["chapter_id"].agg(list).tolist()


def train(transitions: pd.DataFrame, *, params: dict[str, Any] | None = None) -> TrainingResult:
    if transitions.empty:
        raise NotEnoughData("features.chapter_transitions is empty")
    t = queries_of(transitions)
    # Only moves whose student's outcome is known (the course has ended) can say what successful
    # students do; moves in courses still running would leave the test window without labels.
    t = t[t["is_successful_student"].notna()]
    if t.empty:
        raise NotEnoughData(
            "next_chapter: no moves of students with a known outcome yet (no course has ended)"
        )
    # The windows come from the successful students' moves (the only ones queried and scored),
    # so the test window holds some even when the latest dates belong to a course still running,
    # where only withdrawn students have an outcome yet. Everyone's moves with a known outcome in
    # the same windows feed the popularity tables.
    day = pd.to_datetime(t["transitioned_at"], utc=True).dt.tz_convert(None).dt.normalize()
    t = t.assign(move_day=day)
    split, _, _, _ = time_split(t[t["is_successful_student"].astype(bool)], date_column="move_day")
    tr, va, te = apply_split(t, split, date_column="move_day")
    chapters = chapters_of(transitions)
    visits = first_visits(transitions)
    # Compared with each move's time (strictly before), so only the past is used.
    opened = opened_chapters(transitions)
    last_train = pd.Timestamp(split.train_end) + pd.Timedelta(days=1)
    known = opened[pd.to_datetime(opened["opened_at"], utc=True).dt.tz_convert(None) < last_train]
    tables = move_tables(tr) | {
        "chapters": chapters.to_dict("records"),
        "opened": known.to_dict("records"),
    }

    def prepared(part: pd.DataFrame, *, own_moves: bool = False) -> pd.DataFrame:
        ok = part[part["is_successful_student"].fillna(False).astype(bool)]
        cand = candidates(ok, chapters, tables, visits, opened, own_moves=own_moves)
        cand["label"] = (cand["chapter_id"] == cand["to_chapter_id"]).astype(float)
        has_target = cand.groupby("query_id")["label"].transform("max") > 0
        return cand[has_target]

    ctr, cva, cte = prepared(tr, own_moves=True), prepared(va), prepared(te)
    if cte.empty or ctr["query_id"].nunique() < 20:
        raise NotEnoughData(
            f"next_chapter: {ctr['query_id'].nunique()} training and {cte['query_id'].nunique()} "
            "test moves by successful students; need at least 20 and 1 (simulate or collect more days)"
        )
    cfg = {**DEFAULT_PARAMS, "objective": "rank:ndcg", "eval_metric": "ndcg@5", "max_depth": 3}
    cfg.update(params or {})
    dtr = _dmatrix(ctr)
    dva = _dmatrix(cva)
    booster = xgb.train(
        cfg,
        dtr,
        num_boost_round=300,
        evals=[(dva, "valid")],
        early_stopping_rounds=30,
        verbose_eval=False,
    )
    booster = trim(booster)
    bundle = ModelBundle(
        "next_chapter",
        "ranker",
        FEATURES,
        booster,
        {"xgboost": cfg, "max_skip": MAX_SKIP, "trees": booster.num_boosted_rounds()},
        tables,
    )
    actual = cte.groupby("query_id", sort=True)["to_chapter_id"].first().tolist()

    def evaluate(candidate: Any) -> dict[str, float]:
        cand = candidates(
            te[te["query_id"].isin(cte["query_id"])], chapters, candidate.tables, visits, opened
        )
        return ranking(_rank_lists(cand, candidate.raw(cand)), actual)

    base_order = -np.abs(cte["f_delta"] - 1) - 0.01 * cte["f_visited"]
    baselines = {
        "popularity": ranking(_rank_lists(cte, cte["f_popularity"].to_numpy()), actual),
        "next_in_order": ranking(_rank_lists(cte, base_order.to_numpy()), actual),
        "success_transitions": ranking(_rank_lists(cte, cte["f_p_success"].to_numpy()), actual),
    }
    return TrainingResult(
        name="next_chapter",
        bundle=bundle,
        split=split,
        primary_metric="ndcg_at_5",
        metrics=evaluate(bundle),
        baselines=baselines,
        best_baseline=strongest(baselines, "ndcg_at_5"),
        evaluate=evaluate,
        data={
            "rows": {
                "all": len(t),
                "train_queries": int(ctr["query_id"].nunique()),
                "valid_queries": int(cva["query_id"].nunique()),
                "test_queries": int(cte["query_id"].nunique()),
            },
            "features": FEATURES,
            "as_of_dates": [str(split.train_start), str(split.test_end)],
        },
    )


def _dmatrix(cand: pd.DataFrame) -> xgb.DMatrix:
    d = xgb.DMatrix(
        cand[FEATURES].to_numpy(np.float32), label=cand["label"].to_numpy(), feature_names=FEATURES
    )
    d.set_group(cand.groupby("query_id", sort=True).size().to_numpy())
    return d


def recommend(bundle: ModelBundle, transitions: pd.DataFrame, *, top: int = 3) -> pd.DataFrame:
    """Top chapters for every student-course's current position (its latest move's target)."""
    if transitions.empty:
        return pd.DataFrame(
            columns=["student_id", "course_id", "rank", "chapter_id", "score", "current_chapter_id"]
        )
    t = queries_of(transitions)
    last = t.sort_values("transitioned_at").groupby(["student_id", "course_id"]).tail(1).copy()
    # The student is now at the move's target; the frontier includes it.
    last["from_chapter_id"] = last["to_chapter_id"]
    last["frontier"] = np.maximum(last["frontier"], last["to_position"])
    last["from_position"] = last["to_position"]
    last["at"] = last["transitioned_at"] + pd.Timedelta(seconds=1)
    chapters = pd.DataFrame(bundle.tables["chapters"])
    opened = opened_chapters(transitions, bundle.tables.get("opened"))
    cand = candidates(last, chapters, bundle.tables, first_visits(transitions), opened)
    cand["score"] = bundle.raw(cand)
    cand = cand.sort_values(["query_id", "score"], ascending=[True, False])
    cand["rank"] = cand.groupby("query_id").cumcount() + 1
    cand = cand[cand["rank"] <= top]
    return cand.rename(columns={"from_chapter_id": "current_chapter_id"})[
        ["student_id", "course_id", "rank", "chapter_id", "score", "current_chapter_id"]
    ].reset_index(drop=True)
