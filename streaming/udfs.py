"""Python functions the SQL calls: reference look-ups, the attendance aggregate, and the sink.

The sink is a vectorised (pandas) function: Flink hands it a batch of rows, it bulk-writes them
to Elasticsearch before returning. Flink finishes every bundle of a Python operator before it
takes a checkpoint, so a checkpoint never covers rows that were not written (at-least-once), and
deterministic ids make the replays after a restart overwrite rather than duplicate.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pyflink.table import DataTypes
from pyflink.table.udf import AggregateFunction, FunctionContext, ScalarFunction, udaf, udf

from streaming import elastic
from streaming.attendance import attendance
from streaming.config import StreamConfig
from streaming.reference import Reference

log = logging.getLogger(__name__)


class _LoadsReference:
    """Loads the reference data once per worker, when Flink opens the function."""

    def __init__(self, cfg: StreamConfig) -> None:
        self.cfg = cfg
        self.ref = Reference()

    def open(self, function_context: FunctionContext) -> None:
        self.ref = Reference.load(self.cfg.reference_path)


class _WithReference(_LoadsReference, ScalarFunction):
    pass


class ReadingTime(_WithReference):
    def eval(self, question_id: str | None) -> float | None:
        return self.ref.reading_time_s(question_id)


class PassPct(_WithReference):
    def eval(self, quiz_id: str | None) -> float:
        return self.ref.pass_pct(quiz_id, self.cfg.thresholds.default_pass_pct)


class CourseRunning(_WithReference):
    def eval(self, course_id: str | None, at: datetime | None) -> bool:
        if at is None:
            return False
        moment = at if at.tzinfo else at.replace(tzinfo=UTC)
        return self.ref.course_running(course_id, moment)


class Attendance(_LoadsReference, AggregateFunction):
    """Per (live class, student): the accumulated join/leave events → an attendance document."""

    def create_accumulator(self) -> list[Any]:
        # [course_id, live_class_id, student_id, JSON list of [ts_ms, event_type, event_id]]:
        # all strings, so the accumulator is one ARRAY<STRING> in Flink's state.
        return [None, None, None, "[]"]

    def accumulate(
        self,
        acc: list[Any],
        live_class_id: str,
        student_id: str,
        course_id: str | None,
        occurred_ms: int,
        event_type: str,
        event_id: str,
    ) -> None:
        acc[0] = acc[0] or course_id
        acc[1], acc[2] = live_class_id, student_id
        events = json.loads(acc[3])
        events.append([int(occurred_ms), event_type, event_id])
        acc[3] = json.dumps(events)

    def get_value(self, acc: list[Any]) -> Any:
        from pyflink.common import Row

        events = [(int(ts), kind, eid) for ts, kind, eid in json.loads(acc[3])]
        doc = attendance(events, self.ref.class_schedule(acc[1]))
        doc.update(course_id=acc[0], live_class_id=acc[1], student_id=acc[2])
        # The number of distinct events only grows: the document's version.
        return Row(json.dumps(doc), doc["events"])

    def get_accumulator_type(self) -> Any:
        return DataTypes.ARRAY(DataTypes.STRING())

    def get_result_type(self) -> Any:
        return DataTypes.ROW(
            [DataTypes.FIELD("doc", DataTypes.STRING()), DataTypes.FIELD("v", DataTypes.BIGINT())]
        )


class EsSink(ScalarFunction):
    """Bulk-writes one batch of (idx, doc_id, version, doc) rows; returns rows written.

    Presence documents (one per student and course, versioned by event time) go through a
    :class:`elastic.Throttle`: a student's first event is written at once, later ones at most
    once per ``presence_resolution_s``, so a steady stream of events from known students does
    not cost one Elasticsearch write each. Every ``STATS_EVERY_S`` the sink logs what it did.
    """

    STATS_EVERY_S = 30.0

    def __init__(self, cfg: StreamConfig) -> None:
        self.cfg = cfg

    def open(self, function_context: FunctionContext) -> None:
        self.es = elastic.client(self.cfg.es_url)
        self.ref = Reference.load(self.cfg.reference_path)
        self.scoped = {self.cfg.index(name) for name in elastic.TEACHER_SCOPED}
        self.presence = self.cfg.index("presence")
        self.throttle = elastic.Throttle(self.cfg.presence_resolution_s * 1000)
        self.stats = {"rows": 0, "docs": 0, "bulks": 0, "bulk_s": 0.0, "max_bulk_s": 0.0}
        self.stats_since = time.monotonic()

    def _log_stats(self) -> None:
        now = time.monotonic()
        if now - self.stats_since < self.STATS_EVERY_S:
            return
        st = self.stats
        log.info(
            "es_write: %d rows, %d documents in %d bulks (%.2f s, longest %.2f s) in %.0f s; "
            "presence writes held back %d",
            st["rows"], st["docs"], st["bulks"], st["bulk_s"], st["max_bulk_s"],
            now - self.stats_since, self.throttle.held_back,
        )  # fmt: skip
        self.stats = dict.fromkeys(st, 0)
        self.throttle.held_back = 0
        self.stats_since = now

    def eval(
        self, idx: pd.Series, doc_id: pd.Series, version: pd.Series, doc: pd.Series
    ) -> pd.Series:
        # Literal arguments (the index name, a NULL version) may arrive as scalars: broadcast.
        columns = [idx, doc_id, version, doc]
        n = max(len(c) for c in columns if isinstance(c, pd.Series))
        idx, doc_id, version, doc = (
            c if isinstance(c, pd.Series) else pd.Series([c] * n) for c in columns
        )
        actions = []
        for index, key, ver, text in zip(idx, doc_id, version, doc, strict=True):
            number = None if pd.isna(ver) else int(ver)
            throttled = index == self.presence and number is not None
            if throttled and not self.throttle.admit(key, number):
                continue
            body = elastic.expand_doc(text)
            if index in self.scoped and "course_id" in body:
                body["teacher_ids"] = self.ref.teacher_ids(body["course_id"])
            actions.append(elastic.Action(index, key, number, body))
        started = time.monotonic()
        written = elastic.write(self.es, actions)
        took = time.monotonic() - started
        st = self.stats
        st["rows"] += n
        st["docs"] += written
        st["bulks"] += 1 if actions else 0
        st["bulk_s"] += took
        st["max_bulk_s"] = max(st["max_bulk_s"], took)
        self._log_stats()
        return pd.Series([written] * n, dtype="int64")

    def close(self) -> None:
        self.es.close()


def register(t_env: Any, cfg: StreamConfig) -> None:
    t_env.create_temporary_function(
        "reading_time_s", udf(ReadingTime(cfg), result_type=DataTypes.DOUBLE())
    )
    t_env.create_temporary_function(
        "quiz_pass_pct", udf(PassPct(cfg), result_type=DataTypes.DOUBLE())
    )
    t_env.create_temporary_function(
        "course_running", udf(CourseRunning(cfg), result_type=DataTypes.BOOLEAN())
    )
    t_env.create_temporary_function("attendance_doc", udaf(Attendance(cfg)))
    t_env.create_temporary_function(
        "es_write", udf(EsSink(cfg), result_type=DataTypes.BIGINT(), func_type="pandas")
    )
