"""Streaming latency: from the collector accepting an event to its effect being searchable in
Elasticsearch, at a steady 2,000 events/s.

A collector (own topic) and the ``active-students`` job (own indices, own consumer group) run
for the benchmark. A load thread posts batches of contract-valid events stamped "now" at the
target rate; every 200 ms a probe event from a fresh student is posted on its own, and its
acceptance time (the collector's 200) is noted. A poller asks Elasticsearch (``mget`` on the
presence index, whose document id is course|student) every 50 ms which probes are searchable.
Latency = first seen searchable - accepted. Figures: ``stream_latency_p50_s``,
``stream_latency_p95_s``, the achieved rate and how many probes were measured, and the CPU the
streaming job (its JVM and Python workers) and the collector spent per 1,000 events while
measured (these do not depend on the machine's load the way latency does).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import psutil
from elasticsearch import Elasticsearch

from ingestion.collector.process import CollectorProcess
from ingestion.collector.settings import CollectorSettings
from ingestion.topics import ensure_topics
from lms.auth.manage import create_key, revoke_key
from lms.auth.store import PostgresKeyStore
from lms.cli.stream import launch, stop_pid
from lms.settings import get_settings

# Events per second (the figure); LMS_BENCH_STREAM_RATE changes it for diagnosis.
RATE = int(os.environ.get("LMS_BENCH_STREAM_RATE", "2000"))
BATCH = 100
MEASURE_S = 60.0
WARMUP_S = 30.0
PROBE_EVERY_S = 0.2
COURSES = [f"crs_b{i:02d}" for i in range(8)]


def _event(student_id: str, course_id: str) -> dict[str, object]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "schema_version": "1.0",
        "occurred_at": now,
        "student_id": student_id,
        "course_id": course_id,
        "session_id": f"ses_{student_id}",
        "client": {"device": "desktop", "app_version": "4.12.0", "network_id": "net_bench"},
        "payload": {
            "page_type": "chapter",
            "chapter_id": "chp_b01_01",
            "path": f"/courses/{course_id}/chapters/chp_b01_01",
        },
    }


class Load:
    """Steady background load: BATCH events every BATCH/RATE seconds."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        interval = BATCH / RATE
        n = 0
        with httpx.Client(timeout=30) as client:
            next_at = time.monotonic()
            while not self.stop.is_set():
                events = [
                    _event(f"stu_b{(n + i) % 3000:05d}", COURSES[(n + i) % len(COURSES)])
                    for i in range(BATCH)
                ]
                n += BATCH
                response = client.post(
                    f"{self.url}/v1/events",
                    content=orjson.dumps({"events": events}),
                    headers=headers,
                )
                if response.is_success:  # 202: accepted into Kafka
                    self.sent += BATCH
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)


