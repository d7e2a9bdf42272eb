"""`lms simulate --live`: the same behaviour model, replayed now at a steady rate.

Shards of a school are simulated one at a time in arrival order; each event's occurred_at is
re-stamped to the current time minus its planted lateness, so late, duplicate and invalid events
keep their character. When a school runs out, the next one (seed + 1) starts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO

import numpy as np

from lms.simulator.config import SimulationConfig
from lms.simulator.encoding import OCCURRED_OFFSET, TIMESTAMP_LEN, ms_to_iso
from lms.simulator.school import plan_school, shard_tasks, simulate_shard

TICKS_PER_S = 20
_MARK = '"occurred_at":"'


@dataclass
class LiveSummary:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def line(self, target: str) -> str:
        return f"live: sent {self.events:,} events in {self.seconds:.1f} s ({self.rate:,.0f}/s) to {target}"


@dataclass
class LiveShard:
    """A delivered shard's lines (arrival order) with their timestamps."""

    lines: list[str]
    arrival_ms: np.ndarray
    occurred_ms: np.ndarray


def iter_shards(cfg: SimulationConfig) -> Iterator[LiveShard]:
    seed = cfg.seed
    while True:
        school = plan_school(replace(cfg, seed=seed))
        for task in shard_tasks(school):
            d = simulate_shard(task)
            yield LiveShard(d.lines, d.arrival_ms, d.occurred_ms)
        seed += 1


def restamp(shard: LiveShard, lo: int, hi: int, now_ms: int) -> list[str]:
    lag = shard.arrival_ms[lo:hi] - shard.occurred_ms[lo:hi]
    stamps = ms_to_iso(now_ms - np.maximum(lag, 0))
    out = []
    for line, stamp in zip(shard.lines[lo:hi], stamps, strict=True):
        if line[OCCURRED_OFFSET - len(_MARK) : OCCURRED_OFFSET] == _MARK:
            line = line[:OCCURRED_OFFSET] + stamp + line[OCCURRED_OFFSET + TIMESTAMP_LEN - 1 :]
        out.append(line)
    return out


def run_live(
    cfg: SimulationConfig, rate: float, duration: float | None, sink: BinaryIO
) -> LiveSummary:
    """Write JSONL to ``sink`` at ``rate`` events/s until ``duration`` seconds or Ctrl-C."""
    per_tick = rate / TICKS_PER_S
    started = time.monotonic()
    sent = 0
    owed = 0.0
    shards = iter_shards(cfg)
    shard = next(shards)
    pos = 0
    tick = 0
    try:
        while duration is None or time.monotonic() - started < duration:
            owed += per_tick
            want = int(owed)
            owed -= want
            lines: list[str] = []
            now_ms = int(time.time() * 1000)
            while want > 0:
                if pos >= len(shard.lines):
                    shard, pos = next(shards), 0
                    continue
                take = min(want, len(shard.lines) - pos)
                lines.extend(restamp(shard, pos, pos + take, now_ms))
                pos += take
                want -= take
            if lines:
                sink.write(("\n".join(lines) + "\n").encode())
                sink.flush()
                sent += len(lines)
            tick += 1
            wait = started + tick / TICKS_PER_S - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    return LiveSummary(sent, time.monotonic() - started)
