"""The simulated school: determinism, the contract, and the planted behaviours."""

from __future__ import annotations

import io
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from lms.contract import ContractViolation, validate_event_json
from lms.simulator.batch import run_simulation
from lms.simulator.config import SimulationConfig
from lms.simulator.live import run_live

CFG = SimulationConfig(students=300, courses=4, days=56, seed=11, cheater_share=0.03)


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("school")
    run_simulation(CFG, out, oltp_dsn=None, workers=2, part_lines=40_000)
    return out


def _lines(directory: Path) -> list[bytes]:
    out: list[bytes] = []
    for part in sorted(directory.glob("events-*.jsonl")):
        out.extend(part.read_bytes().splitlines())
    return out


@pytest.fixture(scope="module")
def events(school: Path) -> pd.DataFrame:
    """Valid events, one row per delivered line (duplicates included), in arrival order."""
    invalid = set(pd.read_parquet(school / "truth" / "invalid_events.parquet")["line"])
    rows = []
    for line in _lines(school):
        if line.decode() in invalid:
            continue
        doc = orjson.loads(line)
        rows.append(
            {
                "event_id": doc["event_id"],
                "event_type": doc["event_type"],
                "occurred_at": doc["occurred_at"],
                "student_id": doc["student_id"],
                "course_id": doc["course_id"],
                "session_id": doc["session_id"],
                "network_id": doc["client"].get("network_id"),
                **{f"p_{k}": v for k, v in doc["payload"].items()},
            }
        )
    frame = pd.DataFrame(rows)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    return frame


