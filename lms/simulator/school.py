"""Run a whole simulation: catalogue and population in the main process, behaviour and delivery in
worker processes (one task per shard of students), then one arrival-ordered stream.

Determinism: the root ``SeedSequence(seed)`` spawns one child for the catalogue, one for the
population and one per shard; a shard's output depends only on its own seed and students, and
shards are merged by (arrival time, shard, position), so any number of workers gives the same bytes.

Each worker spools its shard's lines, already in arrival order, to a file. The main process only
computes the global order from the arrival times; the same workers then gather and write the JSONL
parts, each taking runs of output lines whose byte offsets in the parts are known in advance.
"""

from __future__ import annotations

import ctypes
import mmap
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np

from lms.simulator.behaviour import ShardBehaviour, ShardStudents
from lms.simulator.catalog import Catalog, build_catalog, day_start_ms
from lms.simulator.config import SimulationConfig
from lms.simulator.delivery import DeliveredShard, deliver
from lms.simulator.encoding import HEAD_LEN
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
    """A delivered shard, spooled by its worker to ``spool_path``: the head of every event
    (``HEAD_LEN`` bytes a row, generation order), then the rest of every entry (see
    :class:`lms.simulator.delivery.DeliveredShard`). The index of the lines in arrival order and
    the planted truth travel back from the worker."""

    shard: int
    spool_path: str
    n_events: int  # head rows in the spool
    arrival_ms: np.ndarray  # per line, sorted
    line_entry: np.ndarray  # per line: its entry
    has_head: np.ndarray  # per line: false for invalid lines (whole in their rest)
    rest_ends: np.ndarray  # per entry: offset just past its rest (newline included) in the rests
    occurred_range: tuple[int, int] | None  # (min, max) occurred ms over the lines
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


def _rest_ends(d: DeliveredShard, text: str, data: bytes) -> np.ndarray:
    if text.isascii():  # one byte per character: lengths from the pieces, no scan
        n = len(d.bodies)
        lengths = np.fromiter(map(len, d.sessions), dtype=np.int64, count=n)
        lengths += np.fromiter(map(len, d.bodies), dtype=np.int64, count=n)
        lengths += 1
        return np.cumsum(lengths)
    return np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1


def _run_task(task: ShardTask, spool: str) -> ShardResult:
    d = simulate_shard(task)
    text = d.rest_text()
    data = text.encode()
    spool_path = str(Path(spool) / f"shard-{task[4]:05d}.spool")
    with open(spool_path, "wb", buffering=0) as fh:
        fh.write(d.heads().data)
        fh.write(data)
    n = len(d)
    return ShardResult(
        shard=task[4],
        spool_path=spool_path,
        n_events=len(d.event_ms),
        arrival_ms=d.arrival_ms,
        line_entry=d.line_entry,
        has_head=d.has_head,
        rest_ends=_rest_ends(d, text, data) if n else np.zeros(0, dtype=np.int64),
        occurred_range=(int(d.occurred_ms.min()), int(d.occurred_ms.max())) if n else None,
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


WRITE_CHUNK_LINES = 1 << 17
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc malloc.h)
_IOV_MAX = 1024


@dataclass
class WritePlan:
    """Every output line as two pieces (head, rest) in the spool files, in output order: for
    piece ``j``, the spool (an index into ``spools``), the byte offset in it and the length.
    Chunk ``c`` covers lines ``bounds[c]:bounds[c+1]`` (pieces ``2 * bounds[c]:...``) and lands
    at byte ``offsets[c]`` of ``files[c]``."""

    spools: list[str]
    piece_spool: np.ndarray  # (2 * lines,) int32
    piece_at: np.ndarray  # (2 * lines,) int64
    piece_len: np.ndarray  # (2 * lines,) int64
    bounds: list[int]
    files: list[str]
    offsets: list[int]


# The plan of the current write phase: the write workers are forked after it is set, so they
# inherit it instead of receiving it through a pipe.
_PLAN: WritePlan | None = None


