"""Online features and reference facts for the prediction service, from PostgreSQL.

- The feature vectors are the ones the scoring flow wrote (``ml.online_student_course_features``
  and ``ml.online_student_topic_features``: the latest as-of row per key, as JSON), so a served
  prediction uses exactly the inputs of the batch score under the same model version.
- Chapter moves come from the ``features.chapter_transitions`` mart (the next-chapter ranker needs
  the student's path, not a fixed vector).
- Who exists, who is enrolled and who teaches a course come from the warehouse raw layer (the
  OLTP snapshot), so unknown ids are told apart from students without history yet.

Everything goes through a small TTL cache: a hot student costs one query per TTL, and a rescore
becomes visible within the TTL. A real-time signal (is the student on the platform right now)
comes from the streaming jobs' presence index in Elasticsearch when it answers quickly.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from lms.errors import LmsError
from lms.settings import Settings
from serving.prepared import Moves
from serving.settings import ServeSettings

MISSING = object()
# Set while a request runs on the event loop: a cache miss must not block the loop on a query.
_CACHED_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("cached_only", default=False)


class FeaturesUnavailable(LmsError):
    """The database or an online table cannot be read (503 for the caller: retry later)."""


class NeedsDatabase(Exception):
    """A cache miss inside :meth:`OnlineStore.cached_only`: redo the call in a worker thread."""


class TTLCache:
    """A thread-safe dict whose entries expire; bounded (oldest entries go first)."""

    def __init__(self, ttl_s: float, max_size: int) -> None:
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._data: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any:
        entry = self._data.get(key)
        if entry is not None and entry[0] > time.monotonic():
            self.hits += 1
            return entry[1]
        self.misses += 1
        return MISSING

    def put(self, key: Hashable, value: Any) -> None:
        if self.ttl_s <= 0 or self.max_size <= 0:
            return
        with self._lock:
            if len(self._data) >= self.max_size:
                for old in list(self._data)[: max(1, self.max_size // 10)]:
                    self._data.pop(old, None)
            self._data[key] = (time.monotonic() + self.ttl_s, value)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class ConnectionPool:
    """A few reusable connections (psycopg_pool is not a dependency; this is all we need)."""

    def __init__(self, dsn: str, size: int) -> None:
        self.dsn = dsn
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        if not self._slots.acquire(timeout=10):
            raise FeaturesUnavailable("no database connection free within 10 s")
        conn: psycopg.Connection | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = psycopg.connect(
                    self.dsn, autocommit=True, connect_timeout=5, options="-c TimeZone=UTC"
                )
            yield conn
            self._idle.put(conn)
            conn = None
        except psycopg.errors.UndefinedTable as exc:
            if conn is not None and not conn.closed:
                self._idle.put(conn)
                conn = None
            raise FeaturesUnavailable(
                f"{exc.diag.message_primary}: the online tables are written by the scoring flow "
                "(`lms flow score`)"
            ) from None
        except psycopg.Error as exc:
            raise FeaturesUnavailable(f"database error ({type(exc).__name__})") from None
        finally:
            if conn is not None:
                conn.close()
            self._slots.release()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


@dataclass(frozen=True)
class Enrollment:
    student_known: bool
    course_known: bool
    status: str | None  # None: the student is not enrolled in the course


@dataclass(frozen=True)
class FeatureRow:
    as_of_date: date
    features: dict[str, float | None]
    updated_at: datetime
    # Answers computed from this row (per model version): they expire with the cached row, so
    # a rescore is still visible within the feature TTL.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class TopicRows:
    as_of_date: date | None
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)


class OnlineStore:
    def __init__(self, settings: Settings, serve: ServeSettings) -> None:
        self.settings = settings
        self.serve = serve
        self.pool = ConnectionPool(settings.warehouse_dsn, serve.db_pool_size)
        self.cache = TTLCache(serve.feature_ttl_s, serve.feature_cache_size)
        self.raw = sql.Identifier(settings.raw_schema)
        self.ml = sql.Identifier(settings.ml_schema)
        self.features = sql.Identifier(settings.dbt_schema_prefix + settings.features_schema)

    # -- plumbing -------------------------------------------------------------------------
    @staticmethod
    @contextlib.contextmanager
    def cached_only() -> Iterator[None]:
        """Within this block a cache miss raises :class:`NeedsDatabase` instead of querying (an
        ``async`` route answers hot keys on the event loop and only misses go to a thread)."""
        token = _CACHED_ONLY.set(True)
        try:
            yield
        finally:
            _CACHED_ONLY.reset(token)

    def _cached(self, key: Hashable, load: Callable[[], Any]) -> Any:
        value = self.cache.get(key)
        if value is MISSING:
            if _CACHED_ONLY.get():
                raise NeedsDatabase(key)
            value = load()
            self.cache.put(key, value)
        return value

    def _rows(self, query: sql.Composable, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(query, params).fetchall()

    def ping(self) -> None:
        """Raise :class:`FeaturesUnavailable` unless the online table can be read."""
        self._rows(
            sql.SQL("select 1 from {}.online_student_course_features limit 1").format(self.ml), {}
        )

    # -- reference facts ------------------------------------------------------------------
    def enrollment(self, student_id: str, course_id: str) -> Enrollment:
        def load() -> Enrollment:
            query = sql.SQL(
                "select exists(select 1 from {r}.oltp_students where student_id = %(s)s),"
                " exists(select 1 from {r}.oltp_courses where course_id = %(c)s),"
                " (select status from {r}.oltp_enrollments where student_id = %(s)s"
                "  and course_id = %(c)s order by updated_at desc limit 1)"
            ).format(r=self.raw)
            s, c, status = self._rows(query, {"s": student_id, "c": course_id})[0]
            return Enrollment(bool(s), bool(c), status)

        return self._cached(("enr", student_id, course_id), load)

    def course_teachers(self, course_id: str) -> list[str] | None:
        """The course's teachers, or None for an unknown course."""

        def load() -> list[str] | None:
            query = sql.SQL(
                "select c.course_id, t.teacher_id from {r}.oltp_courses c"
                " left join {r}.oltp_course_teachers t using (course_id)"
                " where c.course_id = %(c)s"
            ).format(r=self.raw)
            rows = self._rows(query, {"c": course_id})
            if not rows:
                return None
            return sorted({t for _, t in rows if t is not None})

        return self._cached(("teachers", course_id), load)

    # -- features -------------------------------------------------------------------------
    def course_features(self, student_id: str, course_id: str) -> FeatureRow | None:
        def load() -> FeatureRow | None:
            query = sql.SQL(
                "select as_of_date, features, updated_at from {}.online_student_course_features"
                " where student_id = %(s)s and course_id = %(c)s"
            ).format(self.ml)
            rows = self._rows(query, {"s": student_id, "c": course_id})
            return FeatureRow(*rows[0]) if rows else None

        return self._cached(("course", student_id, course_id), load)

    def course_frame(self, course_id: str) -> pd.DataFrame:
        """Every student's latest feature row in a course (for the at-risk list)."""

        def load() -> pd.DataFrame:
            query = sql.SQL(
                "select student_id, as_of_date, features from {}.online_student_course_features"
                " where course_id = %(c)s"
            ).format(self.ml)
            rows = self._rows(query, {"c": course_id})
            meta = pd.DataFrame(
                [(s, a) for s, a, _ in rows], columns=["student_id", "as_of_date"], dtype=object
            )
            values = pd.DataFrame.from_records([f for _, _, f in rows], index=meta.index)
            return pd.concat([meta, values.astype(float)], axis=1)

        return self._cached(("course_frame", course_id), load)

    def topic_rows(self, student_id: str, course_id: str) -> TopicRows:
        def load() -> TopicRows:
            query = sql.SQL(
                "select topic_id, as_of_date, features from {}.online_student_topic_features"
                " where student_id = %(s)s and course_id = %(c)s order by topic_id"
            ).format(self.ml)
            rows = self._rows(query, {"s": student_id, "c": course_id})
            if not rows:
                return TopicRows(None)
            values = pd.DataFrame.from_records([f for _, _, f in rows]).astype(float)
            keys = pd.DataFrame(
                {
                    "student_id": student_id,
                    "course_id": course_id,
                    "topic_id": [t for t, _, _ in rows],
                    "as_of_date": [a for _, a, _ in rows],
                }
            )
            return TopicRows(max(a for _, a, _ in rows), pd.concat([keys, values], axis=1))

        return self._cached(("topics", student_id, course_id), load)

    def transitions(self, student_id: str, course_id: str) -> Moves:
        """The student's chapter moves in the course, oldest first (plain tuples: the ranker's
        one-student path in ``serving.prepared`` needs no frame)."""

        def load() -> Moves:
            query = sql.SQL(
                "select from_chapter_id, to_chapter_id, from_position, to_position,"
                " transitioned_at from {}.chapter_transitions"
                " where student_id = %(s)s and course_id = %(c)s order by transitioned_at"
            ).format(self.features)
            rows = self._rows(query, {"s": student_id, "c": course_id})
            return (
                Moves(*(tuple(column) for column in zip(*rows, strict=True))) if rows else Moves()
            )

        return self._cached(("moves", student_id, course_id), load)

    def close(self) -> None:
        self.pool.close()