def tree_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) of a process and its descendants so far."""
    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def run() -> dict[str, float]:
    run_id = uuid.uuid4().hex[:8]
    load_before = round(os.getloadavg()[0], 2)
    base = get_settings()
    topic = f"lms.bench.stream.raw.{run_id}"
    collector_settings = CollectorSettings(
        kafka_topic_raw=topic, kafka_topic_dead_letter=f"lms.bench.stream.dlq.{run_id}"
    )
    ensure_topics(collector_settings)
    work = Path(tempfile.mkdtemp(prefix="lms-stream-bench-"))
    settings = base.model_copy(update={"kafka_topic_raw": topic, "state_dir": work})
    prefix = f"lms-live-bench{run_id}-"
    store = PostgresKeyStore(base.platform_dsn)
    key_name = f"bench-stream-{run_id}"
    key, _ = create_key(store, key_name, "events:write")
    collector = CollectorProcess(
        log_path=work / "collector.log",
        env={
            **os.environ,
            "LMS_KAFKA_TOPIC_RAW": topic,
            "LMS_KAFKA_TOPIC_DEAD_LETTER": collector_settings.kafka_topic_dead_letter,
        },
    )
    job = launch(
        settings,
        ["active-students"],
        reference={},
        log_path=work / "stream.log",
        extra_env={
            "LMS_STREAM_INDEX_PREFIX": prefix,
            "LMS_STREAM_GROUP_ID": f"lms-bench-stream-{run_id}",
            "LMS_STREAM_CHECKPOINT_DIR": (work / "checkpoints").as_uri(),
        },
    )
    es = Elasticsearch(base.es_base_url, request_timeout=10)
    presence = f"{prefix}presence"
    load = Load(collector.url, key)
    accepted: dict[str, float] = {}
    seen: dict[str, float] = {}
    try:
        collector.start()
        headers = {"Authorization": f"Bearer {key}"}

        def probe(client: httpx.Client, label: str) -> str:
            student = f"stu_p{label}"
            event = _event(student, COURSES[0])
            response = client.post(
                f"{collector.url}/v1/events", json={"events": [event]}, headers=headers
            )
            response.raise_for_status()
            accepted[f"{COURSES[0]}|{student}"] = time.monotonic()
            return f"{COURSES[0]}|{student}"

        def found(ids: list[str]) -> list[str]:
            if not es.indices.exists(index=presence):
                return []
            docs = es.mget(index=presence, ids=ids, source=False, realtime=False)["docs"]
            return [d["_id"] for d in docs if d.get("found")]

        with httpx.Client(timeout=30) as client:
            # Warm-up: the job is running once a first probe becomes searchable.
            deadline = time.monotonic() + 600
            first = probe(client, f"{run_id}w")
            while not found([first]):
                if job.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streaming job not ready; see {work / 'stream.log'}")
                time.sleep(0.5)
            loader = threading.Thread(target=load.run, daemon=True)
            loader.start()
            stop_poll = threading.Event()

            def poll() -> None:
                while not stop_poll.is_set():
                    pending = [k for k in list(accepted) if k not in seen]
                    if pending:
                        now = time.monotonic()
                        for doc_id in found(pending):
                            seen[doc_id] = now
                    time.sleep(0.05)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            # Warm-up under the steady load (JIT, Python workers, first checkpoints): probes of
            # this phase are not counted.
            warm_until = time.monotonic() + WARMUP_S
            k = 0
            while time.monotonic() < warm_until:
                probe(client, f"{run_id}w{k}")
                k += 1
                time.sleep(PROBE_EVERY_S)
            accepted.clear()
            seen.clear()
            sent_before, started = load.sent, time.monotonic()
            cpu_before = tree_cpu_s(job.pid), tree_cpu_s(collector.pid)
            while time.monotonic() - started < MEASURE_S:
                probe(client, f"{run_id}_{k}")
                k += 1
                time.sleep(PROBE_EVERY_S)
            elapsed = time.monotonic() - started
            sent = load.sent - sent_before
            rate = sent / elapsed
            job_cpu = tree_cpu_s(job.pid) - cpu_before[0]
            collector_cpu = tree_cpu_s(collector.pid) - cpu_before[1]
            load_during = round(os.getloadavg()[0], 2)
            load.stop.set()
            time.sleep(15)  # let the last probes arrive
            stop_poll.set()
            poller.join(5)
            loader.join(30)
        # In probe order: a latency that keeps growing means the jobs fall behind the load.
        ordered = [seen[k] - accepted[k] for k in accepted if k in seen]
        latencies = sorted(ordered)
        if len(latencies) < 20:
            raise RuntimeError(f"only {len(latencies)} probes measured; see {work}")
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        half = len(latencies) // 2
        return {
            "stream_load_avg_before": load_before,
            "stream_latency_p50_s": round(statistics.median(latencies), 3),
            "stream_latency_p95_s": round(p95, 3),
            "stream_latency_max_s": round(latencies[-1], 3),
            "stream_probes_measured": float(len(latencies)),
            "stream_probes_lost": float(len(accepted) - len(latencies)),
            "stream_load_events_per_s": round(rate, 1),
            "stream_load_avg_measured": load_during,
            "stream_job_cpu_s_per_1k_events": round(1000 * job_cpu / max(1, sent), 4),
            "stream_collector_cpu_s_per_1k_events": round(1000 * collector_cpu / max(1, sent), 4),
            "stream_latency_first_half_median_s": round(statistics.median(ordered[:half]), 3),
            "stream_latency_second_half_median_s": round(statistics.median(ordered[half:]), 3),
        }
    finally:
        load.stop.set()
        stop_pid(job.pid)
        collector.stop()
        revoke_key(store, key_name)
        # Reading with a wildcard is allowed; deleting needs the exact names.
        for index in es.options(ignore_status=404).indices.get(index=f"{prefix}*"):
            es.indices.delete(index=index)
            es.options(ignore_status=404).indices.delete_index_template(name=index)
        es.close()
        if not os.environ.get("LMS_BENCH_KEEP"):
            import shutil

            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(run())
