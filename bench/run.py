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
    if argv == ["--report"]:  # rewrite docs/performance.md from the recorded figures only
        PERFORMANCE.write_text(performance_page(json.loads(RESULTS.read_text())))
        return 0
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"error: unknown benchmark {unknown[0]!r}; choose from {', '.join(available())}")
        return 2
    figures: dict[str, float] = {}
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
    # Read the recorded figures only now and write at once: a benchmark run at the same time in
    # another shell keeps its figures (reading them at the start would drop theirs).
    recorded = json.loads(RESULTS.read_text()).get("figures", {}) if RESULTS.exists() else {}
    document = {
        "figures": recorded | figures,
        "at": datetime.now(UTC).isoformat(),
        "machine": machine(),
    }
    tmp = RESULTS.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    tmp.replace(RESULTS)
    PERFORMANCE.write_text(performance_page(document))
    print(f"bench: wrote {RESULTS.relative_to(BENCH_DIR.parent)} and docs/performance.md")
    return 0


PERFORMANCE = BENCH_DIR.parent / "docs" / "performance.md"

# Figure-name prefix -> the part of the platform it measures, in the order of the data's path.
AREAS = (
    ("simulator", "Simulator"),
    ("contract", "Contract validation"),
    ("bare", "Collector"),
    ("collector", "Collector"),
    ("landing", "Landing (Spark)"),
    ("dbt", "Warehouse (dbt)"),
    ("stream", "Streaming (Flink)"),
    ("train", "ML"),
    ("ml_", "ML"),
    ("score", "ML"),
    ("model", "Prediction service"),
    ("serve", "Prediction service"),
)


def _area(name: str) -> str:
    return next((area for prefix, area in AREAS if name.startswith(prefix)), "Other")


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


def performance_page(document: dict[str, object]) -> str:
    """docs/performance.md: every recorded figure next to its target, grouped by part."""
    figures: dict[str, float] = document["figures"]  # type: ignore[assignment]
    machine_info: dict[str, object] = document["machine"]  # type: ignore[assignment]
    order = {area: i for i, (_, area) in enumerate(AREAS)}
    rows = sorted(figures, key=lambda n: (order.get(_area(n), len(order)), n))
    lines = [
        "# Performance",
        "",
        "Generated by `make bench` (or `make bench BENCH=<name>`) from",
        "`bench/results/latest.json`; do not edit by hand. Each benchmark is `bench/<name>_bench.py`",
        "and says in its docstring what it measures and how. Figures named `*_load_avg_*` are the",
        "machine's load average around that benchmark: the machine is shared, and a figure taken",
        "under load understates what the code can do (the `*_cpu_*` figures do not depend on load).",
        "",
        f"Last run: {document['at']} on {machine_info.get('cpus')} CPUs, "
        f"{machine_info.get('memory_gib')} GiB, Python {machine_info.get('python')}.",
        "",
        "| Part | Figure | Latest | Target | |",
        "|---|---|---:|---|---|",
    ]
    for name in rows:
        value = figures[name]
        target = TARGETS.get(name)
        wanted = f"{target[0]} {target[1]:,g}" if target else ""
        status = verdict(name, value).rsplit(": ", 1)[-1] if target else ""
        lines.append(f"| {_area(name)} | `{name}` | {_fmt(value)} | {wanted} | {status} |")
    missing = [n for n in TARGETS if n not in figures]
    if missing:
        lines += [
            "",
            "Targets without a recorded figure yet: " + ", ".join(f"`{n}`" for n in missing) + ".",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
