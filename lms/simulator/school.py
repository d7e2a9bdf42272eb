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
from functools import partial
from pathlib import Path

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
    blob: bytes  # the lines, newline-joined; empty when spooled to ``spool_path``
    arrival_ms: np.ndarray
    occurred_ms: np.ndarray
    counts: dict[str, int]
    n_valid: int
    late_ids: list[str] = field(default_factory=list)
    late_delay_ms: list[int] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)
    invalid: list[tuple[str | None, str, str]] = field(default_factory=list)
    attendance: list[tuple[str, str, int, int, bool]] = field(default_factory=list)
    spool_path: str | None = None

    def take_lines(self) -> list[bytes]:
        if self.spool_path is None:
            return self.blob.split(b"\n") if self.n_lines else []
        path = Path(self.spool_path)
        data = path.read_bytes()
        path.unlink()
        return data.split(b"\n") if self.n_lines else []

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


def _run_task(task: ShardTask, spool: str | None = None) -> ShardResult:
    d = simulate_shard(task)
    blob = "\n".join(d.lines).encode()
    spool_path = None
    if spool is not None:
        # A file in the page cache is a much cheaper way home for ~100 MB than the pool's pipe.
        spool_path = str(Path(spool) / f"shard-{task[4]:05d}.jsonl")
        Path(spool_path).write_bytes(blob)
        blob = b""
    return ShardResult(
        shard=task[4],
        blob=blob,
        spool_path=spool_path,
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
    spool: Path | None = None,
) -> list[ShardResult]:
    """Simulate every shard; with several workers, lines travel back through files in ``spool``
    (a directory the caller removes) when given."""
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
        run = partial(_run_task, spool=None if spool is None else str(spool))
        for result in pool.imap(run, shard_tasks(school), chunksize=1):
            results.append(result)
            if on_shard:
                on_shard(result)
    return results


@dataclass
class MergedStream:
    """All shards in one arrival order (ties broken by shard, then position in the shard).

    Lines are kept in shard order with a permutation; batches are gathered lazily so the caller can
    write one while the next is assembled."""

    _lines: list[bytes]
    order: np.ndarray
    arrival_ms: np.ndarray  # sorted
    occurred_ms: np.ndarray  # in arrival order

    def __len__(self) -> int:
        return len(self._lines)

    def batches(self, size: int = 100_000) -> Iterator[list[bytes]]:
        lines = self._lines
        for lo in range(0, len(lines), size):
            yield [lines[k] for k in self.order[lo : lo + size].tolist()]


def merge(results: list[ShardResult]) -> MergedStream:
    results = sorted(results, key=lambda r: r.shard)
    lines: list[bytes] = []
    for r in results:
        lines.extend(r.take_lines())
    if not lines:
        empty = np.zeros(0, dtype=np.int64)
        return MergedStream([], empty, empty, empty)
    arrival = np.concatenate([r.arrival_ms for r in results])
    occurred = np.concatenate([r.occurred_ms for r in results])
    order = np.argsort(arrival, kind="stable")
    return MergedStream(lines, order, arrival[order], occurred[order])
