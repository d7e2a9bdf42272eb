"""What an API key may do: scopes (capabilities) plus an optional teacher restriction (data).

A scope names one capability of one API, ``<resource>:<action>``. ``admin`` implies every scope.
Scopes say *what* a key may call; ``teacher_id`` on a key says *whose data* it may see: an API that
serves per-course data (predictions, alerts) narrows its answers to the courses of that teacher.
Keeping the two apart means a new teacher-facing endpoint needs no new scope per teacher.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lms.errors import UsageError

EVENTS_WRITE = "events:write"
PREDICTIONS_READ = "predictions:read"
ALERTS_READ = "alerts:read"
LIVE_READ = "live:read"
ADMIN = "admin"

# Scope -> what it allows, shown by `lms keys create --help` and in the docs.
SCOPES: dict[str, str] = {
    EVENTS_WRITE: "send learning events to the collector (POST /v1/events)",
    PREDICTIONS_READ: "read model predictions (prediction API)",
    ALERTS_READ: "read at-risk alerts (prediction API) and live alerts (GET /v1/live/alerts)",
    LIVE_READ: "read live dashboards: active students, live-class attendance (GET /v1/live/...)",
    ADMIN: "every scope, present and future",
}


def parse_scopes(text: str | Iterable[str]) -> tuple[str, ...]:
    """Validate scope names (comma-separated text or an iterable); sorted, without duplicates."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = {item.strip() for item in items if item.strip()}
    if not names:
        raise UsageError(f"give at least one scope; known scopes: {', '.join(SCOPES)}")
    unknown = sorted(names - SCOPES.keys())
    if unknown:
        raise UsageError(
            f"unknown scope {unknown[0]!r}; known scopes: {', '.join(SCOPES)} "
            "(separate several with commas, e.g. events:write,alerts:read)"
        )
    return tuple(sorted(names))


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a verified API key, handed to endpoints by ``require_scopes``."""

    key_id: int
    name: str
    prefix: str
    scopes: frozenset[str]
    teacher_id: str | None = None

    def has_scope(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes

    def missing(self, required: Iterable[str]) -> list[str]:
        """Required scopes this key lacks (empty when it may proceed)."""
        return [scope for scope in required if not self.has_scope(scope)]
