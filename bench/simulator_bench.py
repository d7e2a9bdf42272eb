"""simulator_events_per_s: events generated and written as JSONL per second (target >= 200,000).

Simulates ~3 million events (6,000 students, 8 courses, 60 days) with --no-oltp into a temporary
directory, using every core. The figure counts every delivered line (duplicates and invalid ones
included) over the time to simulate them and write the JSONL parts; planning the school and
writing the truth and OLTP Parquet files are reported separately.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from lms.simulator.batch import run_simulation
from lms.simulator.config import SimulationConfig

CFG = SimulationConfig(students=6000, courses=8, days=60, seed=2026)


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lms-sim-bench-") as tmp:
        started = time.perf_counter()
        manifest = run_simulation(CFG, Path(tmp) / "school", oltp_dsn=None)
        total = time.perf_counter() - started
    timings = manifest["timings_s"]
    lines = manifest["events"]["lines"]
    events_s = timings["generate"] + timings["write_events"]
    return {
        "simulator_events_per_s": lines / events_s,
        "simulator_events": float(lines),
        "simulator_total_s": total,
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key} = {value:,.1f}")
