"""The streaming jobs on the real services: simulator → collector → Kafka → PyFlink → Elasticsearch.

One small simulated school (with planted cheaters) goes through a collector started for this
module into its own single-partition topic (so arrival order is the order posted). The jobs
(all of them, one Flink mini-cluster) read the first half, are stopped and restarted from their
checkpoint, then read the second half. The tests then compare the live indices with the
simulator's truth and with a recomputation over the same events.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from elasticsearch import Elasticsearch

from ingestion.collector.process import CollectorProcess
from ingestion.post import post_files
from lms.auth.manage import create_key
from lms.auth.store import PostgresKeyStore
from lms.cli.stream import launch, stop_pid
from lms.services.manager import ServiceManager
from lms.settings import Settings, get_settings
from lms.simulator.batch import run_simulation
from lms.simulator.config import SimulationConfig

pytestmark = pytest.mark.integration

WINDOW_S, SLIDE_S, LATENESS_S = 300, 30, 30
INDICES = (
    "active-students",
    "presence",
    "engagement",
    "attendance",
    "alerts",
    "triggers",
    "late-events",
    "courses",
    "live-classes",
)


def wait_for(what: str, check: Callable[[], bool], timeout_s: float, every_s: float = 3) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def all_docs(es: Elasticsearch, index: str) -> dict[str, dict[str, Any]]:
    es.indices.refresh(index=index)
    docs: dict[str, dict[str, Any]] = {}
    page = es.search(index=index, size=5000, scroll="1m", query={"match_all": {}})
    while page["hits"]["hits"]:
        docs.update({h["_id"]: h["_source"] for h in page["hits"]["hits"]})
        page = es.scroll(scroll_id=page["_scroll_id"], scroll="1m")
    es.clear_scroll(scroll_id=page["_scroll_id"])
    return docs


def settled(es: Elasticsearch, index: str, quiet_s: float = 15) -> Callable[[], bool]:
    """True once the index has documents and its count has not moved for ``quiet_s``."""
    seen = {"count": -1, "since": time.monotonic()}

    def check() -> bool:
        if not es.indices.exists(index=index):
            return False  # the jobs create their indices when they start
        es.indices.refresh(index=index)
        count = int(es.count(index=index)["count"])
        if count != seen["count"]:
            seen.update(count=count, since=time.monotonic())
            return False
        return count > 0 and time.monotonic() - seen["since"] >= quiet_s

    return check


def reached_end(es: Elasticsearch, index: str, lines: list[bytes]) -> Callable[[], bool]:
    """True once a sliding window ending near the newest posted event time is published."""
    stamps = []
    for line in lines:
        try:
            stamps.append(json.loads(line).get("occurred_at"))
        except (ValueError, AttributeError):
            continue  # the simulator's invalid lines
    # Invalid timestamps (the simulator plants some) become NaT and are skipped.
    times = pd.to_datetime(pd.Series(stamps), utc=True, errors="coerce", format="ISO8601")
    slide = pd.Timedelta(seconds=SLIDE_S)
    # Windows close once the watermark (newest event time - lateness) passes their end; the last
    # one published is the last closed window that holds an event.
    closed = (times.max() - pd.Timedelta(seconds=LATENESS_S)).floor(f"{SLIDE_S}s")
    last_event = times[times.dt.floor(f"{SLIDE_S}s") + slide <= closed].max()
    last_end = min(closed, last_event.floor(f"{SLIDE_S}s") + pd.Timedelta(seconds=WINDOW_S))
    target = last_end - slide

    def check() -> bool:
        if not es.indices.exists(index=index):
            return False
        es.indices.refresh(index=index)
        query = {"range": {"window_end": {"gte": target.isoformat()}}}
        return int(es.count(index=index, query=query)["count"]) > 0

    return check


class Stream:
    """The streaming jobs as a child process, stopped by its pid."""

    def __init__(self, settings: Settings, reference_dir: Path, env: dict[str, str], log: Path):
        self.settings, self.reference_dir, self.env, self.log = settings, reference_dir, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = launch(
            self.settings,
            ["all"],
            reference_dir=self.reference_dir,
            log_path=self.log,
            extra_env=self.env,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            stop_pid(self.proc.pid)


@pytest.fixture(scope="module")
def run(
    services: ServiceManager, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    run_id = uuid.uuid4().hex[:8]
    work = tmp_path_factory.mktemp("stream")
    topic = f"lms.test.stream.raw.{run_id}"
    settings = get_settings().model_copy(
        update={"kafka_topic_raw": topic, "state_dir": work / "state"}
    )
    prefix = f"lms-live-t{run_id}-"
    school_dir = work / "school"
    cfg = SimulationConfig(students=150, courses=2, days=14, seed=5, cheater_share=0.1)
    manifest = run_simulation(cfg, school_dir, oltp_dsn=None, workers=1)

    collector_env = {
        **os.environ,
        "LMS_KAFKA_TOPIC_RAW": topic,
        "LMS_KAFKA_TOPIC_DEAD_LETTER": f"lms.test.stream.dlq.{run_id}",
        "LMS_KAFKA_RAW_PARTITIONS": "1",
    }
    collector = CollectorProcess(log_path=work / "collector.log", env=collector_env)
    url = collector.url

    stream_env = {
        "LMS_STREAM_INDEX_PREFIX": prefix,
        "LMS_STREAM_GROUP_ID": f"lms-test-stream-{run_id}",
        "LMS_STREAM_CHECKPOINT_DIR": (work / "checkpoints").as_uri(),
        "LMS_STREAM_CHECKPOINT_INTERVAL_S": "5",
        "LMS_STREAM_IDLE_DAYS": "3",
    }
    stream = Stream(settings, school_dir, stream_env, work / "stream.log")
    es = Elasticsearch(settings.es_base_url, request_timeout=60)
    try:
        collector.start()
        key, _ = create_key(
            PostgresKeyStore(settings.platform_dsn), f"stream-{run_id}", "events:write"
        )
        lines = (school_dir / "events-00001.jsonl").read_bytes().splitlines(keepends=True)
        half = len(lines) // 2
        first, second = work / "first.jsonl", work / "second.jsonl"
        first.write_bytes(b"".join(lines[:half]))
        second.write_bytes(b"".join(lines[half:]))

        stream.start()
        # Posted one batch at a time: Kafka holds the events in arrival order.
        tallies = [post_files(first, url, key, concurrency=1)]
        active = f"{prefix}active-students"
        wait_for("the first half in Elasticsearch", reached_end(es, active, lines[:half]), 600)
        wait_for("the first half's last documents", settled(es, active, 10), 120)
        assert stream.alive(), (work / "stream.log").read_text()[-3000:]
        before = {
            name: all_docs(es, f"{prefix}{name}")
            for name in ("active-students", "engagement", "attendance", "alerts", "late-events")
        }
        # Restart: the jobs resume from their last checkpoint (state + Kafka offsets).
        stream.stop()
        tallies.append(post_files(second, url, key, concurrency=1))
        stream.start()
        wait_for("the second half", reached_end(es, active, lines), 600)
        wait_for("the last documents", settled(es, active, 10), 120)
        wait_for("the attendance index", settled(es, f"{prefix}attendance", 10), 120)
        assert stream.alive(), (work / "stream.log").read_text()[-3000:]
        yield {
            "es": es,
            "prefix": prefix,
            "dir": school_dir,
            "manifest": manifest,
            "tallies": tallies,
            "before": before,
            "log": work / "stream.log",
        }
    finally:
        stream.stop()
        collector.stop()
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        with contextlib.suppress(Exception):  # clean-up only: never hide the test's own error
            admin.delete_topics([topic, collector_env["LMS_KAFKA_TOPIC_DEAD_LETTER"]])
        admin.close()
        for name in INDICES:
            es.options(ignore_status=404).indices.delete(index=f"{prefix}{name}")
            es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}{name}")
        es.close()


def accepted_events(run: dict[str, Any]) -> pd.DataFrame:
    """The events the collector accepted (once each), with ``late`` for those the simulator
    delivered hours late. Whether a late event still makes its window depends on how far the
    watermark had moved when it was read (periodic watermarks lag behind a fast backlog), so the
    comparisons below are exact on windows no late event falls into, and bounded on the others."""
    rows = []
    for line in (Path(run["dir"]) / "events-00001.jsonl").read_bytes().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("event_id"), str):
            rows.append(event)
    accepted: set[str] = set()
    for tally in run["tallies"]:
        accepted |= tally.accepted_ids
    frame = pd.DataFrame(rows).drop_duplicates("event_id")
    late = set(pd.read_parquet(Path(run["dir"]) / "truth" / "late_events.parquet").event_id)
    frame = frame[frame.event_id.isin(accepted)].copy()
    frame["late"] = frame.event_id.isin(late)
    frame["occurred_at"] = pd.to_datetime(frame.occurred_at, utc=True, format="ISO8601")
    return frame


def test_planted_cheaters_are_flagged_and_honest_students_are_not(run: dict[str, Any]) -> None:
    alerts = all_docs(run["es"], f"{run['prefix']}alerts")
    truth = pd.read_parquet(Path(run["dir"]) / "truth" / "students.parquet").set_index("student_id")
    behaviours = {
        "fast_answers": "cheat_fast_answers",
        "tab_switching": "cheat_tab_switching",
        "concurrent_sessions": "cheat_concurrent_sessions",
    }
    flagged: dict[str, set[str]] = collections.defaultdict(set)
    for alert in alerts.values():
        flagged[alert["alert_type"]].add(alert["student_id"])
        # Every alert carries its evidence and the thresholds that fired.
        assert alert["evidence"], alert
        assert alert["thresholds"], alert
        assert alert["status"] == "open"
    # A planted behaviour only shows in a quiz attempt: recall is also given over the planted
    # students who made one in the events posted (a cheater who never took a quiz cannot be seen).
    events = accepted_events(run)
    attempted = set(events.student_id[events.event_type == "question_answer"])
    report = {}
    for alert_type, column in behaviours.items():
        planted = set(truth.index[truth[column]])
        hits = flagged[alert_type] & planted
        report[alert_type] = {
            "flagged": len(flagged[alert_type]),
            "planted": len(planted),
            "planted_with_attempts": len(planted & attempted),
            "precision": round(len(hits) / max(1, len(flagged[alert_type])), 3),
            "recall": round(len(hits) / max(1, len(planted)), 3),
            "recall_of_attempted": round(len(hits) / max(1, len(planted & attempted)), 3),
        }
    anyone = set().union(*flagged.values())
    cheaters = set(truth.index[truth.is_cheater])
    precision = len(anyone & cheaters) / max(1, len(anyone))
    recall = len(anyone & cheaters) / len(cheaters)
    print(f"\ncheating signals: precision {precision:.3f}, recall {recall:.3f}; by type {report}")
    assert len(cheaters) >= 10
    assert precision >= 0.9
    assert recall >= 0.8
    for alert_type, figures in report.items():
        assert figures["precision"] >= 0.9, (alert_type, figures)


def test_attendance_matches_the_simulators_truth(run: dict[str, Any]) -> None:
    docs = pd.DataFrame(all_docs(run["es"], f"{run['prefix']}attendance").values())
    truth = pd.read_parquet(Path(run["dir"]) / "truth" / "live_attendance.parquet")
    classes = pd.read_parquet(Path(run["dir"]) / "oltp" / "live_classes.parquet")
    # The class with the most attendees, checked student by student.
    live_class_id = truth.live_class_id.value_counts().index[0]
    cls = classes.set_index("live_class_id").loc[live_class_id]
    starts = pd.Timestamp(cls.starts_at).tz_convert("UTC")
    ends = pd.Timestamp(cls.ends_at).tz_convert("UTC")
    truth = truth[truth.live_class_id == live_class_id].copy()
    joined = truth.joined_at.dt.tz_convert("UTC").clip(lower=starts)
    left = truth.left_at.dt.tz_convert("UTC").clip(upper=ends)
    truth["minutes"] = ((left - joined).dt.total_seconds() / 60).clip(lower=0)
    expected = truth.groupby("student_id").agg(
        minutes=("minutes", "sum"), leave_sent=("leave_event_sent", "all")
    )
    got = docs[docs.live_class_id == live_class_id].set_index("student_id")
    assert set(got.index) == set(expected.index)
    for student_id, row in expected.iterrows():
        doc = got.loc[student_id]
        if row.leave_sent:
            assert abs(doc.minutes - row.minutes) < 0.05, (student_id, doc.to_dict(), row)
            assert not doc.missing_leave
        else:
            # No leave event: present until the scheduled end, and said so.
            assert doc.missing_leave and doc.in_class
    share = got.attendance_share.mean()
    print(f"\n{live_class_id}: {len(got)} attendees, mean attendance share {share:.2f}")


def windows(run: dict[str, Any]) -> tuple[dict[str, set[str]], dict[str, set[str]], pd.Timestamp]:
    """Students per sliding window id, from on-time events and from all events, up to the
    last window the watermark has closed."""
    events = accepted_events(run)
    horizon = events[~events.late].occurred_at.max() - timedelta(seconds=LATENESS_S)
    on_time: dict[str, set[str]] = collections.defaultdict(set)
    with_late: dict[str, set[str]] = collections.defaultdict(set)
    slide = pd.Timedelta(seconds=SLIDE_S)
    for occurred, course_id, student_id, late in zip(
        events.occurred_at, events.course_id, events.student_id, events.late, strict=True
    ):
        first_end = occurred.floor(f"{SLIDE_S}s") + slide
        for k in range(WINDOW_S // SLIDE_S):
            end = first_end + k * slide
            if end > horizon:
                break
            stamp = end.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            for course in ("_all", course_id) if isinstance(course_id, str) else ("_all",):
                with_late[f"{course}|{stamp}"].add(student_id)
                if not late:
                    on_time[f"{course}|{stamp}"].add(student_id)
    return on_time, with_late, horizon


def test_active_student_counts_match_a_query_over_the_same_events(run: dict[str, Any]) -> None:
    on_time, with_late, horizon = windows(run)
    docs = all_docs(run["es"], f"{run['prefix']}active-students")
    got = {
        doc_id: doc["active_students"]
        for doc_id, doc in docs.items()
        if pd.Timestamp(doc["window_end"]) <= horizon
    }
    exact = {k for k in on_time if len(on_time[k]) == len(with_late[k])}
    wrong = {k: (got.get(k), len(on_time[k])) for k in exact if got.get(k) != len(on_time[k])}
    out_of_bounds = {
        k: (got.get(k), len(on_time[k]), len(with_late[k]))
        for k in set(on_time) - exact
        if not len(on_time[k]) <= got.get(k, 0) <= len(with_late[k])
    }
    extra = set(got) - set(with_late)
    print(
        f"\nactive-student windows compared: {len(exact)} exactly, {len(on_time) - len(exact)} bounded"
    )
    assert len(exact) > 1000
    assert not wrong and not out_of_bounds and not extra, (
        list(wrong.items())[:5],
        list(out_of_bounds.items())[:5],
        list(extra)[:5],
    )


def test_restart_resumes_without_duplicate_documents(run: dict[str, Any]) -> None:
    es, prefix, before = run["es"], run["prefix"], run["before"]
    after = {name: all_docs(es, f"{prefix}{name}") for name in before}
    for name, docs in before.items():
        # Every document published before the restart is still the one document for its key.
        assert set(docs) <= set(after[name]), name
    # Closed windows published before the restart are not changed by the replay (windows that
    # a late event falls into may legitimately differ: see accepted_events).
    on_time, with_late, _ = windows(run)
    compared = 0
    for doc_id, doc in before["active-students"].items():
        if doc_id in on_time and len(on_time[doc_id]) == len(with_late[doc_id]):
            assert after["active-students"][doc_id]["active_students"] == doc["active_students"]
            compared += 1
    assert compared > 1000
    # One alert per (type, attempt) at most, whatever was replayed.
    keys = [(a["alert_type"], a["student_id"], a["attempt_id"]) for a in after["alerts"].values()]
    assert len(keys) == len(set(keys))
    # Late events are counted once each even though the restart replayed part of the topic.
    counted = sum(doc["late_events"] for doc in after["late-events"].values())
    late_ids = set(pd.read_parquet(Path(run["dir"]) / "truth" / "late_events.parquet").event_id)
    accepted = set().union(*(t.accepted_ids for t in run["tallies"]))
    posted_late = len(late_ids & accepted)
    print(f"\nlate events counted {counted}, posted {posted_late}")
    assert 0 < counted <= posted_late
    stream_log = Path(run["log"]).read_text()
    assert "from file:" in stream_log, "the restart did not resume from a checkpoint"


def test_engagement_counts_each_event_once(run: dict[str, Any]) -> None:
    events = accepted_events(run)
    events = events[events.course_id.notna()].copy()
    horizon = events[~events.late].occurred_at.max() - timedelta(seconds=LATENESS_S + 60)
    events["minute"] = events.occurred_at.dt.floor("1min")
    events = events[events.minute + pd.Timedelta(minutes=1) <= horizon]
    keys = ["course_id", "event_type", "minute"]
    counts = events.groupby(keys).agg(total=("event_id", "size"), late=("late", "sum"))
    docs = all_docs(run["es"], f"{run['prefix']}engagement")
    got = {
        (d["course_id"], d["event_type"], pd.Timestamp(d["window_start"])): d["events"]
        for d in docs.values()
    }
    mismatches = [
        (key, row.total, row.late, got.get(key))
        for key, row in counts.iterrows()
        if not row.total - row.late <= got.get(key, 0) <= row.total
        or (row.late == 0 and got.get(key) != row.total)
    ]
    assert len(counts) > 100
    assert not mismatches, mismatches[:5]
