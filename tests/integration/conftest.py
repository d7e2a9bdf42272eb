"""Integration tests run against the real local services.

The session starts them (`ServiceManager.up()` is idempotent: services already running are left
as they are) and, at the end, stops by process id only the ones this session started. Set
LMS_KEEP_SERVICES=1 to leave them running for the next run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lms.services.base import ServiceStatus
from lms.services.manager import ServiceManager
from lms.settings import get_settings


@pytest.fixture(scope="session", autouse=True)
def services() -> Iterator[ServiceManager]:
    manager = ServiceManager(get_settings(), report=lambda line: print(line, file=sys.stderr))
    keep = bool(os.environ.get("LMS_KEEP_SERVICES"))
    # Recorded as each service comes up, so a failure part-way still stops what this session
    # started (and nothing else).
    started: list[str] = []

    def note(status: ServiceStatus) -> None:
        if status.action == "started":
            started.append(status.name)

    try:
        manager.up(on_status=note)
    except BaseException:
        if started and not keep:
            manager.down(started)
        raise
    yield manager
    if started and not keep:
        manager.down(started)


@pytest.fixture(scope="session")
def spark(services: ServiceManager) -> Iterator[object]:
    """One Spark session for every test that needs one: its JVM, connector jars and S3A client
    cost ~1 minute to warm up. Tests pass their own Settings (topics, buckets, checkpoints) to the
    jobs; the session itself only carries the endpoints, which are the same for all."""
    from ingestion.landing.spark import build_session

    session = build_session(get_settings(), "lms-integration-tests")
    yield session
    session.stop()


# --- the whole platform, once per session ---------------------------------------------------

# Large enough that every model has a held-out window to beat its baseline on, small enough for
# CI. Shared by the end-to-end test and the ML pipeline's tests: one run of the platform each.
PLATFORM_SCHOOL = {"students": 500, "courses": 3, "days": 77, "seed": 36}


def run_lms(env: dict[str, str], *args: str, log: Path, timeout: int) -> None:
    """`lms ARGS` as a user runs it, in ``env``, appending its output to ``log``."""
    with log.open("ab") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "lms.cli.main", *args],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    assert proc.returncode == 0, f"lms {' '.join(args)}:\n" + log.read_text()[-8000:]


@pytest.fixture(scope="session")
def platform_run(
    services: ServiceManager, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """`lms demo` on a small school under names of this run (topics, bucket, schemas, model
    prefix, live indices, ports), left running (collector, streaming jobs, prediction service)
    until the session ends; then `lms demo-down --keep-services` and every name is dropped."""
    from run_resources import drop_run_resources, isolated_overrides, isolated_settings

    from lms.process import free_port

    run = "e2e" + uuid.uuid4().hex[:6]
    work = tmp_path_factory.mktemp("platform")
    overrides = isolated_overrides(run, work) | {
        "LMS_COLLECTOR_PORT": str(free_port()),
        "LMS_SERVE_PORT": str(free_port()),
        "LMS_PREFECT_PORT": str(free_port()),
    }
    settings = isolated_settings(overrides)
    env = {**os.environ, **overrides}
    demo_dir, log = work / "demo", work / "demo.log"
    school = [f"--{k}={v}" for k, v in PLATFORM_SCHOOL.items()]
    try:
        run_lms(env, "demo", *school, "--dir", str(demo_dir), log=log, timeout=2700)
        summary = json.loads((demo_dir / "summary.json").read_text())
        yield {"settings": settings, "env": env, "summary": summary, "dir": demo_dir, "log": log}
    finally:
        run_lms(env, "demo-down", "--dir", str(demo_dir), "--keep-services", log=log, timeout=120)
        drop_run_resources(settings)
