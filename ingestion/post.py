"""Send JSONL event files to the collector, the way an LMS backend would: batches, retries, a tally.

Batches respect the collector's limits (events per request and bytes per body). A batch that
fails with a retryable answer (503, a connection error, a timeout) is sent again as it was, with
the same event ids, which the platform de-duplicates; so retrying is always safe. The tally keeps
every event id the collector acknowledged, for reconciliation against the lake and warehouse.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from lms.errors import LmsError

MAX_EVENTS = 500
MAX_BYTES = 1_000_000  # under the collector's 1 MiB limit, leaving room for the envelope
RETRYABLE = {502, 503, 504}


@dataclass
class PostTally:
    sent_lines: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    retries: int = 0
    accepted_ids: set[str] = field(default_factory=set)
    rejected_reasons: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, lines: int, body: dict[str, object]) -> None:
        with self._lock:
            self.sent_lines += lines
            self.accepted += int(body["accepted"])  # type: ignore[call-overload]
            self.duplicate += int(body["duplicate"])  # type: ignore[call-overload]
            self.rejected += int(body["rejected"])  # type: ignore[call-overload]
            for outcome in body["results"]:  # type: ignore[attr-defined]
                if outcome["status"] == "accepted":
                    self.accepted_ids.add(outcome["event_id"])
                elif outcome["status"] == "rejected":
                    self.rejected_reasons[outcome["reason"] or "unknown"] += 1

    def line(self) -> str:
        return (
            f"sent {self.sent_lines:,} events: {self.accepted:,} accepted, "
            f"{self.duplicate:,} duplicate, {self.rejected:,} rejected ({self.retries} retries)"
        )


def jsonl_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.glob("*.jsonl") if p.is_file())
    elif path.is_file():
        files = [path]
    else:
        raise LmsError(f"no such file or directory: {path}")
    if not files:
        raise LmsError(f"no *.jsonl files in {path}")
    return files


def batches(lines: Iterable[bytes]) -> Iterator[list[bytes]]:
    """Group raw JSON lines into request-sized batches (count and bytes)."""
    batch: list[bytes] = []
    size = 0
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if batch and (len(batch) >= MAX_EVENTS or size + len(line) + 1 > MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += len(line) + 1
    if batch:
        yield batch


def _body(batch: list[bytes]) -> bytes:
    # Lines are forwarded byte for byte: invalid ones must reach the collector as they are, to be
    # dead-lettered with their reason, not be "fixed" or dropped by the sender.
    return b'{"events":[' + b",".join(batch) + b"]}"


class CollectorClient:
    def __init__(
        self, url: str, api_key: str, *, timeout_s: float = 30.0, max_attempts: int = 8
    ) -> None:
        self.url = url.rstrip("/") + "/v1/events"
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.client = httpx.Client(timeout=timeout_s)
        self.max_attempts = max_attempts

    def close(self) -> None:
        self.client.close()

    def send(self, batch: list[bytes], tally: PostTally) -> None:
        body = _body(batch)
        delay = 0.5
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.client.post(self.url, content=body, headers=self.headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 202:
                    tally.add(len(batch), orjson.loads(response.content))
                    return
                if response.status_code not in RETRYABLE:
                    detail = response.text[:300]
                    raise LmsError(
                        f"collector answered {response.status_code} at {self.url}: {detail}"
                    )
                problem = f"HTTP {response.status_code}"
            if attempt == self.max_attempts:
                raise LmsError(
                    f"collector at {self.url} still failing after {attempt} attempts ({problem})"
                )
            with tally._lock:
                tally.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 8.0)


def post_files(
    path: Path,
    url: str,
    api_key: str,
    *,
    concurrency: int = 4,
    on_progress: Callable[[PostTally], None] | None = None,
) -> PostTally:
    tally = PostTally()
    client = CollectorClient(url, api_key)

    def lines() -> Iterator[bytes]:
        for file in jsonl_files(path):
            with file.open("rb") as fh:
                yield from fh

    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            pending = []
            for batch in batches(lines()):
                pending.append(pool.submit(client.send, batch, tally))
                # Bounded in-flight work keeps memory flat on large simulations.
                if len(pending) >= concurrency * 4:
                    pending.pop(0).result()
                    if on_progress:
                        on_progress(tally)
            for future in pending:
                future.result()
    finally:
        client.close()
    if on_progress:
        on_progress(tally)
    return tally
