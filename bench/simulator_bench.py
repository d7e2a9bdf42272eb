"""simulator_events_per_s: events generated and written as JSONL per second (target >= 200,000).

Simulates ~3 million events (6,000 students, 8 courses, 60 days) with --no-oltp into a temporary
directory, using every core. The figure counts every delivered line (duplicates and invalid ones
included) over the wall-clock time to simulate them and write the JSONL parts; planning the school
and writing the truth and OLTP Parquet files are left out (reported as simulator_total_s).

Wall-clock figures swing with whatever else the machine runs, so the CPU cost per event is
reported too (simulator_cpu_us_per_event, all processes): on an otherwise idle machine with N cores
the rate approaches N / cpu_us_per_event * 1e6.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

from lms.simulator.batch import run_simulation
from lms.simulator.config import SimulationConfig

CFG = SimulationConfig(students=6000, courses=8, days=60, seed=2026)


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lms-sim-bench-") as tmp:
        cpu0 = _cpu_s()
        started = time.perf_counter()
        manifest = run_simulation(CFG, Path(tmp) / "school", oltp_dsn=None)
        total = time.perf_counter() - started
        cpu = _cpu_s() - cpu0
    timings = manifest["timings_s"]
    lines = manifest["events"]["lines"]
    events_s = timings["generate"] + timings["write_events"]
    return {
        "simulator_events_per_s": lines / events_s,
        "simulator_events": float(lines),
        "simulator_total_s": total,
        "simulator_cpu_us_per_event": cpu / lines * 1e6,
        "simulator_idle_estimate_events_per_s": (os.cpu_count() or 1) / (cpu / lines),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key} = {value:,.1f}")
