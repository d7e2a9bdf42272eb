"""Run the platform's benchmarks and record their figures in bench/results/latest.json.

Each benchmark is a module ``bench/<name>_bench.py`` with ``run() -> dict[str, float]`` returning
named figures. ``python -m bench.run`` runs them all; ``python -m bench.run <name>`` runs one and
keeps the other figures already recorded. Targets live in ``TARGETS`` so the report shows each
figure next to what it should reach.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "latest.json"

# figure -> (comparison, target). Figures without a target are informational.
TARGETS: dict[str, tuple[str, float]] = {
    "simulator_events_per_s": (">=", 200_000),
    "collector_events_per_s": (">=", 20_000),
    "collector_vs_bare_ratio": (">=", 0.5),
    "landing_events_per_s": (">=", 100_000),
    "dbt_incremental_vs_full": ("<=", 0.15),
    "stream_latency_p50_s": ("<=", 3),
    "stream_latency_p95_s": ("<=", 3),
    "train_dropout_s": ("<=", 60),
    "score_students_per_s": (">=", 50_000),
    "serve_dropout_p99_ms": ("<=", 15),
    "serve_dropout_rps": (">=", 1_000),
}


def available() -> list[str]:
    return sorted(p.name.removesuffix("_bench.py") for p in BENCH_DIR.glob("*_bench.py"))


def machine() -> dict[str, object]:
    mem_kib = 0
    try:
        with open("/proc/meminfo") as fh:
            mem_kib = int(fh.readline().split()[1])
    except OSError:
        pass
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def verdict(name: str, value: float) -> str:
    if name not in TARGETS:
        return ""
    op, target = TARGETS[name]
    ok = value >= target if op == ">=" else value <= target
    return f"target {op} {target:g}: {'met' if ok else 'MISSED'}"


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"error: unknown benchmark {unknown[0]!r}; choose from {', '.join(available())}")
        return 2
    previous: dict[str, object] = {}
    if RESULTS.exists():
        previous = json.loads(RESULTS.read_text())
    figures: dict[str, float] = dict(previous.get("figures", {}))  # type: ignore[arg-type]
    for name in names:
        print(f"bench: {name} ...", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}_bench")
        result: dict[str, float] = module.run()
        for key, value in result.items():
            figures[key] = value
            print(f"  {key} = {value:,.3f}  {verdict(key, value)}", flush=True)
        print(f"  ({time.perf_counter() - started:.1f} s)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {"figures": figures, "at": datetime.now(UTC).isoformat(), "machine": machine()}
    RESULTS.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(f"bench: wrote {RESULTS.relative_to(BENCH_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
