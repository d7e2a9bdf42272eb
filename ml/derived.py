"""Features the ML code derives from a mart's own rows, named ``f_ctx_*``.

They combine rows of the same as-of date (e.g. a student's answers over all topics), so they use
nothing the mart's features did not already know at that date. A model lists the derivations it
was trained with (``params["derived"]``); :func:`apply` recomputes them wherever it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd


def student_context(frame: pd.DataFrame) -> pd.DataFrame:
    """The student's smoothed share correct over all topics at the same as-of date: ability is
    largely a trait of the student, and one topic's few answers estimate it poorly."""
    needed = {"f_n_answers", "f_n_correct", "student_id", "as_of_date"}
    if not needed <= set(frame.columns):
        return frame
    keys = [frame["student_id"], frame["as_of_date"]]
    n = frame["f_n_answers"].fillna(0).groupby(keys).transform("sum")
    c = frame["f_n_correct"].fillna(0).groupby(keys).transform("sum")
    out = frame.copy()
    out["f_ctx_student_share_correct"] = (c + 1.0) / (n + 2.0)
    out["f_ctx_student_n_answers"] = n
    out["f_ctx_topic_vs_student"] = (frame["f_n_correct"].fillna(0) + 1.0) / (
        frame["f_n_answers"].fillna(0) + 2.0
    ) - out["f_ctx_student_share_correct"]
    return out


DERIVATIONS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "student_context": student_context,
}


def apply(frame: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    for name in names:
        frame = DERIVATIONS[name](frame)
    return frame
