"""Prefect 3 flows: ``train``, ``score`` and ``pipeline`` (land → dbt → expectations → train →
score). Thin orchestration over ``ingestion``, ``lms.warehouse``, ``lms.quality`` and ``ml``.

Importing this package points Prefect at a home under the platform's state directory (unless
PREFECT_HOME is set), so the local ephemeral API keeps its database out of the user's ~/.prefect.
"""

from __future__ import annotations

import os

from lms.settings import get_settings

os.environ.setdefault("PREFECT_HOME", str(get_settings().state_dir / "prefect"))
# The ephemeral API server starts in a subprocess; on a loaded 2-core machine it needs longer
# than Prefect's default to come up.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# The machines reach package registries only: no usage analytics.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
