"""Prediction service latency and throughput at concurrency 16, load from the same machine.

A scored sample school (``serving.sample``: models registered on the real registry, online
features in the real warehouse, under names of this run) is served by ``lms serve`` in a
subprocess (``LMS_BENCH_SERVE_WORKERS`` workers, default 1). The load comes from this process:
16 keep-alive HTTP/1.1 connections on a minimal asyncio client (an HTTP library's own overhead
would be measured instead of the server's), each sending its next request as soon as the last
answer arrived, cycling over the sample's students. Latency is per request, client-side; the
throughput is answered requests per second over the measured window (after a warm-up that asks
for every path once, filling the feature and answer caches, as in steady state). The CPU time
per request of the server processes (psutil) is recorded too: on a shared 2-core machine the
latency mostly measures the other users, the CPU per request much less so.
``model_predict_one_row_ms`` is the bare ``ModelBundle.predict`` on one row (median wall time; its
CPU time is ``model_predict_one_row_cpu_ms``), for the overhead ratios. Everything the run
created is removed and the server stopped by pid at the end.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from lms.auth import PostgresKeyStore, create_key, revoke_key
from lms.process import PredictionServiceProcess, free_port
from lms.settings import get_settings
from serving import sample

CONCURRENCY = 16
SECONDS = float(os.environ.get("LMS_BENCH_SERVE_SECONDS", "10"))
WORKERS = int(os.environ.get("LMS_BENCH_SERVE_WORKERS", "1"))
FIRST_ERROR: list[bytes] = []


async def _worker(
    port: int, requests: list[bytes], until: float | None, out: list[float], answered: list[int]
) -> int:
    """One keep-alive connection: send, read the whole answer, send the next. ``until`` None:
    each request once (the warm-up), else cycle until that time and record latencies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors, i = 0, 0
    try:
        while (i < len(requests)) if until is None else (time.perf_counter() < until):
            start = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
                if not FIRST_ERROR:
                    FIRST_ERROR.append(head.split(b"\r\n", 1)[0] + b" " + body[:300])
            if until is not None:
                out.append(time.perf_counter() - start)
                answered[0] += 1
    finally:
        writer.close()
    return errors


def _cpu_s(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + system) used so far by ``lms serve`` and its worker processes."""
    root = psutil.Process(proc.pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def load(
    port: int, paths: list[str], key: str, seconds: float, server: subprocess.Popen[bytes]
) -> dict[str, float]:
    """Latency and throughput over the measured window, after a warm-up that asks for every
    path once (the steady state: features and answers cached). Also the CPU per answered
    request of the server (all its processes) and of this load generator over the window: a
    figure the machine's other users distort far less than latency."""
    requests = [
        f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
        for p in paths
    ]
    rotated = [requests[i::CONCURRENCY] or requests for i in range(CONCURRENCY)]
    latencies: list[float] = []
    answered = [0]

    async def phase(until: float | None) -> int:
        workers = (_worker(port, r, until, latencies, answered) for r in rotated)
        return sum(await asyncio.gather(*workers))

    errors = asyncio.run(phase(None))
    latencies.clear()
    server_cpu, client_cpu = _cpu_s(server), time.process_time()
    errors += asyncio.run(phase(time.perf_counter() + seconds))
    server_cpu, client_cpu = _cpu_s(server) - server_cpu, time.process_time() - client_cpu
    if FIRST_ERROR:
        print(f"first failed request: {FIRST_ERROR[0].decode(errors='replace')}", file=sys.stderr)
    ms = np.asarray(latencies) * 1000
    n = max(answered[0], 1)
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "rps": len(ms) / seconds,
        "errors": float(errors),
        "cpu_ms_per_request": server_cpu * 1000 / n,
        "client_cpu_ms_per_request": client_cpu * 1000 / n,
    }


