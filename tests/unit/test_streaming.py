"""Unit tests of the streaming jobs' pure parts (no Flink, no services): attendance rules, the
writer's versioning, configuration, SQL helpers and the reference export.

The ``streaming`` package lives in its own environment; these modules import nothing from
pyflink, so the platform's test run checks them too.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lms.settings import REPO_ROOT

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from streaming.attendance import JOIN, LEAVE, attendance
from streaming.config import ConfigError, StreamConfig, Thresholds
from streaming.elastic import Action, Throttle, expand_doc, latest_per_id, template_body
from streaming.reference import Reference, iso_ms
from streaming.sql import epoch_ms, iso, seconds

MIN = 60_000
START = int(datetime(2026, 1, 8, 17, tzinfo=UTC).timestamp() * 1000)
END = START + 90 * MIN


def test_attendance_counts_minutes_inside_the_schedule() -> None:
    doc = attendance([(START - 5 * MIN, JOIN, "a"), (START + 30 * MIN, LEAVE, "b")], (START, END))
    assert doc["minutes"] == 30.0
    assert doc["attendance_share"] == round(30 / 90, 4)
    assert not doc["in_class"] and not doc["missing_leave"]


def test_attendance_reconnection_and_duplicates() -> None:
    events = [
        (START, JOIN, "a"),
        (START + 10 * MIN, LEAVE, "b"),
        (START + 10 * MIN, LEAVE, "b"),  # delivered twice
        (START + 15 * MIN, JOIN, "c"),
        (START + 16 * MIN, JOIN, "d"),  # second device: already in
        (START + 45 * MIN, LEAVE, "e"),
    ]
    doc = attendance(events, (START, END))
    assert doc["minutes"] == 40.0
    assert doc["joins"] == 2
    assert doc["events"] == 5


def test_attendance_missing_leave_runs_to_the_scheduled_end() -> None:
    doc = attendance([(START + 20 * MIN, JOIN, "a")], (START, END))
    assert doc["missing_leave"] and doc["in_class"]
    assert doc["minutes"] == 70.0


def test_attendance_leave_without_join_counts_from_the_start() -> None:
    doc = attendance([(START + 25 * MIN, LEAVE, "a")], (START, END))
    assert doc["inferred_join"]
    assert doc["minutes"] == 25.0


def test_attendance_order_of_arrival_does_not_matter() -> None:
    events = [(START + 50 * MIN, LEAVE, "b"), (START + 10 * MIN, JOIN, "a")]
    assert attendance(events, (START, END))["minutes"] == 40.0


def test_latest_version_wins_within_a_batch() -> None:
    batch = [
        Action("i", "x", 3, {"n": 3}),
        Action("i", "x", 2, {"n": 2}),  # a retraction or an older replay
        Action("i", "y", None, {"n": 1}),
        Action("i", "y", None, {"n": 2}),  # unversioned: the last write wins
    ]
    chosen = {a.doc_id: a.doc["n"] for a in latest_per_id(batch)}
    assert chosen == {"x": 3, "y": 2}


def test_throttle_writes_a_key_at_most_once_per_step() -> None:
    throttle = Throttle(10_000)
    admitted = [t for t in (0, 1_000, 9_999, 10_000, 12_000, 20_500) if throttle.admit("a", t)]
    assert admitted == [0, 10_000, 20_500]
    assert throttle.admit("b", 1_000)  # a key's first version passes at once
    assert not throttle.admit("a", 5_000)  # older than what was written: nothing to write
    assert throttle.held_back == 4
    assert all(Throttle(0).admit("a", 5) for _ in range(3))  # step 0: everything passes


def test_throttle_forgets_keys_that_would_pass_anyway() -> None:
    throttle = Throttle(10_000)
    for k in range(5_000):
        throttle.admit(f"old{k}", 0)
    for k in range(4_096):
        throttle.admit(f"new{k}", 60_000)
    assert "old1" not in throttle.last and "new1" in throttle.last
    assert throttle.admit("old1", 1_000)  # forgotten: passes (Elasticsearch keeps the newest)
    assert not throttle.admit("new1", 65_000)


def test_expand_doc_nests_json_text() -> None:
    doc = expand_doc('{"a": 1, "evidence_json": "[{\\"event_id\\": \\"e\\"}]"}')
    assert doc == {"a": 1, "evidence": [{"event_id": "e"}]}


def test_templates_match_only_their_index() -> None:
    body = template_body("lms-live-", "alerts")
    assert body["index_patterns"] == ["lms-live-alerts"]
    assert body["template"]["mappings"]["properties"]["evidence"] == {
        "type": "object",
        "enabled": False,
    }


def test_thresholds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMS_STREAM_FAST_ANSWER_MIN", "5")
    monkeypatch.setenv("LMS_STREAM_IDLE_DAYS", "2.5")
    t = Thresholds.from_env()
    assert t.fast_answer_min == 5 and t.idle_days == 2.5


def test_bad_configuration_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMS_STREAM_TAB_HIDDEN_MIN", "many")
    with pytest.raises(ConfigError, match="LMS_STREAM_TAB_HIDDEN_MIN"):
        Thresholds.from_env()
    monkeypatch.delenv("LMS_STREAM_TAB_HIDDEN_MIN")
    monkeypatch.setenv("LMS_STREAM_INDEX_PREFIX", "other-")
    with pytest.raises(ConfigError, match="lms-live-"):
        StreamConfig.from_env()


def test_sql_helpers() -> None:
    assert seconds(300) == "INTERVAL '0 00:05:00' DAY TO SECOND"
    assert seconds(3 * 86_400 + 61) == "INTERVAL '3 00:01:01' DAY TO SECOND"
    assert "yyyy-MM-dd''T''HH:mm:ss.SSS''Z''" in iso("t")
    assert "UNIX_TIMESTAMP" in epoch_ms("t")
    assert iso_ms(START) == "2026-01-08T17:00:00.000Z"


def test_reference_lookups() -> None:
    ref = Reference(
        courses={"c": {"teacher_ids": ["t1"], "starts_on": "2026-01-05", "ends_on": "2026-02-01"}},
        questions={"q": {"reading_time_s": 12.5}},
        quizzes={"z": {"pass_pct": None}},
        live_classes={
            "l": {"starts_at": "2026-01-08T17:00:00Z", "ends_at": "2026-01-08T18:30:00Z"}
        },
    )
    assert ref.reading_time_s("q") == 12.5 and ref.reading_time_s("nope") is None
    assert ref.pass_pct("z", 60.0) == 60.0
    assert ref.teacher_ids("c") == ["t1"]
    assert ref.course_running("c", datetime(2026, 1, 10, tzinfo=UTC))
    assert not ref.course_running("c", datetime(2026, 3, 1, tzinfo=UTC))
    assert ref.class_schedule("l") == (START, END)


def test_reference_export_from_oltp_rows() -> None:
    from lms.cli.stream import build_reference

    ref = build_reference(
        {
            "courses": [{"course_id": "c", "starts_on": "2026-01-05", "ends_on": "2026-02-01"}],
            "course_teachers": [{"course_id": "c", "teacher_id": "t1"}],
            "topics": [{"topic_id": "p", "chapter_id": "h"}],
            "quizzes": [{"quiz_id": "z", "chapter_id": "h", "pass_pct": 50}],
            "questions": [
                {"question_id": "q", "quiz_id": "z", "topic_id": "p", "reading_time_s": 9}
            ],
            "live_classes": [
                {
                    "live_class_id": "l",
                    "course_id": "c",
                    "teacher_id": "t2",
                    "starts_at": datetime(2026, 1, 8, 17, tzinfo=UTC),
                    "ends_at": datetime(2026, 1, 8, 18, 30, tzinfo=UTC),
                }
            ],
        }
    )
    assert ref["courses"]["c"]["teacher_ids"] == ["t1", "t2"]
    assert ref["live_classes"]["l"]["starts_at"] == "2026-01-08T17:00:00.000Z"
    assert ref["questions"]["q"]["reading_time_s"] == 9.0
    assert ref["chapter_topics"] == {"h": ["p"]}


def test_a_lower_priority_covers_the_jobs_whole_session_and_not_the_callers() -> None:
    from lms.cli.stream import _lower_session_priority

    own = Path("/proc/self/autogroup")
    if not own.exists():
        pytest.skip("the kernel does not group processes by session (no autogroup)")
    before = own.read_text()
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        _lower_session_priority(child.pid, 7)
        assert Path(f"/proc/{child.pid}/autogroup").read_text().strip().endswith("nice 7")
        assert own.read_text() == before
    finally:
        child.kill()
        child.wait()
