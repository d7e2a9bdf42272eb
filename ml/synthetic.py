"""Synthetic frames in the feature marts' shape, for unit tests and benchmarks that must not
depend on a warehouse (e.g. timing training on 50,000 student-courses).

The generating process is simple and known — a latent engagement that decays, a latent ability,
dropout driven by falling engagement — so a test can check that a model finds a planted signal
and that a baseline without it does worse. Column names follow the marts' conventions (``f_*``
features, ``label_*`` labels); the real marts' exact features are whatever dbt builds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

START = pd.Timestamp("2026-01-05")


def student_course_frame(n: int = 2000, *, weeks: int = 10, seed: int = 0) -> pd.DataFrame:
    """One row per student-course and week, until dropout (the row of the drop week is the last)."""
    rng = np.random.default_rng(seed)
    ability = rng.normal(0, 1, n)
    engagement = rng.normal(0, 1, n)
    decay = rng.exponential(0.15, n)
    start_week = rng.integers(0, 3, n)
    hazard_base = rng.uniform(0.02, 0.06, n)
    rows = []
    for w in range(weeks):
        eng_w = engagement - decay * w + rng.normal(0, 0.3, n)
        # Like the simulator: students drop out as engagement falls and when they expect to fail.
        hazard = hazard_base * np.exp(-1.0 * eng_w - 0.9 * ability)
        rows.append((w, eng_w, rng.random(n) < np.clip(hazard, 0, 0.6)))
    dropped_at = np.full(n, weeks)
    for w, _, hit in rows:
        dropped_at = np.where((dropped_at == weeks) & hit & (w >= 1), w, dropped_at)
    final = 100 / (1 + np.exp(-(0.9 * ability + 0.5 * engagement + rng.normal(0, 0.4, n))))
    frames = []
    for w, eng_w, _ in rows:
        alive = w <= dropped_at
        idx = np.nonzero(alive)[0]
        k = len(idx)
        e = eng_w[idx]
        active = np.clip(np.round(7 / (1 + np.exp(-e)) + rng.normal(0, 0.7, k)), 0, 7)
        frames.append(
            pd.DataFrame(
                {
                    "student_id": [f"stu_{i:07d}" for i in idx],
                    "course_id": [f"crs_{i % 7:03d}" for i in idx],
                    "as_of_date": START + pd.to_timedelta(7 * (w + start_week[idx]), unit="D"),
                    "course_day": 7 * w,
                    "course_length_days": 7 * weeks,
                    "f_active_days_last_7d": active,
                    "f_events_last_7d": np.round(np.exp(2.5 + 0.6 * e + rng.normal(0, 0.4, k))),
                    "f_minutes_last_7d": np.exp(3.5 + 0.5 * e + rng.normal(0, 0.5, k)),
                    "f_days_since_last_event": np.clip(rng.exponential(np.exp(-e) * 2), 0, 60),
                    "f_quiz_score_avg": np.where(
                        rng.random(k) < 0.15,
                        np.nan,
                        1 / (1 + np.exp(-(ability[idx] + rng.normal(0, 0.5, k)))),
                    ),
                    "f_videos_completed": rng.poisson(np.exp(1 + 0.4 * e)),
                    "f_course_progress": np.clip((w + 1) / weeks + rng.normal(0, 0.1, k), 0, 1),
                    "f_device_mobile_share": rng.beta(2, 5, k),
                    "f_noise_1": rng.normal(0, 1, k),
                    "f_noise_2": rng.normal(0, 1, k),
                    "label_dropout": (dropped_at[idx] < weeks).astype(float),
                    "label_final_score": np.where(dropped_at[idx] < weeks, np.nan, final[idx]),
                    "label_observed_on": START
                    + pd.to_timedelta(7 * (dropped_at[idx] + start_week[idx]), unit="D"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def student_topic_frame(
    n_students: int = 400, n_topics: int = 12, *, weeks: int = 8, seed: int = 0
) -> pd.DataFrame:
    """Weekly student-topic rows; the next-14-day correct share follows a latent ability."""
    rng = np.random.default_rng(seed)
    ability = rng.normal(0, 1, (n_students, n_topics)) + rng.normal(0, 0.7, (n_students, 1))
    easiness = rng.normal(0.5, 0.6, n_topics)
    answered = np.zeros((n_students, n_topics))
    correct = np.zeros((n_students, n_topics))
    frames = []
    for w in range(weeks):
        p = 1 / (1 + np.exp(-(ability + easiness)))
        n_next = rng.poisson(3, (n_students, n_topics))
        c_next = rng.binomial(n_next, p)
        s, t = np.nonzero(np.ones((n_students, n_topics)))
        share = np.where(answered > 0, correct / np.maximum(answered, 1), np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "student_id": [f"stu_{i:07d}" for i in s],
                    "course_id": [f"crs_{j % 2:03d}" for j in t],
                    "topic_id": [f"top_{j:03d}" for j in t],
                    "as_of_date": START + pd.Timedelta(days=7 * w),
                    "f_n_answers": answered[s, t],
                    "f_correct_share": share[s, t],
                    "f_student_correct_share": np.nanmean(
                        np.where(answered > 0, share, np.nan), axis=1
                    )[s]
                    if w
                    else np.nan,
                    "f_noise": rng.normal(0, 1, len(s)),
                    "label_next_correct_share": np.where(
                        n_next > 0, c_next / np.maximum(n_next, 1), np.nan
                    )[s, t],
                    "label_next_n": np.where(n_next > 0, n_next, np.nan)[s, t],
                }
            )
        )
        answered += n_next
        correct += c_next
    return pd.concat(frames, ignore_index=True)


def chapter_transitions_frame(
    n_students: int = 300, n_chapters: int = 8, *, seed: int = 0
) -> pd.DataFrame:
    """Moves between chapters: successful students mostly go in order, others skip back and forth."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_students):
        good = rng.random() < 0.5
        pos, t = 1, START + pd.Timedelta(hours=float(rng.uniform(0, 48)))
        for _ in range(int(rng.integers(4, 14))):
            if good:
                nxt = pos + 1 if rng.random() < 0.8 else max(1, pos - 1)
            else:
                nxt = int(rng.integers(1, n_chapters + 1))
            nxt = int(min(max(nxt, 1), n_chapters))
            if nxt == pos:
                continue
            t = t + pd.Timedelta(hours=float(rng.uniform(6, 72)))
            rows.append(
                {
                    "student_id": f"stu_{s:07d}",
                    "course_id": "crs_001",
                    "from_chapter_id": f"chp_{pos:02d}",
                    "to_chapter_id": f"chp_{nxt:02d}",
                    "transitioned_at": t,
                    "from_position": pos,
                    "to_position": nxt,
                    "student_final_score": 80.0 if good else 50.0,
                    "is_successful_student": good,
                }
            )
            pos = nxt
    return pd.DataFrame(rows)
