"""Elasticsearch side of the jobs: index templates managed by code, and an idempotent bulk writer.

Every document has a deterministic id (its key plus its window), so a replay after a restart or
a retried bulk overwrites instead of duplicating. Documents that are updated as more events
arrive (attendance, presence, late counters) carry a version that only grows; they are written
with ``version_type=external_gte``, so an older version arriving late (a retraction, a replayed
batch) can never overwrite a newer one.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

log = logging.getLogger(__name__)

_KW = {"type": "keyword"}
_DATE = {"type": "date"}
_INT = {"type": "long"}
_NUM = {"type": "double"}
_BOOL = {"type": "boolean"}
_BLOB = {"type": "object", "enabled": False}

# Index name (after the prefix) -> field mappings. ``dynamic: false`` keeps unexpected fields in
# _source without letting them change the mapping.
MAPPINGS: dict[str, dict[str, Any]] = {
    "active-students": {
        "course_id": _KW,
        "window_start": _DATE,
        "window_end": _DATE,
        "window_s": _INT,
        "active_students": _INT,
        "teacher_ids": _KW,
    },
    "presence": {
        "course_id": _KW,
        "student_id": _KW,
        "last_seen_at": _DATE,
        "received_at": _DATE,
        "event_id": _KW,
        "event_type": _KW,
        "teacher_ids": _KW,
    },
    "engagement": {
        "course_id": _KW,
        "event_type": _KW,
        "window_start": _DATE,
        "window_end": _DATE,
        "events": _INT,
        "students": _INT,
        "video_watch_s": _NUM,
        "teacher_ids": _KW,
    },
    "attendance": {
        "live_class_id": _KW,
        "course_id": _KW,
        "student_id": _KW,
        "class_starts_at": _DATE,
        "class_ends_at": _DATE,
        "first_join_at": _DATE,
        "last_leave_at": _DATE,
        "in_class": _BOOL,
        "minutes": _NUM,
        "attendance_share": _NUM,
        "joins": _INT,
        "missing_leave": _BOOL,
        "inferred_join": _BOOL,
        "events": _INT,
        "intervals": _BLOB,
        "teacher_ids": _KW,
    },
    "alerts": {
        "alert_type": _KW,
        "status": _KW,
        "student_id": _KW,
        "course_id": _KW,
        "quiz_id": _KW,
        "attempt_id": _KW,
        "detected_at": _DATE,
        "window_start": _DATE,
        "window_end": _DATE,
        "thresholds": _BLOB,
        "metrics": _BLOB,
        "evidence": _BLOB,
        "teacher_ids": _KW,
    },
    "triggers": {
        "trigger_type": _KW,
        "audience": _KW,
        "status": _KW,
        "student_id": _KW,
        "course_id": _KW,
        "chapter_id": _KW,
        "quiz_id": _KW,
        "topic_ids": _KW,
        "detected_at": _DATE,
        "last_activity_at": _DATE,
        "message": {"type": "text"},
        "evidence": _BLOB,
        "teacher_ids": _KW,
    },
    "late-events": {
        "event_type": _KW,
        "occurred_hour": _DATE,
        "late_events": _INT,
        "last_received_at": _DATE,
    },
    # Reference data written by the launcher: courses, their teachers and live classes, so the
    # read API can scope answers without reaching the OLTP database.
    "courses": {
        "course_id": _KW,
        "teacher_ids": _KW,
        "starts_on": _DATE,
        "ends_on": _DATE,
        "live_class_ids": _KW,
    },
    "live-classes": {
        "live_class_id": _KW,
        "course_id": _KW,
        "starts_at": _DATE,
        "ends_at": _DATE,
        "teacher_ids": _KW,
    },
}

# Indices whose documents get the course's teacher ids added by the writer (for scoping).
TEACHER_SCOPED = frozenset(
    {"active-students", "presence", "engagement", "attendance", "alerts", "triggers"}
)


def client(url: str) -> Elasticsearch:
    return Elasticsearch(url, request_timeout=30, retry_on_timeout=True, max_retries=3)


def template_body(prefix: str, name: str) -> dict[str, Any]:
    replicas = int(os.environ.get("LMS_STREAM_ES_REPLICAS", "0"))
    return {
        "index_patterns": [f"{prefix}{name}"],
        # Above the default templates' priority, so ours always wins for these names.
        "priority": 300,
        "template": {
            "settings": {
                "number_of_shards": 1,
                "number_of_replicas": replicas,
                # Dashboards read within ~1 s of a write; that is the latency budget we measure.
                "refresh_interval": "1s",
            },
            "mappings": {"dynamic": False, "properties": MAPPINGS[name]},
        },
        "_meta": {"managed_by": "lms-platform streaming/elastic.py"},
    }


def ensure_indices(es: Elasticsearch, prefix: str) -> list[str]:
    """Put every template and create missing indices (idempotent); return what was created."""
    created = []
    for name in MAPPINGS:
        es.indices.put_index_template(name=f"{prefix}{name}", **template_body(prefix, name))
        index = f"{prefix}{name}"
        if not es.indices.exists(index=index):
            es.options(ignore_status=400).indices.create(index=index)
            created.append(index)
        else:
            # A template only applies at creation: bring an existing index's mapping up to date
            # (adding fields is always allowed).
            es.indices.put_mapping(index=index, properties=MAPPINGS[name])
    return created


@dataclass(frozen=True)
class Action:
    index: str
    doc_id: str
    version: int | None
    doc: dict[str, Any]


def expand_doc(text: str) -> dict[str, Any]:
    """A JSON document built in SQL; fields named ``*_json`` hold JSON text to nest as is."""
    doc: dict[str, Any] = json.loads(text)
    for key in [k for k in doc if k.endswith("_json")]:
        raw = doc.pop(key)
        doc[key[:-5]] = json.loads(raw) if isinstance(raw, str) and raw else None
    return doc


def latest_per_id(actions: Iterable[Action]) -> list[Action]:
    """Within one batch keep, per (index, id), the highest version (else the last write)."""
    chosen: dict[tuple[str, str], Action] = {}
    for action in actions:
        key = (action.index, action.doc_id)
        seen = chosen.get(key)
        if seen is None or action.version is None or (seen.version or 0) <= action.version:
            chosen[key] = action
    return list(chosen.values())


class Throttle:
    """Lets a document's newer version through only once it is ``step`` ahead of the last one let
    through (per document id): a heartbeat document such as presence, whose version is the event
    time, then costs Elasticsearch one write per ``step`` per key instead of one per event, while
    a key's first version always passes at once. ``step`` 0 lets everything through.

    What is held back is a version at most ``step`` newer than the one written, so a document is
    never staler than ``step``; the memory is the keys seen within the last ``step``.
    """

    def __init__(self, step: int) -> None:
        self.step = step
        self.last: dict[str, int] = {}
        self.newest = 0
        self.admitted = 0
        self.held_back = 0

    def admit(self, key: str, version: int) -> bool:
        last = self.last.get(key)
        if self.step and last is not None and version < last + self.step:
            self.held_back += 1
            return False
        self.last[key] = version if last is None else max(last, version)
        self.admitted += 1
        if version > self.newest:
            self.newest = version
        if len(self.last) > 4096 and self.admitted % 4096 == 0:
            self.prune()
        return True

    def prune(self) -> None:
        """Forget keys whose last version is older than the newest by ``step``: their next
        version would pass anyway."""
        horizon = self.newest - self.step
        self.last = {k: v for k, v in self.last.items() if v >= horizon}


class BulkFailed(RuntimeError):
    """Elasticsearch refused documents: the job fails and restarts from its last checkpoint."""


def write(es: Elasticsearch, actions: Sequence[Action]) -> int:
    """Bulk-write, synchronously; returns how many documents were written. Raises on failure."""
    batch = latest_per_id(actions)
    if not batch:
        return 0
    operations: list[dict[str, Any]] = []
    for action in batch:
        head: dict[str, Any] = {"_index": action.index, "_id": action.doc_id}
        if action.version is not None:
            head["version"] = action.version
            head["version_type"] = "external_gte"
        operations.append({"index": head})
        operations.append(action.doc)
    response = es.bulk(operations=operations)
    if not response.get("errors"):
        return len(batch)
    failures = []
    written = 0
    for item in response["items"]:
        result = item["index"]
        status = result.get("status", 500)
        if status < 300:
            written += 1
        elif status == 409:
            continue  # a newer version is already there: exactly what versioning is for
        else:
            failures.append(f"{result.get('_index')}/{result.get('_id')}: {result.get('error')}")
    if failures:
        raise BulkFailed(f"{len(failures)} documents refused, first: {failures[0]}")
    return written
