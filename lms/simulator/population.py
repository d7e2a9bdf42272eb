"""Students: personal data (OLTP only), hidden traits (truth only) and enrollments.

Everything that does not depend on day-to-day randomness is decided here, vectorised over the whole
school: engagement level and decay, per-topic ability, cheating, the dropout day (a daily hazard
driven by engagement and expected scores) and so each enrollment's final status and score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lms.simulator.catalog import DAY_MS, HOUR_MS, Catalog, day_start_ms
from lms.simulator.config import SimulationConfig
from lms.simulator.names import (
    COUNTRIES,
    COUNTRY_WEIGHTS,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
)

DEVICES = ("desktop", "mobile", "tablet", "other")
DEVICE_WEIGHTS = (0.55, 0.35, 0.08, 0.02)
CHEAT_BEHAVIOURS = ("fast_answers", "tab_switching", "concurrent_sessions")
NO_DROPOUT = -1
# Above this daily decay a student's engagement halves within ~3 months: labelled "decaying".
DECAYING_THRESHOLD = 0.006


@dataclass
class Population:
    student_ids: list[str]
    full_names: list[str]
    emails: list[str]
    countries: list[str]
    birth_dates: list[str | None]
    engagement_base: np.ndarray  # float, 0..1: probability-scale activity level at day 0
    decay_rate: np.ndarray  # float, per day
    theta: np.ndarray  # general ability
    ability: np.ndarray  # (students, topics) float32: per-topic ability (IRT theta)
    pref_hour: np.ndarray  # preferred hour of day for sessions
    device: np.ndarray  # index into DEVICES
    cheat: np.ndarray  # (students, 3) bool, columns as CHEAT_BEHAVIOURS
    dropout_day: np.ndarray  # int, NO_DROPOUT if the student stays
    # Enrollments, one row each: student index, course index, enrolled_at ms, interest.
    enr_student: np.ndarray
    enr_course: np.ndarray
    enr_at_ms: np.ndarray
    enr_interest: np.ndarray

    @property
    def is_cheater(self) -> np.ndarray:
        return np.asarray(self.cheat.any(axis=1), dtype=bool)

    def cohort(self) -> list[str]:
        out = []
        for d, r in zip(self.dropout_day.tolist(), self.decay_rate.tolist(), strict=True):
            out.append(
                "dropout" if d != NO_DROPOUT else "decaying" if r > DECAYING_THRESHOLD else "steady"
            )
        return out


def engagement_curve(base: np.ndarray, decay: np.ndarray, days: int) -> np.ndarray:
    """(students, days) engagement: the base level decaying exponentially over the term."""
    t = np.arange(days, dtype=np.float64)
    return base[:, None] * np.exp(-decay[:, None] * t[None, :])


def build_population(
    cfg: SimulationConfig, catalog: Catalog, rng: np.random.Generator
) -> Population:
    n = cfg.students
    first = rng.integers(len(FIRST_NAMES), size=n)
    last = rng.integers(len(LAST_NAMES), size=n)
    domain = rng.integers(len(EMAIL_DOMAINS), size=n)
    weights = np.asarray(COUNTRY_WEIGHTS, dtype=float)
    country = rng.choice(len(COUNTRIES), size=n, p=weights / weights.sum())
    age_days = rng.integers(16 * 365, 45 * 365, size=n)
    has_dob = rng.random(n) > 0.05
    start = np.datetime64(cfg.start.isoformat(), "D")
    dob = (start - age_days.astype("timedelta64[D]")).astype(str)
    student_ids, names, emails, birth = [], [], [], []
    # Plain lists: indexing numpy arrays one scalar at a time is slow.
    first_l, last_l, domain_l = first.tolist(), last.tolist(), domain.tolist()
    dob_l, has_dob_l = dob.tolist(), has_dob.tolist()
    for i in range(n):
        f, la = FIRST_NAMES[first_l[i]], LAST_NAMES[last_l[i]]
        student_ids.append(f"stu_{i + 1:07d}")
        names.append(f"{f} {la}")
        # The running number keeps emails unique, as a real sign-up form would enforce.
        local = f"{f}.{la}{i + 1}".lower().replace("-", "")
        emails.append(f"{local}@{EMAIL_DOMAINS[domain_l[i]]}")
        birth.append(str(dob_l[i]) if has_dob_l[i] else None)

    engagement_base = 0.2 + 0.75 * rng.beta(4.0, 2.5, size=n)
    decaying = rng.random(n) < 0.45
    decay_rate = np.where(
        decaying, rng.uniform(0.007, 0.03, size=n), rng.uniform(0.0, 0.0015, size=n)
    )
    theta = rng.normal(0.0, 1.0, size=n)
    ability = (theta[:, None] + rng.normal(0.0, 0.5, size=(n, catalog.n_topics))).astype(np.float32)
    pref_hour = np.clip(rng.normal(17.0, 3.0, size=n), 7.0, 22.5)
    device = rng.choice(len(DEVICES), size=n, p=np.asarray(DEVICE_WEIGHTS))

    cheat = np.zeros((n, len(CHEAT_BEHAVIOURS)), dtype=bool)
    n_cheaters = round(n * cfg.cheater_share)
    if cfg.cheater_share > 0 and n_cheaters == 0 and n >= 20:
        n_cheaters = 1
    if n_cheaters:
        who = rng.choice(n, size=n_cheaters, replace=False)
        kinds = rng.random((n_cheaters, len(CHEAT_BEHAVIOURS))) < 0.7
        kinds[~kinds.any(axis=1), 0] = True
        cheat[who] = kinds

    # Enrollments: 1-4 courses each, popular courses more often.
    pop = np.asarray([c.popularity for c in catalog.courses])
    k = np.minimum(1 + rng.poisson(1.0, size=n), cfg.courses)
    # k courses without replacement, each draw proportional to popularity among the courses not
    # yet chosen: the k smallest exponential keys E / popularity (Efraimidis-Spirakis), for every
    # student at once.
    keys = rng.exponential(size=(n, cfg.courses)) / pop[None, :]
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    chosen_mask = rank < k[:, None]
    enr_student_a, enr_course_a = (a.astype(np.int64) for a in np.nonzero(chosen_mask))
    course_start_ms = np.asarray([day_start_ms(cfg, c.start_day) for c in catalog.courses])
    lead = rng.uniform(0, 14 * DAY_MS, size=len(enr_student_a)).astype(np.int64)
    enr_at_ms = course_start_ms[enr_course_a] - lead + 8 * HOUR_MS
    enr_interest = rng.uniform(0.6, 1.4, size=len(enr_student_a))

    # Dropout: a daily hazard that grows as engagement falls and for students who expect to fail.
    eng = engagement_curve(engagement_base, decay_rate, cfg.days)
    expected_score = 1.0 / (1.0 + np.exp(-(theta - 0.1)))
    hazard = 0.0022 * np.exp(4.5 * (0.45 - eng)) * np.exp(2.5 * (0.5 - expected_score))[:, None]
    hazard = np.clip(hazard, 0.0, 0.25)
    hit = rng.random((n, cfg.days)) < hazard
    # A student cannot drop out of a school before they have a course to drop out of.
    first_day = np.full(n, cfg.days, dtype=np.int64)
    enr_day = np.maximum(0, (enr_at_ms - day_start_ms(cfg, 0)) // DAY_MS)
    np.minimum.at(first_day, enr_student_a, enr_day)
    hit &= np.arange(cfg.days)[None, :] >= (first_day[:, None] + 7)
    dropout_day = np.where(hit.any(axis=1), hit.argmax(axis=1), NO_DROPOUT)

    return Population(
        student_ids,
        names,
        emails,
        [COUNTRIES[c] for c in country.tolist()],
        birth,
        engagement_base,
        decay_rate,
        theta,
        ability,
        pref_hour,
        device,
        cheat,
        dropout_day,
        enr_student_a,
        enr_course_a,
        enr_at_ms,
        enr_interest,
    )


def enrollment_outcomes(
    cfg: SimulationConfig, catalog: Catalog, pop: Population, rng: np.random.Generator
) -> pd.DataFrame:
    """The enrollments table: withdrawn at dropout, completed with a final score if the course
    ended within the simulated days, active otherwise."""
    eng = engagement_curve(pop.engagement_base, pop.decay_rate, cfg.days)
    rows = []
    noise = rng.normal(0.0, 0.35, size=len(pop.enr_student))
    for e, (s, c) in enumerate(zip(pop.enr_student.tolist(), pop.enr_course.tolist(), strict=True)):
        course = catalog.courses[c]
        drop = int(pop.dropout_day[s])
        enrolled_ms = int(pop.enr_at_ms[e])
        status, completed, withdrawn, score = "active", None, None, None
        if drop != NO_DROPOUT and drop <= course.end_day:
            status = "withdrawn"
            withdrawn = max(day_start_ms(cfg, drop) + 20 * HOUR_MS, enrolled_ms + HOUR_MS)
        elif course.end_day < cfg.days:
            status = "completed"
            completed = day_start_ms(cfg, course.end_day) + 23 * HOUR_MS
            topics = [t for ch in course.chapters for t in ch.topic_indexes]
            skill = float(pop.ability[s, topics].mean()) - course.difficulty_shift
            lo, hi = max(0, course.start_day), min(cfg.days, course.end_day + 1)
            engaged = float(eng[s, lo:hi].mean()) if hi > lo else float(pop.engagement_base[s])
            z = 1.2 * skill + 3.0 * (engaged - 0.45) + noise[e]
            score = round(100.0 / (1.0 + np.exp(-z)), 2)
        rows.append(
            (
                f"enr_{e + 1:07d}",
                pop.student_ids[s],
                course.course_id,
                status,
                pd.Timestamp(enrolled_ms, unit="ms", tz="UTC"),
                None if completed is None else pd.Timestamp(completed, unit="ms", tz="UTC"),
                None if withdrawn is None else pd.Timestamp(withdrawn, unit="ms", tz="UTC"),
                score,
            )
        )
    return pd.DataFrame.from_records(
        rows,
        columns=[
            "enrollment_id",
            "student_id",
            "course_id",
            "status",
            "enrolled_at",
            "completed_at",
            "withdrawn_at",
            "final_score",
        ],
    )


def student_table(pop: Population) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "student_id": pop.student_ids,
            "full_name": pop.full_names,
            "email": pop.emails,
            "country": pop.countries,
            "date_of_birth": pop.birth_dates,
        }
    )


def student_truth(cfg: SimulationConfig, pop: Population) -> pd.DataFrame:
    drop = pop.dropout_day
    dropout_at = [
        None if d == NO_DROPOUT else pd.Timestamp(day_start_ms(cfg, int(d)), unit="ms", tz="UTC")
        for d in drop.tolist()
    ]
    return pd.DataFrame(
        {
            "student_id": pop.student_ids,
            "cohort": pop.cohort(),
            "engagement_base": pop.engagement_base,
            "decay_rate": pop.decay_rate,
            "dropout_day": pd.array(
                [None if d == NO_DROPOUT else d for d in drop.tolist()], "Int64"
            ),
            "dropout_at": pd.to_datetime(pd.Series(dropout_at, dtype=object), utc=True),
            "theta": pop.theta,
            "preferred_hour": pop.pref_hour,
            "primary_device": [DEVICES[d] for d in pop.device.tolist()],
            "is_cheater": pop.is_cheater,
            **{f"cheat_{name}": pop.cheat[:, j] for j, name in enumerate(CHEAT_BEHAVIOURS)},
        }
    )


def topic_ability_truth(catalog: Catalog, pop: Population) -> pd.DataFrame:
    """Per-topic ability, for the topics of the courses each student is enrolled in."""
    course_topics: dict[int, list[int]] = {}
    for t_index, topic in enumerate(catalog.topics):
        c = int(topic.course_id.split("_")[1]) - 1
        course_topics.setdefault(c, []).append(t_index)
    s_idx, t_idx = [], []
    for s, c in zip(pop.enr_student.tolist(), pop.enr_course.tolist(), strict=True):
        ts = course_topics.get(c, [])
        s_idx.extend([s] * len(ts))
        t_idx.extend(ts)
    s_arr, t_arr = np.asarray(s_idx, dtype=np.int64), np.asarray(t_idx, dtype=np.int64)
    return pd.DataFrame(
        {
            "student_id": np.asarray(pop.student_ids, dtype=object)[s_arr],
            "topic_id": np.asarray([t.topic_id for t in catalog.topics], dtype=object)[t_arr],
            "ability": pop.ability[s_arr, t_arr].astype(np.float64),
        }
    )
