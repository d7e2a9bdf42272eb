"""What runs after a successful `lms services up` (and `ServiceManager.up()`).

Setup that needs the services running: the OLTP schema's migrations once PostgreSQL is healthy.
``after_up`` must be idempotent and cheap when there is nothing to do (``up`` is called at the
start of every test session).
"""

from __future__ import annotations

from collections.abc import Sequence

from lms.services.base import Reporter, ServiceStatus
from lms.settings import Settings


def after_up(settings: Settings, statuses: Sequence[ServiceStatus], report: Reporter) -> None:
    healthy = {s.name for s in statuses if s.healthy}
    if "postgres" in healthy:
        from lms.oltp.migrate import migrate

        applied = migrate(settings.oltp_dsn)
        if applied:
            report(
                f"{'postgres':<13} OLTP migrations applied: {', '.join(m.name for m in applied)}"
            )
