"""Each model on synthetic mart-shaped frames with a planted signal: it must find the signal,
beat its baseline on the later window, and survive the registry's file format unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.bundle import ModelBundle
from ml.models import dropout, final_score, next_chapter, quiz_difficulty, topic_mastery
from ml.synthetic import chapter_transitions_frame, student_course_frame, student_topic_frame


@pytest.fixture(scope="module")
def course_frame() -> pd.DataFrame:
    return student_course_frame(2500, weeks=10, seed=3)


def _round_trip(bundle: ModelBundle) -> ModelBundle:
    return ModelBundle.from_files(bundle.to_files())


def test_dropout_beats_the_last_week_activity_rule_and_is_calibrated(
    course_frame: pd.DataFrame,
) -> None:
    result = dropout.train(course_frame)
    assert result.beats_baseline
    assert result.bundle.params["baseline_rule"]["column"] == "f_active_days_last_7d"
    assert result.metrics["roc_auc"] > result.baselines["last_week_activity"]["roc_auc"]
    assert result.metrics["ece"] < 0.08
    # the noise columns carry nothing: the model must not lean on them
    gain = result.bundle.booster.get_score(importance_type="total_gain")
    assert gain.get("f_noise_1", 0) < gain["f_active_days_last_7d"]


def test_a_stored_model_predicts_exactly_what_was_evaluated(course_frame: pd.DataFrame) -> None:
    result = dropout.train(course_frame)
    again = _round_trip(result.bundle)
    sample = course_frame.sample(500, random_state=0)
    assert np.allclose(result.bundle.predict(sample), again.predict(sample))
    assert result.evaluate(again) == result.metrics


def test_risk_bands() -> None:
    assert dropout.risk_band(np.array([0.05, 0.3, 0.8])).tolist() == ["low", "medium", "high"]


def test_final_score_beats_the_mean_and_its_interval_covers_about_80_percent(
    course_frame: pd.DataFrame,
) -> None:
    result = final_score.train(course_frame)
    assert result.beats_baseline
    assert result.metrics["rmse"] < result.baselines["mean_score"]["rmse"]
    assert 0.65 < result.metrics["interval_coverage"] < 0.92
    out = _round_trip(result.bundle).predict(course_frame.head(200))
    assert out["prediction"].between(0, 100).all()
    assert (out["low"] <= out["prediction"]).all() and (out["prediction"] <= out["high"]).all()


def test_topic_mastery_beats_topic_and_student_means() -> None:
    frame = student_topic_frame(400, 12, weeks=8, seed=4)
    result = topic_mastery.train(frame)
    assert result.beats_baseline
    for baseline in ("topic_mean", "student_mean"):
        assert result.metrics["rmse"] < result.baselines[baseline]["rmse"]
    latest = frame[frame["as_of_date"] == frame["as_of_date"].max()]
    weak = topic_mastery.weak_topics(_round_trip(result.bundle), latest)
    first = weak[weak["weak_rank"] == 1].set_index(["student_id", "course_id"])["mastery_p"]
    assert (first <= weak.groupby(["student_id", "course_id"])["mastery_p"].min() + 1e-12).all()
    assert {"n_evidence", "is_weak"} <= set(weak.columns)


def test_next_chapter_learns_the_path_and_respects_the_order() -> None:
    transitions = chapter_transitions_frame(400, 8, seed=5)
    result = next_chapter.train(transitions)
    assert result.metrics["ndcg_at_5"] > result.baselines["popularity"]["ndcg_at_5"]
    recs = next_chapter.recommend(_round_trip(result.bundle), transitions, top=3)
    assert set(recs["rank"]) == {1, 2, 3} or recs.groupby(["student_id"])["rank"].max().min() >= 1
    positions = transitions.groupby("to_chapter_id")["to_position"].first()
    reached = pd.concat(
        [
            transitions.groupby("student_id")["from_position"].max(),
            transitions.groupby("student_id")["to_position"].max(),
        ],
        axis=1,
    ).max(axis=1)
    recs = recs.assign(
        position=recs["chapter_id"].map(positions), reached=recs["student_id"].map(reached)
    )
    assert (recs["position"] <= recs["reached"] + next_chapter.MAX_SKIP).all()
    assert (recs["chapter_id"] != recs["current_chapter_id"]).all()


def test_quiz_difficulty_gives_weaker_students_easier_bands() -> None:
    rng = np.random.default_rng(6)
    questions = pd.DataFrame(
        {
            "question_id": [f"q{i}" for i in range(60)],
            "course_id": "c1",
            "topic_id": [f"t{i % 3}" for i in range(60)],
            "n_answers": 40,
            "p_correct": rng.uniform(0.2, 0.95, 60),
        }
    )
    policy = _round_trip(quiz_difficulty.build(questions, mastery_version=None, target=0.7))
    mastery = pd.DataFrame(
        {
            "student_id": ["weak", "strong"],
            "course_id": "c1",
            "topic_id": "t0",
            "mastery_p": [0.3, 0.9],
        }
    )
    rec = quiz_difficulty.recommend(policy, mastery).set_index("student_id")
    order = {band: i for i, band in enumerate(quiz_difficulty.BANDS)}
    assert order[rec.loc["weak", "recommended_band"]] < order[rec.loc["strong", "recommended_band"]]
    assert (rec["expected_success"] - 0.7).abs().max() < 0.2


def test_rows_of_courses_still_running_are_not_trained_on() -> None:
    frame = pd.DataFrame(
        {
            "as_of_date": pd.to_datetime(["2026-03-01", "2026-03-01", "2026-03-08"]),
            "course_day": [20, 20, 27],
            # the first course ends (last day 2026-03-10) by the horizon, the second does not
            "course_length_days": [30, 60, 30],
            "label_observed_on": pd.to_datetime(["2026-03-10", "2026-03-02", "2026-03-10"]),
        }
    )
    kept = dropout.uncensored(frame)
    assert kept.index.tolist() == [0, 2]


def test_next_chapter_tests_on_successful_moves_when_the_latest_dates_have_none() -> None:
    # A course still running fills the latest dates, and there only withdrawn students have an
    # outcome (unsuccessful): the test window must still hold successful students' moves.
    transitions = chapter_transitions_frame(400, 8, seed=5)
    last = pd.to_datetime(transitions["transitioned_at"]).max()
    running = transitions[~transitions["is_successful_student"]].head(300).copy()
    running["course_id"] = "crs_002"
    running["from_chapter_id"] = running["from_chapter_id"].str.replace("chp_", "chp_b")
    running["to_chapter_id"] = running["to_chapter_id"].str.replace("chp_", "chp_b")
    offsets = pd.to_timedelta(np.arange(len(running)) % 20 + 1, unit="D")
    running["transitioned_at"] = last + offsets
    result = next_chapter.train(pd.concat([transitions, running], ignore_index=True))
    assert result.split.test_end <= last.date()
    assert result.metrics["ndcg_at_5"] > result.baselines["popularity"]["ndcg_at_5"]
