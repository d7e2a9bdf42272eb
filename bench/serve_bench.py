"""Prediction service latency and throughput at concurrency 16, load from the same machine.

A scored sample school (``serving.sample``: models registered on the real registry, online
features in the real warehouse, under names of this run) is served by ``lms serve`` in a
subprocess (``LMS_BENCH_SERVE_WORKERS`` workers, default 1). The load comes from this process:
16 keep-alive HTTP/1.1 connections on a minimal asyncio client (an HTTP library's own overhead
would be measured instead of the server's), each sending its next request as soon as the last
answer arrived, cycling over the sample's students. Latency is per request, client-side; the
throughput is answered requests per second over the measured window (after a warm-up that fills
the feature cache, as in steady state). ``model_predict_one_row_ms`` is the bare
``ModelBundle.predict`` on one row (median), for the overhead ratio. Everything the run created is
removed and the server stopped by pid at the end.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingestion.collector.process import free_port
from lms.auth import PostgresKeyStore, create_key, revoke_key
from lms.settings import REPO_ROOT, get_settings
from serving import sample

CONCURRENCY = 16
SECONDS = float(os.environ.get("LMS_BENCH_SERVE_SECONDS", "10"))
WARMUP_S = 3.0
WORKERS = int(os.environ.get("LMS_BENCH_SERVE_WORKERS", "1"))
FIRST_ERROR: list[bytes] = []
SERVE = [sys.executable, "-m", "lms.cli.main", "serve"]


async def _worker(
    port: int, requests: list[bytes], until: float, warm_until: float, out: list[float]
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors, i = 0, 0
    try:
        while time.perf_counter() < until:
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
            if start >= warm_until:
                out.append(time.perf_counter() - start)
    finally:
        writer.close()
    return errors


def load(port: int, paths: list[str], key: str, seconds: float) -> dict[str, float]:
    requests = [
        f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
        for p in paths
    ]
    latencies: list[float] = []

    async def main() -> int:
        now = time.perf_counter()
        warm, until = now + WARMUP_S, now + WARMUP_S + seconds
        rotated = [requests[i::CONCURRENCY] or requests for i in range(CONCURRENCY)]
        results = await asyncio.gather(*(_worker(port, r, until, warm, latencies) for r in rotated))
        return sum(results)

    errors = asyncio.run(main())
    if FIRST_ERROR:
        print(f"first failed request: {FIRST_ERROR[0].decode(errors='replace')}", file=sys.stderr)
    ms = np.asarray(latencies) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "rps": len(ms) / seconds,
        "errors": float(errors),
    }


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"lms serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready/predictions", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("lms serve did not become ready")


def predict_one_row_ms(bundle: Any, row: pd.DataFrame, n: int = 2000) -> float:
    bundle.predict(row)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        bundle.predict(row)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def run() -> dict[str, float]:
    run_id = uuid.uuid4().hex[:8]
    settings = sample.isolated(get_settings(), run_id)
    keys = PostgresKeyStore(settings.platform_dsn)
    key_name = f"bench-serve-{run_id}"
    proc: subprocess.Popen[bytes] | None = None
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
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*SERVE, "--port", str(port), "--workers", str(WORKERS)],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        _wait_ready(port, proc)
        pairs = built.scores[["student_id", "course_id"]].head(400).itertuples(index=False)
        pairs = list(pairs)
        base = "/v1/students/{}/courses/{}/"
        dropout = load(port, [base.format(s, c) + "dropout-risk" for s, c in pairs], key, SECONDS)
        chapters = load(
            port, [base.format(s, c) + "next-chapters?k=3" for s, c in pairs], key, SECONDS
        )
        bundle, _ = built.registry.load("dropout")
        bundle.booster.set_param({"nthread": 1})  # as the service runs it
        row = built.course[bundle.features].head(1)
        one_row = predict_one_row_ms(bundle, row)
        return {
            "serve_dropout_p50_ms": round(dropout["p50_ms"], 3),
            "serve_dropout_p99_ms": round(dropout["p99_ms"], 3),
            "serve_dropout_rps": round(dropout["rps"], 1),
            "serve_dropout_errors": dropout["errors"],
            "serve_next_chapters_p50_ms": round(chapters["p50_ms"], 3),
            "serve_next_chapters_p99_ms": round(chapters["p99_ms"], 3),
            "serve_next_chapters_rps": round(chapters["rps"], 1),
            "model_predict_one_row_ms": round(one_row, 4),
            "serve_dropout_overhead_ratio": round(dropout["p50_ms"] / one_row, 1),
            "serve_workers": float(WORKERS),
            "load_avg_1m": os.getloadavg()[0],
        }
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
        revoke_key(keys, key_name)
        sample.remove(settings)


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