class RealtimeSignals:
    """Whether a student was seen on the platform in the last minutes (the streaming jobs'
    ``<prefix>presence`` index). Optional: any failure or slowness answers None, never an error."""

    def __init__(self, es: Any, settings: Settings, serve: ServeSettings) -> None:
        self.es = es
        self.index = f"{settings.stream_index_prefix}presence"
        self.enabled = serve.realtime_features and es is not None
        self.timeout = serve.realtime_timeout_s
        self.cache = TTLCache(5.0, 10_000)

    def last_seen(self, student_id: str, course_id: str) -> datetime | None:
        if not self.enabled:
            return None
        key = (student_id, course_id)
        value = self.cache.get(key)
        if value is not MISSING:
            return value
        try:
            found = self.es.options(request_timeout=self.timeout, ignore_status=404).get(
                index=self.index, id=f"{course_id}|{student_id}"
            )
            seen = found.get("_source", {}).get("last_seen_at") if found.get("found") else None
            value = datetime.fromisoformat(seen.replace("Z", "+00:00")) if seen else None
        except Exception:  # an optional signal: the prediction must not depend on it
            value = None
        self.cache.put(key, value)
        return value

    @staticmethod
    def active_now(seen: datetime | None, window: timedelta = timedelta(minutes=5)) -> bool | None:
        return None if seen is None else datetime.now(UTC) - seen <= window