def plan_writes(
    results: list[ShardResult], out_dir: Path, part_lines: int
) -> tuple[WritePlan, list[dict[str, Any]]]:
    """Where every line goes: one global arrival order (ties by shard, then position in the
    shard), cut into parts of ``part_lines`` and chunks that a worker writes independently."""
    results = sorted((r for r in results if r.n_lines), key=lambda r: r.shard)
    counts = np.asarray([r.n_lines for r in results], dtype=np.int64)
    total = int(counts.sum())
    plan = WritePlan([r.spool_path for r in results], *(np.zeros(0, np.int64),) * 3, [0], [], [])
    if total == 0:
        return plan, []
    order = np.argsort(np.concatenate([r.arrival_ms for r in results]), kind="stable")
    spool = np.repeat(np.arange(len(results), dtype=np.int32), counts)[order]
    entry = np.concatenate([r.line_entry for r in results])[order]
    has_head = np.concatenate([r.has_head for r in results])[order]
    # Per shard: where its rests start in its spool, and each entry's rest bounds.
    rest_base = np.asarray([r.n_events * HEAD_LEN for r in results], dtype=np.int64)
    entry_first = np.cumsum([0] + [len(r.rest_ends) for r in results])[:-1]
    rest_ends = np.concatenate([r.rest_ends for r in results])
    rest_starts = np.concatenate([np.concatenate([[0], r.rest_ends[:-1]]) for r in results])
    flat = entry_first[spool] + entry
    rest_start = rest_starts[flat]
    plan.piece_spool = np.repeat(spool, 2)
    plan.piece_at = np.empty(2 * total, dtype=np.int64)
    plan.piece_at[0::2] = entry * HEAD_LEN
    plan.piece_at[1::2] = rest_base[spool] + rest_start
    plan.piece_len = np.empty(2 * total, dtype=np.int64)
    plan.piece_len[0::2] = has_head * HEAD_LEN
    plan.piece_len[1::2] = rest_ends[flat] - rest_start
    line_len = plan.piece_len.reshape(-1, 2).sum(axis=1)
    parts: list[dict[str, Any]] = []
    bounds: list[int] = []
    for p, part_lo in enumerate(range(0, total, part_lines)):
        part_hi = min(total, part_lo + part_lines)
        path = out_dir / f"events-{p + 1:05d}.jsonl"
        starts = list(range(part_lo, part_hi, WRITE_CHUNK_LINES))
        offsets = np.cumsum(
            np.add.reduceat(line_len[part_lo:part_hi], np.subtract(starts, part_lo))
        )
        plan.offsets.extend([0, *offsets[:-1].tolist()])
        plan.files.extend([str(path)] * len(starts))
        bounds.extend(starts)
        parts.append({"file": path.name, "lines": part_hi - part_lo, "bytes": int(offsets[-1])})
    plan.bounds = [*bounds, total]
    return plan, parts


def _pwritev_function() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pwritev = libc.pwritev
    except (OSError, AttributeError):
        return None
    pwritev.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int64]
    pwritev.restype = ctypes.c_ssize_t
    return cast(Callable[[int, int, int, int], int], pwritev)


_PWRITEV = _pwritev_function() if sys.platform.startswith("linux") else None


def _write_iovecs(fd: int, iov: np.ndarray, offset: int) -> None:
    """pwritev(2) straight from a (n, 2) uint64 array of struct iovec (address, length): the
    kernel gathers the pieces, no Python object per piece."""
    assert _PWRITEV is not None
    k = 0
    while k < len(iov):
        batch = iov[k : k + _IOV_MAX]
        done = _PWRITEV(fd, batch.ctypes.data, len(batch), offset)
        if done < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        offset += done
        covered = np.cumsum(batch[:, 1])
        full = int(np.searchsorted(covered, done, side="right"))
        k += full
        if full < len(batch):  # a short write: resume inside the partly written piece
            partial = done - (int(covered[full - 1]) if full else 0)
            iov[k, 0] += np.uint64(partial)
            iov[k, 1] -= np.uint64(partial)


