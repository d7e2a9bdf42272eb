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

from lms.services.manager import ServiceManager
from lms.settings import get_settings


@pytest.fixture(scope="session", autouse=True)
def services() -> Iterator[ServiceManager]:
    manager = ServiceManager(get_settings(), report=lambda line: print(line, file=sys.stderr))
    statuses = manager.up()
    started = [s.name for s in statuses if s.action == "started"]
    yield manager
    if started and not os.environ.get("LMS_KEEP_SERVICES"):
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
