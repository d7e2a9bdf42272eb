"""Integration tests run against the real local services.

The session starts them (`ServiceManager.up()` is idempotent: services already running are left
as they are) and, at the end, stops by process id only the ones this session started. Set
LMS_KEEP_SERVICES=1 to leave them running for the next run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

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