def _truth(school: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(school / "truth" / f"{name}.parquet")


def _dir_bytes(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_regardless_of_workers(tmp_path: Path) -> None:
    cfg = SimulationConfig(students=120, courses=3, days=21, seed=5, shard_students=50)
    run_simulation(cfg, tmp_path / "a", oltp_dsn=None, workers=1)
    run_simulation(cfg, tmp_path / "b", oltp_dsn=None, workers=2)
    a, b = _dir_bytes(tmp_path / "a"), _dir_bytes(tmp_path / "b")
    assert a.keys() == b.keys()
    assert "events-00001.jsonl" in a and "truth/students.parquet" in a
    for name in a:
        assert a[name] == b[name], name


def test_different_seed_different_events(tmp_path: Path) -> None:
    for seed in (5, 6):
        cfg = SimulationConfig(students=60, courses=2, days=14, seed=seed)
        run_simulation(cfg, tmp_path / str(seed), oltp_dsn=None, workers=1)
    a = (tmp_path / "5" / "events-00001.jsonl").read_bytes()
    b = (tmp_path / "6" / "events-00001.jsonl").read_bytes()
    assert a != b


def test_every_event_passes_the_contract_except_the_planted_invalid(school: Path) -> None:
    invalid = _truth(school, "invalid_events")
    planted = set(invalid["line"])
    assert len(planted) > 0
    seen_invalid = 0
    for line in _lines(school):
        text = line.decode()
        if text in planted:
            seen_invalid += 1
            with pytest.raises(ContractViolation):
                validate_event_json(line)
        else:
            validate_event_json(line)
    assert seen_invalid == len(invalid)
    assert invalid["reason"].nunique() >= 5


def test_manifest_and_parts(school: Path) -> None:
    manifest = orjson.loads((school / "manifest.json").read_bytes())
    lines = _lines(school)
    assert manifest["events"]["lines"] == len(lines)
    assert sum(p["lines"] for p in manifest["events"]["parts"]) == len(lines)
    assert len(manifest["events"]["parts"]) >= 2  # part_lines=40,000
    assert all(p["lines"] <= 40_000 for p in manifest["events"]["parts"])
    assert set(manifest["events"]["by_type"]) >= {"login", "quiz_submit", "live_class_join"}
    assert manifest["seed"] == CFG.seed
    assert manifest["time_range"]["occurred_min"] < manifest["time_range"]["occurred_max"]


def test_ids_unique_except_planted_duplicates(school: Path, events: pd.DataFrame) -> None:
    dups = set(_truth(school, "duplicate_events")["event_id"])
    counts = events["event_id"].value_counts()
    repeated = set(counts[counts > 1].index)
    assert repeated == dups
    assert (counts[counts > 1] == 2).all()
    # A retry is byte-identical.
    by_id: dict[str, set[bytes]] = defaultdict(set)
    for line in _lines(school):
        doc = orjson.loads(line)
        if doc.get("event_id") in dups:
            by_id[doc["event_id"]].add(line)
    assert all(len(v) == 1 for v in by_id.values())


def test_delivery_noise_rates(school: Path, events: pd.DataFrame) -> None:
    n_valid = events["event_id"].nunique()
    late = _truth(school, "late_events")
    dups = _truth(school, "duplicate_events")
    invalid = _truth(school, "invalid_events")
    assert 0.4 * CFG.late_rate < len(late) / n_valid < 1.8 * CFG.late_rate
    assert 0.5 * CFG.duplicate_rate < len(dups) / n_valid < 1.6 * CFG.duplicate_rate
    assert 0.3 * CFG.invalid_rate < len(invalid) / n_valid < 2.5 * CFG.invalid_rate
    assert (late["delay_s"] >= 3600).all()
    # Late events really arrive out of order: behind events that occurred hours after them.
    running_max = events["occurred_at"].cummax()
    lag = (running_max - events["occurred_at"]).dt.total_seconds()
    late_rows = events["event_id"].isin(set(late["event_id"]))
    assert (lag[late_rows] > 1800).mean() > 0.5
    assert (lag[~late_rows] > 1800).mean() < 0.01


def test_events_belong_to_enrolled_courses_and_stop_at_dropout(
    school: Path, events: pd.DataFrame
) -> None:
    enrollments = pd.read_parquet(school / "oltp" / "enrollments.parquet")
    enrolled = set(zip(enrollments["student_id"], enrollments["course_id"], strict=True))
    course_events = events[events["course_id"].notna()]
    pairs = set(zip(course_events["student_id"], course_events["course_id"], strict=True))
    assert pairs <= enrolled
    truth = _truth(school, "students")
    dropped = truth[truth["dropout_at"].notna()].set_index("student_id")["dropout_at"]
    assert len(dropped) > 0
    last = events.groupby("student_id")["occurred_at"].max()
    common = last.index.intersection(dropped.index)
    assert (last[common] <= dropped[common] + pd.Timedelta(days=1, hours=2)).all()
    withdrawn = enrollments[enrollments["status"] == "withdrawn"]
    assert set(withdrawn["student_id"]) <= set(dropped.index)
    completed = enrollments[enrollments["status"] == "completed"]
    assert completed["final_score"].notna().all()
    assert enrollments.loc[enrollments["status"] != "completed", "final_score"].isna().all()


def test_activity_declines_for_decaying_and_dropout_cohorts(
    school: Path, events: pd.DataFrame
) -> None:
    truth = _truth(school, "students").set_index("student_id")
    enrollments = pd.read_parquet(school / "oltp" / "enrollments.parquet")
    courses = pd.read_parquet(school / "oltp" / "courses.parquet").set_index("course_id")
    start = pd.Timestamp(CFG.start, tz="UTC")
    # Student-days with a running course: the only days a student could be active.
    could: dict[str, set[int]] = defaultdict(set)
    for row in enrollments.itertuples():
        lo = max((pd.Timestamp(courses.loc[row.course_id, "starts_on"], tz="UTC") - start).days, 0)
        hi = min(
            (pd.Timestamp(courses.loc[row.course_id, "ends_on"], tz="UTC") - start).days,
            CFG.days - 1,
        )
        lo = max(lo, (row.enrolled_at - start).days)
        could[row.student_id].update(range(lo, hi + 1))
    day = (events["occurred_at"] - start).dt.days
    active = set(zip(events["student_id"], day, strict=True))
    third = CFG.days // 3
    share: dict[str, list[float]] = {}
    for cohort in ("steady", "decaying", "dropout"):
        ids = truth.index[truth["cohort"] == cohort]
        early = [(s, d) for s in ids for d in could[s] if d < third]
        late = [(s, d) for s in ids for d in could[s] if d >= CFG.days - third]
        share[cohort] = [
            np.mean([p in active for p in early]),
            np.mean([p in active for p in late]) if late else 0.0,
        ]
    steady_ratio = share["steady"][1] / share["steady"][0]
    assert steady_ratio > 0.75, share
    assert share["decaying"][1] / share["decaying"][0] < steady_ratio - 0.2, share
    assert share["dropout"][1] / share["dropout"][0] < 0.5, share


def test_quiz_accuracy_rises_with_ability(school: Path, events: pd.DataFrame) -> None:
    answers = events[events["event_type"] == "question_answer"].drop_duplicates("event_id")
    truth = _truth(school, "students")
    honest = set(truth.loc[~truth["is_cheater"], "student_id"])
    answers = answers[answers["student_id"].isin(honest)]
    acc = answers.groupby(["student_id", "p_topic_id"])["p_is_correct"].agg(["mean", "size"])
    acc = acc[acc["size"] >= 4].reset_index()
    ability = _truth(school, "topic_ability")
    joined = acc.merge(
        ability, left_on=["student_id", "p_topic_id"], right_on=["student_id", "topic_id"]
    )
    assert len(joined) > 200
    assert joined["mean"].corr(joined["ability"]) > 0.3
    # Harder questions are answered correctly less often.
    questions = _truth(school, "questions")
    per_q = answers.groupby("p_question_id")["p_is_correct"].mean().rename("acc").reset_index()
    per_q = per_q.merge(questions, left_on="p_question_id", right_on="question_id")
    assert per_q["acc"].corr(per_q["difficulty_b"]) < -0.3


def test_cheaters_answer_faster_than_they_could_read(school: Path, events: pd.DataFrame) -> None:
    truth = _truth(school, "students")
    fast = set(truth.loc[truth["cheat_fast_answers"], "student_id"])
    honest = set(truth.loc[~truth["is_cheater"], "student_id"])
    assert fast
    answers = events[events["event_type"] == "question_answer"].drop_duplicates("event_id")
    questions = _truth(school, "questions").set_index("question_id")["reading_time_s"]
    ratio = answers["p_time_taken_s"] / answers["p_question_id"].map(questions)
    cheat_ratio = ratio[answers["student_id"].isin(fast)].median()
    honest_ratio = ratio[answers["student_id"].isin(honest)].median()
    assert cheat_ratio < 0.3 < 1.0 < honest_ratio
    assert answers.loc[answers["student_id"].isin(fast), "p_is_correct"].mean() > 0.9
    # Tab switching and a second network during quizzes.
    switchers = set(truth.loc[truth["cheat_tab_switching"], "student_id"])
    hidden = events[(events["event_type"] == "tab_hidden") & (events["p_context"] == "quiz")]
    if switchers:
        per_student = hidden["student_id"].value_counts()
        assert (
            per_student.reindex(list(switchers)).fillna(0).mean()
            > 5 * per_student.reindex(list(honest)).fillna(0).mean()
        )
    concurrent = set(truth.loc[truth["cheat_concurrent_sessions"], "student_id"])
    nets = events.groupby("student_id")["network_id"].nunique()
    if concurrent:
        assert (nets.reindex(list(concurrent)) >= 2).all()


def test_chapters_mostly_in_order(events: pd.DataFrame) -> None:
    starts = events[events["event_type"] == "quiz_start"].drop_duplicates("event_id")
    starts = starts.sort_values("occurred_at")
    starts = starts.drop_duplicates(["student_id", "p_chapter_id"])  # first attempt per chapter
    position = starts["p_chapter_id"].str.rsplit("_", n=1).str[1].astype(int)
    steps = position.groupby([starts["student_id"], starts["course_id"]]).diff().dropna()
    assert len(steps) > 200
    assert (steps > 0).mean() > 0.85
    assert (steps == 2).mean() > 0.01  # some skipping


def test_sessions_videos_live_and_feedback(school: Path, events: pd.DataFrame) -> None:
    types = set(events["event_type"])
    assert types == {
        "login", "logout", "page_view", "scroll_event", "video_play", "video_pause",
        "video_seek", "video_complete", "quiz_start", "question_answer", "quiz_submit",
        "assignment_submit", "live_class_join", "live_class_leave", "tab_hidden",
        "tab_visible", "feedback",
    }  # fmt: skip
    submits = events[events["event_type"] == "assignment_submit"]
    assert 0.02 < submits["p_is_late"].mean() < 0.9
    feedback = events[events["event_type"] == "feedback"]
    assert feedback["p_text"].str.contains("@", regex=False).any()
    attendance = _truth(school, "live_attendance")
    assert (~attendance["leave_event_sent"]).any()
    assert attendance.duplicated(["live_class_id", "student_id"]).any()  # rejoins
    assert (attendance["left_at"] > attendance["joined_at"]).all()
    # quiz_submit aggregates its answers.
    answers = events[events["event_type"] == "question_answer"].drop_duplicates("event_id")
    submits = events[events["event_type"] == "quiz_submit"].drop_duplicates("event_id")
    agg = answers.groupby("p_attempt_id").agg(n=("p_is_correct", "size"), c=("p_is_correct", "sum"))
    merged = submits.set_index("p_attempt_id").join(agg, how="inner")
    assert (merged["n"] == merged["p_n_questions"]).all()
    assert (merged["c"] == merged["p_n_correct"]).all()


def test_oltp_files_are_consistent(school: Path) -> None:
    oltp = {p.stem: pd.read_parquet(p) for p in (school / "oltp").glob("*.parquet")}
    assert oltp["students"]["email"].is_unique
    assert len(oltp["students"]) == CFG.students
    assert set(oltp["enrollments"]["student_id"]) <= set(oltp["students"]["student_id"])
    assert set(oltp["questions"]["topic_id"]) <= set(oltp["topics"]["topic_id"])
    assert set(oltp["quizzes"]["chapter_id"]) <= set(oltp["chapters"]["chapter_id"])
    truth = _truth(school, "students")
    assert "email" not in truth.columns and "full_name" not in truth.columns


def test_live_mode_stamps_now_at_the_rate() -> None:
    sink = io.BytesIO()
    summary = run_live(SimulationConfig(students=50, courses=2, days=14, seed=3), 400.0, 1.0, sink)
    lines = sink.getvalue().splitlines()
    assert len(lines) == summary.events
    assert 300 <= summary.events <= 450
    now = pd.Timestamp.now(tz="UTC")
    recent = 0
    for line in lines:
        try:
            event = validate_event_json(line)
        except ContractViolation:
            continue
        recent += abs((now - event.occurred_at).total_seconds()) < 120
    assert recent > 0.9 * len(lines)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--students", "0"], "--students"),
        (["--students", "-5"], "--students"),
        (["--days", "0"], "--days"),
        (["--live", "--rate", "0"], "--rate"),
        (["--out", "/proc/version/x"], "--out"),
    ],
)
def test_cli_rejects_bad_input_with_one_line(args: list[str], needle: str) -> None:
    lms = Path(sys.executable).parent / "lms"
    result = subprocess.run(
        [str(lms), "simulate", "--no-oltp", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], result.stderr


def test_parts_do_not_depend_on_write_chunking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parallel writer cuts the output into chunks; any cut gives the same parts, in global
    arrival order."""
    from lms.simulator import school as school_module

    cfg = SimulationConfig(students=90, courses=2, days=14, seed=8, shard_students=20)
    run_simulation(cfg, tmp_path / "a", oltp_dsn=None, workers=2, part_lines=5_000)
    monkeypatch.setattr(school_module, "WRITE_CHUNK_LINES", 777)
    manifest = run_simulation(cfg, tmp_path / "b", oltp_dsn=None, workers=1, part_lines=5_000)
    a, b = _dir_bytes(tmp_path / "a"), _dir_bytes(tmp_path / "b")
    assert a == b
    assert len(manifest["events"]["parts"]) >= 2
    lines = _lines(tmp_path / "b")
    assert len(lines) == manifest["events"]["lines"]
    for part in manifest["events"]["parts"]:
        assert (tmp_path / "b" / part["file"]).stat().st_size == part["bytes"]
    # Every line came back whole: head and rest gathered from the spool into one JSON document.
    for line in lines:
        assert isinstance(orjson.loads(line), dict)