def _write_chunk(chunk: int) -> int:
    """Gather one run of output lines from the spool files (mapped, not read) and write it in
    place in its part."""
    plan = _PLAN
    assert plan is not None
    lo, hi = plan.bounds[chunk], plan.bounds[chunk + 1]
    spool = plan.piece_spool[2 * lo : 2 * hi]
    at = plan.piece_at[2 * lo : 2 * hi]
    length = plan.piece_len[2 * lo : 2 * hi]
    maps: dict[int, mmap.mmap] = {}
    try:
        for k in np.unique(spool).tolist():
            with open(plan.spools[k], "rb") as fh:
                maps[k] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        fd = os.open(plan.files[chunk], os.O_WRONLY)
        try:
            if _PWRITEV is not None:
                # The addresses stay valid while the maps are open.
                base = np.zeros(len(plan.spools), dtype=np.uint64)
                for k, m in maps.items():
                    arr = np.frombuffer(m, dtype=np.uint8)
                    base[k] = arr.ctypes.data
                    del arr
                iov = np.empty((len(at), 2), dtype=np.uint64)
                iov[:, 0] = base[spool] + at.astype(np.uint64)
                iov[:, 1] = length
                _write_iovecs(fd, iov, plan.offsets[chunk])
            else:  # pragma: no cover - platforms without pwritev(2) through ctypes
                mvs = {k: memoryview(m) for k, m in maps.items()}
                data = b"".join(
                    mvs[k][a : a + n]
                    for k, a, n in zip(spool.tolist(), at.tolist(), length.tolist(), strict=True)
                )
                os.pwrite(fd, data, plan.offsets[chunk])
                for mv in mvs.values():
                    mv.release()
        finally:
            os.close(fd)
    finally:
        for m in maps.values():
            m.close()
    return hi - lo


def _keep_freed_memory() -> None:
    """In a worker: let glibc keep freed memory instead of returning it to the kernel after every
    shard (each shard allocates and frees ~100 MB; faulting it in again costs more kernel time
    than the work). A no-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)
    except (OSError, AttributeError):
        pass


def _clear_parts(out_dir: Path) -> None:
    for stale in out_dir.glob("events-*.jsonl"):
        stale.unlink()


def run_school(
    school: School,
    out_dir: Path,
    spool: Path,
    *,
    workers: int | None = None,
    part_lines: int = 1_000_000,
    on_shard: Callable[[ShardResult], None] | None = None,
) -> tuple[list[ShardResult], list[dict[str, Any]], float]:
    """Simulate every shard (lines spooled to files under ``spool``, a directory the caller
    removes), then write the JSONL parts in global arrival order, the chunks in parallel.
    Returns the shard results (in shard order), the parts, and when generation finished
    (``time.perf_counter``)."""
    global _PLAN
    n_workers = max(1, min(workers or os.cpu_count() or 1, school.cfg.n_shards))
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_parts(out_dir)
    run = partial(_run_task, spool=str(spool))
    results: list[ShardResult] = []
    # fork: workers inherit the imported modules (and, for writing, the plan), and start in
    # milliseconds.
    ctx = multiprocessing.get_context("fork")
    if n_workers == 1:
        results_iter: Iterator[ShardResult] = map(run, shard_tasks(school))
        for result in results_iter:
            results.append(result)
            if on_shard:
                on_shard(result)
    else:
        with ctx.Pool(n_workers, initializer=_keep_freed_memory) as pool:
            for result in pool.imap(run, shard_tasks(school), chunksize=1):
                results.append(result)
                if on_shard:
                    on_shard(result)
    generated = time.perf_counter()
    plan, parts = plan_writes(results, out_dir, part_lines)
    _create_parts(out_dir, parts)
    n_chunks = len(plan.bounds) - 1
    _PLAN = plan
    try:
        if n_workers == 1 or n_chunks <= 1:
            for chunk in range(n_chunks):
                _write_chunk(chunk)
        else:
            with ctx.Pool(min(n_workers, n_chunks)) as pool:
                for _ in pool.imap_unordered(_write_chunk, range(n_chunks)):
                    pass
    finally:
        _PLAN = None
    return results, parts, generated


def _create_parts(out_dir: Path, parts: list[dict[str, Any]]) -> None:
    for part in parts:
        with open(out_dir / part["file"], "wb") as fh:
            fh.truncate(part["bytes"])
