"""The streaming jobs by name. Each module's ``queries(cfg)`` returns SELECTs producing
``(idx, doc_id, version, doc)`` rows (see :mod:`streaming.sql`); ``views(cfg)`` optional views."""

from __future__ import annotations

from types import ModuleType

from streaming.jobs import (
    active_students,
    attendance,
    cheating,
    engagement,
    late_events,
    triggers,
)

JOBS: dict[str, ModuleType] = {
    "active-students": active_students,
    "engagement": engagement,
    "attendance": attendance,
    "cheating": cheating,
    "triggers": triggers,
    "late-events": late_events,
}


def describe() -> dict[str, str]:
    return {name: (module.__doc__ or "").strip().splitlines()[0] for name, module in JOBS.items()}
