"""Where a simulation goes: JSONL parts in arrival order, the truth files, the manifest, and the
OLTP rows (PostgreSQL via COPY, or Parquet files with ``--no-oltp``)."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lms.errors import LmsError
from lms.oltp import OLTP_TABLES  # parents before children: COPY never meets a missing FK


class JsonlParts:
    """Writes batches of lines into ``events-00001.jsonl``, ``events-00002.jsonl``... of at most
    ``part_lines`` lines each; the sink a collector POSTer will sit beside.

    The file writes run on a background thread (they release the GIL), so the disk works while
    the caller assembles the next batch."""

    def __init__(self, directory: Path, part_lines: int = 1_000_000) -> None:
        self.directory = directory
        self.part_lines = part_lines
        self.parts: list[dict[str, Any]] = []
        self._fh: Any = None
        self._in_part = 0
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("events-*.jsonl"):
            stale.unlink()
        self._queue: queue.Queue[tuple[Any, bytes] | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="jsonl-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            fh, chunk = item
            try:
                if chunk:
                    fh.write(chunk)
                else:
                    fh.close()
            except BaseException as exc:  # surfaced by close()
                self._error = exc

    def _open(self) -> None:
        path = self.directory / f"events-{len(self.parts) + 1:05d}.jsonl"
        self._fh = path.open("wb", buffering=0)
        self.parts.append({"file": path.name, "lines": 0, "bytes": 0})
        self._in_part = 0

    def write(self, lines: list[bytes]) -> None:
        lo = 0
        while lo < len(lines):
            if self._fh is None or self._in_part >= self.part_lines:
                self._close_part()
                self._open()
            take = min(len(lines) - lo, self.part_lines - self._in_part)
            chunk = b"\n".join(lines[lo : lo + take]) + b"\n"
            self._queue.put((self._fh, chunk))
            self._in_part += take
            self.parts[-1]["lines"] += take
            self.parts[-1]["bytes"] += len(chunk)
            lo += take

    def _close_part(self) -> None:
        if self._fh is not None:
            self._queue.put((self._fh, b""))  # an empty chunk closes the file, in order
            self._fh = None

    def close(self) -> None:
        self._close_part()
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise LmsError(f"writing events under {self.directory} failed: {self._error}")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False, compression="zstd")


def write_json(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")


def _python_rows(frame: pd.DataFrame) -> Iterable[tuple[Any, ...]]:
    """Rows with plain Python values (None for missing) that psycopg can adapt."""
    columns = []
    for name in frame.columns:
        series = frame[name]
        values = series.astype(object).where(series.notna(), None).tolist()
        columns.append([v.item() if isinstance(v, np.generic) else v for v in values])
    return zip(*columns, strict=True)


def load_oltp(dsn: str, tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Replace the simulator's tables in one transaction (TRUNCATE + COPY), so a re-run of the same
    school leaves exactly one copy and a failed load leaves the previous one intact."""
    import psycopg

    try:
        with psycopg.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("TRUNCATE " + ", ".join(f"lms.{t}" for t in OLTP_TABLES))
            counts: dict[str, int] = {}
            for name in OLTP_TABLES:
                frame = tables[name]
                cols = ", ".join(frame.columns)
                with cur.copy(f"COPY lms.{name} ({cols}) FROM STDIN") as copy:
                    for row in _python_rows(frame):
                        copy.write_row(row)
                counts[name] = len(frame)
    except psycopg.OperationalError as exc:
        raise LmsError(
            f"cannot reach the OLTP database ({exc.__class__.__name__}: {str(exc).strip()[:200]}); "
            "start it with `lms services up postgres` or pass --no-oltp"
        ) from None
    except psycopg.errors.FeatureNotSupported as exc:
        raise LmsError(
            f"cannot truncate the OLTP tables: {str(exc).strip()[:300]}; another table references them"
        ) from None
    return counts


def save_oltp_files(directory: Path, tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    for name in OLTP_TABLES:
        write_parquet(tables[name], directory / f"{name}.parquet")
    return {name: len(tables[name]) for name in OLTP_TABLES}
