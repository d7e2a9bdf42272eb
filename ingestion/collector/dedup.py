"""Recently accepted event_ids, per process: a retried batch answers "duplicate" without a resend.

This is a short-circuit, not the guarantee: ids are remembered only after Kafka acknowledged
them, in one process, for ``ttl_s`` and at most ``max_size`` of them. Downstream de-duplicates by
event_id for the cases this cannot see (another worker, a restart, concurrent retries).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


class RecentIds:
    def __init__(
        self, max_size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_size = max_size
        self.ttl_s = ttl_s
        self._clock = clock
        # Insertion order is expiry order (one TTL for all), so the oldest entry is always first.
        self._seen: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, event_id: str, now: float | None = None) -> bool:
        added = self._seen.get(event_id)
        if added is None:
            return False
        return added > (self._clock() if now is None else now) - self.ttl_s

    def add_many(self, event_ids: Iterable[str]) -> None:
        if self.max_size <= 0:
            return
        now = self._clock()
        seen = self._seen
        for event_id in event_ids:
            # Re-inserted ids move to the end, keeping insertion order == expiry order.
            seen.pop(event_id, None)
            seen[event_id] = now
        horizon = now - self.ttl_s
        excess = len(seen) - self.max_size
        for event_id in list(_oldest(seen, max(excess, 0))):
            del seen[event_id]
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] > horizon:
                break
            del seen[oldest]


def _oldest(seen: dict[str, float], n: int) -> Iterable[str]:
    if n <= 0:
        return ()
    iterator = iter(seen)
    return [next(iterator) for _ in range(n)]
