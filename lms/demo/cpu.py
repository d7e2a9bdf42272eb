"""CPU seconds per part of the platform (psutil), so a demo step's wall time can be
explained: on a 2-core machine the streaming job, the services and the step's own Spark or dbt
share the cores, and a step's time says little without what ran beside it.

A process counts its own CPU time plus that of its ended children (the kernel adds a child's
time to its parent when the parent reaps it), so PostgreSQL backends, Flink's Python workers or
Spark's JVM that end during a step are still counted, in their parent's part.
"""

from __future__ import annotations

import os

import psutil

# First match wins; a process's part is decided by its command line. Native servers are matched
# on the program's name (a JVM's class path may mention "postgresql" too).
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("streaming", ("pyflink", "streaming.run")),
    ("kafka", ("kafka.Kafka",)),
    ("elasticsearch", ("org.elasticsearch",)),
    ("s3", ("org.gaul.s3proxy",)),
    ("collector", ("collector run",)),
    ("serving", ("lms serve", "cli.main serve")),
    ("prefect", ("prefect server",)),
)
PROGRAMS = {"postgres": "postgres", "bigquery-emulator": "bigquery"}
OTHER = "other"


def part_of(command: str) -> str:
    """The platform part a process belongs to; ``other`` is the step's own Spark, dbt, Prefect
    and anything else on the machine."""
    program = os.path.basename(command.split(" ", 1)[0]).split(":")[0]
    for name, part in PROGRAMS.items():
        if program.startswith(name):
            return part
    for part, needles in PARTS:
        if any(needle in command for needle in needles):
            return part
    return OTHER


def cpu_by_part() -> dict[str, float]:
    """CPU seconds used so far by each part's live processes (and their ended children)."""
    totals: dict[str, float] = {}
    for proc in psutil.process_iter(["cmdline", "cpu_times"]):
        times = proc.info["cpu_times"]
        if times is None:  # ended while we looked, or not ours to read
            continue
        part = part_of(" ".join(proc.info["cmdline"] or []))
        used = times.user + times.system + times.children_user + times.children_system
        totals[part] = totals.get(part, 0.0) + used
    return totals


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores) since boot."""
    times = psutil.cpu_times()
    # guest time is already inside user and nice; idle and iowait are not busy
    busy = ("user", "nice", "system", "irq", "softirq", "steal")
    return sum(getattr(times, name, 0.0) for name in busy)


def sample() -> dict[str, float]:
    return {"machine": machine_busy_s(), **cpu_by_part()}


def used_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each part used between two samples, largest first.

    A part whose processes all ended in between (a streaming job stopped) shows what it had
    used as a negative figure; it is left out rather than shown as such.
    """
    used = {part: after[part] - before.get(part, 0.0) for part in after}
    return {part: round(s, 1) for part, s in sorted(used.items(), key=lambda kv: -kv[1]) if s > 0}
