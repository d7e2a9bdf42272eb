"""Run a whole simulation: catalogue and population in the main process, behaviour and delivery in
worker processes (one task per shard of students), then one arrival-ordered stream.

Determinism: the root ``SeedSequence(seed)`` spawns one child for the catalogue, one for the
population and one per shard; a shard's output depends only on its own seed and students, and
shards are merged by (arrival time, shard, position), so any number of workers gives the same bytes.
"""

from __future__ import annotations

import multiprocessing
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from lms.simulator.behaviour import ShardBehaviour, ShardStudents
from lms.simulator.catalog import Catalog, build_catalog, day_start_ms
from lms.simulator.config import SimulationConfig
from lms.simulator.delivery import DeliveredShard, deliver
from lms.simulator.population import Population, build_population


@dataclass
class School:
    cfg: SimulationConfig
    catalog: Catalog
    population: Population
    outcome_rng: np.random.Generator
    shard_seeds: list[np.random.SeedSequence]


@dataclass
class ShardResult:
    """A delivered shard, packed for the trip back from a worker (one bytes blob pickles fast)."""

    shard: int
    blob: bytes
    arrival_ms: np.ndarray
    occurred_ms: np.ndarray
    counts: dict[str, int]
    n_valid: int
    late_ids: list[str] = field(default_factory=list)
    late_delay_ms: list[int] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)
    invalid: list[tuple[str | None, str, str]] = field(default_factory=list)
    attendance: list[tuple[str, str, int, int, bool]] = field(default_factory=list)

    @property
    def n_lines(self) -> int:
        return len(self.arrival_ms)


def plan_school(cfg: SimulationConfig) -> School:
    root = np.random.SeedSequence(cfg.seed)
    catalog_seq, population_seq, outcome_seq, shards_seq = root.spawn(4)
    catalog = build_catalog(cfg, np.random.default_rng(catalog_seq))
    population = build_population(cfg, catalog, np.random.default_rng(population_seq))
    return School(
        cfg, catalog, population, np.random.default_rng(outcome_seq), shards_seq.spawn(cfg.n_shards)
    )


def shard_students(school: School, shard: int) -> ShardStudents:
    cfg, pop = school.cfg, school.population
    lo = shard * cfg.shard_students
    hi = min(cfg.students, lo + cfg.shard_students)
    enrollments: list[list[tuple[int, int, float]]] = [[] for _ in range(hi - lo)]
    sel = np.flatnonzero((pop.enr_student >= lo) & (pop.enr_student < hi))
    for e in sel.tolist():
        enrollments[int(pop.enr_student[e]) - lo].append(
            (int(pop.enr_course[e]), int(pop.enr_at_ms[e]), float(pop.enr_interest[e]))
        )
    return ShardStudents(
        first_index=lo,
        student_ids=pop.student_ids[lo:hi],
        emails=pop.emails[lo:hi],
        engagement_base=pop.engagement_base[lo:hi],
        decay_rate=pop.decay_rate[lo:hi],
        ability=pop.ability[lo:hi],
        pref_hour=pop.pref_hour[lo:hi],
        device=pop.device[lo:hi],
        cheat=pop.cheat[lo:hi],
        dropout_day=pop.dropout_day[lo:hi],
        enrollments=enrollments,
    )


ShardTask = tuple[SimulationConfig, Catalog, ShardStudents, np.random.SeedSequence, int]


def simulate_shard(task: ShardTask) -> DeliveredShard:
    cfg, catalog, students, seed, _shard = task
    nrng = np.random.default_rng(seed)
    # random.Random for the per-event scalar draws (10x cheaper than numpy scalar calls).
    rnd = random.Random(int.from_bytes(seed.generate_state(4).tobytes(), "little"))
    day_uniforms = nrng.random((len(students.student_ids), cfg.days))
    behaviour = ShardBehaviour(
        cfg,
        catalog,
        students,
        rnd,
        day_uniforms,
        day_start_ms(cfg, 0),
        cfg.start.weekday(),
    )
    raw = behaviour.run()
    return deliver(raw, nrng, cfg.duplicate_rate, cfg.invalid_rate)


def _run_task(task: ShardTask) -> ShardResult:
    d = simulate_shard(task)
    return ShardResult(
        shard=task[4],
        blob="\n".join(d.lines).encode(),
        arrival_ms=d.arrival_ms,
        occurred_ms=d.occurred_ms,
        counts=d.counts,
        n_valid=d.n_valid,
        late_ids=d.late_ids,
        late_delay_ms=d.late_delay_ms,
        duplicate_ids=d.duplicate_ids,
        invalid=d.invalid,
        attendance=d.attendance,
    )


def shard_tasks(school: School) -> Iterator[ShardTask]:
    for k in range(school.cfg.n_shards):
        yield (school.cfg, school.catalog, shard_students(school, k), school.shard_seeds[k], k)


def run_shards(
    school: School,
    workers: int | None = None,
    on_shard: Callable[[ShardResult], None] | None = None,
) -> list[ShardResult]:
    n_workers = max(1, min(workers or os.cpu_count() or 1, school.cfg.n_shards))
    results: list[ShardResult] = []
    if n_workers == 1:
        for task in shard_tasks(school):
            results.append(_run_task(task))
            if on_shard:
                on_shard(results[-1])
        return results
    # fork: workers inherit the imported modules, and start in milliseconds.
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(n_workers) as pool:
        for result in pool.imap(_run_task, shard_tasks(school), chunksize=1):
            results.append(result)
            if on_shard:
                on_shard(result)
    return results


@dataclass
class MergedStream:
    """All shards in one arrival order (ties broken by shard, then position in the shard)."""

    lines: list[bytes]
    arrival_ms: np.ndarray
    occurred_ms: np.ndarray

    def batches(self, size: int = 100_000) -> Iterator[list[bytes]]:
        for lo in range(0, len(self.lines), size):
            yield self.lines[lo : lo + size]


def merge(results: list[ShardResult]) -> MergedStream:
    results = sorted(results, key=lambda r: r.shard)
    lines: list[bytes] = []
    for r in results:
        if r.n_lines:
            lines.extend(r.blob.split(b"\n"))
    if not lines:
        empty = np.zeros(0, dtype=np.int64)
        return MergedStream([], empty, empty)
    arrival = np.concatenate([r.arrival_ms for r in results])
    occurred = np.concatenate([r.occurred_ms for r in results])
    order = np.argsort(arrival, kind="stable")
    return MergedStream([lines[k] for k in order.tolist()], arrival[order], occurred[order])