def predict_one_row_ms(bundle: Any, row: pd.DataFrame, n: int = 2000) -> tuple[float, float]:
    """Median wall time and mean CPU time (ms) of ``bundle.predict`` on one row."""
    bundle.predict(row)
    times = []
    cpu = time.thread_time()
    for _ in range(n):
        start = time.perf_counter()
        bundle.predict(row)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000), (time.thread_time() - cpu) * 1000 / n


def run() -> dict[str, float]:
    run_id = uuid.uuid4().hex[:8]
    settings = sample.isolated(get_settings(), run_id)
    keys = PostgresKeyStore(settings.platform_dsn)
    key_name = f"bench-serve-{run_id}"
    server: PredictionServiceProcess | None = None
    try:
        built = sample.build(settings)
        key, _ = create_key(keys, key_name, "predictions:read")
        port = free_port()
        env = {
            **os.environ,
            "LMS_MODEL_PREFIX": settings.model_prefix,
            "LMS_ML_SCHEMA": settings.ml_schema,
            "LMS_RAW_SCHEMA": settings.raw_schema,
            "LMS_DBT_SCHEMA_PREFIX": settings.dbt_schema_prefix,
            "LMS_STREAM_INDEX_PREFIX": settings.stream_index_prefix,
        }
        log = Path(tempfile.gettempdir()) / f"lms-serve-bench-{run_id}.log"
        server = PredictionServiceProcess(port=port, workers=WORKERS, log_path=log, env=env)
        server.start(timeout_s=180)
        proc = server.proc
        assert proc is not None
        pairs = built.scores[["student_id", "course_id"]].head(400).itertuples(index=False)
        pairs = list(pairs)
        base = "/v1/students/{}/courses/{}/"
        load_before = os.getloadavg()
        dropout = load(
            port, [base.format(s, c) + "dropout-risk" for s, c in pairs], key, SECONDS, proc
        )
        chapters = load(
            port, [base.format(s, c) + "next-chapters?k=3" for s, c in pairs], key, SECONDS, proc
        )
        load_after = os.getloadavg()
        bundle, _ = built.registry.load("dropout")
        bundle.booster.set_param({"nthread": 1})  # as the service runs it
        row = built.course[bundle.features].head(1)
        one_row, one_row_cpu = predict_one_row_ms(bundle, row)
        return {
            "serve_dropout_p50_ms": round(dropout["p50_ms"], 3),
            "serve_dropout_p99_ms": round(dropout["p99_ms"], 3),
            "serve_dropout_rps": round(dropout["rps"], 1),
            "serve_dropout_errors": dropout["errors"],
            "serve_dropout_cpu_ms_per_request": round(dropout["cpu_ms_per_request"], 3),
            "serve_dropout_client_cpu_ms_per_request": round(
                dropout["client_cpu_ms_per_request"], 3
            ),
            "serve_next_chapters_p50_ms": round(chapters["p50_ms"], 3),
            "serve_next_chapters_p99_ms": round(chapters["p99_ms"], 3),
            "serve_next_chapters_rps": round(chapters["rps"], 1),
            "serve_next_chapters_errors": chapters["errors"],
            "serve_next_chapters_cpu_ms_per_request": round(chapters["cpu_ms_per_request"], 3),
            "model_predict_one_row_ms": round(one_row, 4),
            "model_predict_one_row_cpu_ms": round(one_row_cpu, 4),
            "serve_dropout_overhead_ratio": round(dropout["p50_ms"] / one_row, 1),
            "serve_dropout_cpu_overhead_ratio": round(
                dropout["cpu_ms_per_request"] / one_row_cpu, 2
            ),
            "serve_workers": float(WORKERS),
            "serve_load_avg_1m_before": round(load_before[0], 2),
            "serve_load_avg_1m_after": round(load_after[0], 2),
            "serve_load_avg_5m_after": round(load_after[1], 2),
        }
    finally:
        if server is not None:
            server.stop()
        revoke_key(keys, key_name)
        sample.remove(settings)


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
