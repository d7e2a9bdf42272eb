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
import multiprocessing
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

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
    """A delivered shard, spooled by its worker to ``spool_path``: the heads of its lines (a
    ``HEAD_LEN``-byte row each, in arrival order), then the rest of each line in the same order.
    The arrays and the planted truth travel back from the worker."""

    shard: int
    spool_path: str
    arrival_ms: np.ndarray  # sorted, one per line
    has_head: np.ndarray  # false for invalid lines, which are whole in their rest
    rest_ends: np.ndarray  # offset just past each line's rest (newline included) in the rests
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
        n = len(d)
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
        fh.write(d.heads.data)
        fh.write(data)
    n = len(d)
    return ShardResult(
        shard=task[4],
        spool_path=spool_path,
        arrival_ms=d.arrival_ms,
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


# A write task: (part file, byte offset in it, [(spool file, byte offset, size)], and the pieces of
# each line in the concatenation of those ranges, in output order: (head start, head end, rest
# start, rest end)).
WriteTask = tuple[str, int, list[tuple[str, int, int]], np.ndarray]
WRITE_CHUNK_LINES = 1 << 17
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc malloc.h)
_IOV_MAX = 1024


def _write_chunk(task: WriteTask) -> int:
    """Gather one run of output lines from the spool files and write it in place."""
    path, offset, ranges, pieces = task
    buf = bytearray(sum(size for _, _, size in ranges))
    view = memoryview(buf)
    pos = 0
    for spool_path, lo, size in ranges:
        with open(spool_path, "rb", buffering=0) as fh:
            fh.seek(lo)
            end = pos + size
            while pos < end:
                got = fh.readinto(view[pos:end])
                if not got:
                    raise OSError(f"{spool_path} is shorter than expected")
                pos += got
    # Two buffers per line (head, rest), written with pwritev: the kernel gathers them.
    bounds = pieces.reshape(-1, 2)
    views = list(map(view.__getitem__, map(slice, bounds[:, 0].tolist(), bounds[:, 1].tolist())))
    sizes = np.add.reduceat(bounds[:, 1] - bounds[:, 0], np.arange(0, len(views), _IOV_MAX))
    fd = os.open(path, os.O_WRONLY)
    try:
        for i, size in zip(range(0, len(views), _IOV_MAX), sizes.tolist(), strict=True):
            batch = views[i : i + _IOV_MAX]
            done = os.pwritev(fd, batch, offset)
            if done < size:  # a short write: finish this batch the plain way
                rest = b"".join(batch)[done:]
                while rest:
                    rest = rest[os.pwrite(fd, rest, offset + size - len(rest)) :]
            offset += size
    finally:
        os.close(fd)
    return len(pieces)


def plan_writes(
    results: list[ShardResult], out_dir: Path, part_lines: int
) -> tuple[list[WriteTask], list[dict[str, Any]]]:
    """Where every line goes: one global arrival order (ties by shard, then position in the
    shard), cut into parts of ``part_lines`` and chunks that a worker writes independently."""
    results = sorted(results, key=lambda r: r.shard)
    counts = np.asarray([r.n_lines for r in results], dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return [], []
    order = np.argsort(np.concatenate([r.arrival_ms for r in results]), kind="stable")
    # Per line (concatenated in shard order), where its pieces sit in its shard's spool file.
    head_len = np.concatenate([r.has_head for r in results]).astype(np.int64) * HEAD_LEN
    local = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    head_start = local * HEAD_LEN
    heads_size = np.repeat(counts * HEAD_LEN, counts)
    rest_end = np.concatenate([r.rest_ends for r in results]) + heads_size
    rest_start = np.concatenate(
        [np.concatenate([[0], r.rest_ends[:-1]]) for r in results if r.n_lines]
    )
    rest_start += heads_size
    lengths = head_len + rest_end - rest_start
    shard_of = np.repeat(np.arange(len(results)), counts)
    shard_first = np.cumsum(counts) - counts
    out_lengths = lengths[order]
    tasks: list[WriteTask] = []
    parts: list[dict[str, Any]] = []
    taken = np.zeros(len(results), dtype=np.int64)  # lines of each shard already placed
    for p, part_lo in enumerate(range(0, total, part_lines)):
        part_hi = min(total, part_lo + part_lines)
        path = out_dir / f"events-{p + 1:05d}.jsonl"
        part_bytes = int(out_lengths[part_lo:part_hi].sum())
        parts.append({"file": path.name, "lines": part_hi - part_lo, "bytes": part_bytes})
        offset = 0
        for lo in range(part_lo, part_hi, WRITE_CHUNK_LINES):
            hi = min(part_hi, lo + WRITE_CHUNK_LINES)
            c = order[lo:hi]
            s = shard_of[c]
            n_in = np.bincount(s, minlength=len(results))
            ranges: list[tuple[str, int, int]] = []
            # Where each shard's head range and rest range land in the chunk's buffer.
            head_shift = np.zeros(len(results), dtype=np.int64)
            rest_shift = np.zeros(len(results), dtype=np.int64)
            pos = 0
            for k in np.flatnonzero(n_in).tolist():
                first = int(shard_first[k] + taken[k])
                last = first + int(n_in[k]) - 1
                spool_path = results[k].spool_path
                lo_h, hi_h = int(head_start[first]), int(head_start[last]) + HEAD_LEN
                ranges.append((spool_path, lo_h, hi_h - lo_h))
                head_shift[k] = pos - lo_h
                pos += hi_h - lo_h
                lo_r, hi_r = int(rest_start[first]), int(rest_end[last])
                ranges.append((spool_path, lo_r, hi_r - lo_r))
                rest_shift[k] = pos - lo_r
                pos += hi_r - lo_r
            taken += n_in
            pieces = np.empty((len(c), 4), dtype=np.int64)
            pieces[:, 0] = head_start[c] + head_shift[s]
            pieces[:, 1] = pieces[:, 0] + head_len[c]
            pieces[:, 2] = rest_start[c] + rest_shift[s]
            pieces[:, 3] = rest_end[c] + rest_shift[s]
            tasks.append((str(path), offset, ranges, pieces))
            offset += int(out_lengths[lo:hi].sum())
    return tasks, parts


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
    n_workers = max(1, min(workers or os.cpu_count() or 1, school.cfg.n_shards))
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_parts(out_dir)
    run = partial(_run_task, spool=str(spool))
    results: list[ShardResult] = []

    def collect(results_iter: Iterator[ShardResult]) -> None:
        for result in results_iter:
            results.append(result)
            if on_shard:
                on_shard(result)

    if n_workers == 1:
        collect(map(run, shard_tasks(school)))
        generated = time.perf_counter()
        tasks, parts = plan_writes(results, out_dir, part_lines)
        _create_parts(out_dir, parts)
        for task in tasks:
            _write_chunk(task)
        return results, parts, generated
    # fork: workers inherit the imported modules, and start in milliseconds.
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(n_workers, initializer=_keep_freed_memory) as pool:
        collect(pool.imap(run, shard_tasks(school), chunksize=1))
        generated = time.perf_counter()
        tasks, parts = plan_writes(results, out_dir, part_lines)
        _create_parts(out_dir, parts)
        for _ in pool.imap_unordered(_write_chunk, tasks, chunksize=1):
            pass
    return results, parts, generated


def _create_parts(out_dir: Path, parts: list[dict[str, Any]]) -> None:
    for part in parts:
        with open(out_dir / part["file"], "wb") as fh:
            fh.truncate(part["bytes"])
