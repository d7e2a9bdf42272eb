"""`lms simulate` without --live: simulate a school and write everything it produces."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lms.simulator.catalog import catalog_tables, question_truth
from lms.simulator.config import SimulationConfig
from lms.simulator.encoding import iso_z
from lms.simulator.output import ensure_writable
from lms.simulator.population import (
    CHEAT_BEHAVIOURS,
    enrollment_outcomes,
    student_table,
    student_truth,
    topic_ability_truth,
)
from lms.simulator.school import School, ShardResult, plan_school, run_school
from lms.simulator.writers import load_oltp, save_oltp_files, write_json, write_parquet


def oltp_tables(school: School) -> dict[str, pd.DataFrame]:
    tables = catalog_tables(school.catalog)
    tables["students"] = student_table(school.population)
    tables["enrollments"] = enrollment_outcomes(
        school.cfg, school.catalog, school.population, school.outcome_rng
    )
    return tables


def _ts(ms: list[int] | np.ndarray) -> pd.Series:
    return pd.to_datetime(pd.Series(np.asarray(ms, dtype=np.int64)), unit="ms", utc=True)


def write_truth(directory: Path, school: School, results: list[ShardResult]) -> dict[str, int]:
    pop, catalog = school.population, school.catalog
    write_parquet(student_truth(school.cfg, pop), directory / "students.parquet")
    write_parquet(topic_ability_truth(catalog, pop), directory / "topic_ability.parquet")
    write_parquet(question_truth(catalog), directory / "questions.parquet")
    attendance = [row for r in results for row in r.attendance]
    write_parquet(
        pd.DataFrame(
            {
                "live_class_id": [a[0] for a in attendance],
                "student_id": [a[1] for a in attendance],
                "joined_at": _ts([a[2] for a in attendance]),
                "left_at": _ts([a[3] for a in attendance]),
                "leave_event_sent": [a[4] for a in attendance],
            }
        ),
        directory / "live_attendance.parquet",
    )
    late_ids = [i for r in results for i in r.late_ids]
    write_parquet(
        pd.DataFrame(
            {
                "event_id": late_ids,
                "delay_s": np.asarray(
                    [d for r in results for d in r.late_delay_ms], dtype=np.float64
                )
                / 1000.0,
            }
        ),
        directory / "late_events.parquet",
    )
    dup_ids = [i for r in results for i in r.duplicate_ids]
    write_parquet(pd.DataFrame({"event_id": dup_ids}), directory / "duplicate_events.parquet")
    invalid = [row for r in results for row in r.invalid]
    write_parquet(
        pd.DataFrame(
            {
                "event_id": pd.Series([i[0] for i in invalid], dtype=object),
                "reason": [i[1] for i in invalid],
                "line": [i[2] for i in invalid],
            }
        ),
        directory / "invalid_events.parquet",
    )
    return {
        "late_events": len(late_ids),
        "duplicate_events": len(dup_ids),
        "invalid_events": len(invalid),
        "live_attendance_intervals": len(attendance),
    }


def run_simulation(
    cfg: SimulationConfig,
    out_dir: Path,
    *,
    oltp_dsn: str | None,
    workers: int | None = None,
    part_lines: int = 1_000_000,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> dict[str, Any]:
    """Simulate and write: events under ``out_dir``, truth under ``out_dir/truth``, OLTP rows into
    PostgreSQL (``oltp_dsn``) or ``out_dir/oltp/*.parquet``. Returns the manifest."""
    ensure_writable(out_dir)
    started = time.perf_counter()
    school = plan_school(cfg)

    done = {"shards": 0, "lines": 0}

    def shard_done(result: ShardResult) -> None:
        done["shards"] += 1
        done["lines"] += result.n_lines
        if on_progress:
            on_progress(done["shards"], cfg.n_shards, done["lines"])

    with tempfile.TemporaryDirectory(prefix=".shards-", dir=out_dir) as spool:
        results, parts, generated = run_school(
            school,
            out_dir,
            Path(spool),
            workers=workers,
            part_lines=part_lines,
            on_shard=shard_done,
        )
        events_written = time.perf_counter()

    # The OLTP rows (enrollment outcomes) draw from their own stream: built after the events, so
    # the workers start sooner; the bytes are the same either way.
    tables = oltp_tables(school)
    planted = write_truth(out_dir / "truth", school, results)
    if oltp_dsn is not None:
        from lms.oltp.migrate import migrate

        migrate(oltp_dsn)
        oltp_counts = load_oltp(oltp_dsn, tables)
        oltp_target = "postgresql"
    else:
        oltp_counts = save_oltp_files(out_dir / "oltp", tables)
        oltp_target = "oltp/"

    counts: Counter[str] = Counter()
    for r in results:
        counts.update(r.counts)
    n_valid = sum(r.n_valid for r in results)
    invalid_reasons = Counter(row[1] for r in results for row in r.invalid)
    pop = school.population
    cohorts = Counter(pop.cohort())
    enrollments = tables["enrollments"]
    n_lines = sum(r.n_lines for r in results)
    occurred = [r.occurred_range for r in results if r.occurred_range is not None]
    arrivals = [(int(r.arrival_ms[0]), int(r.arrival_ms[-1])) for r in results if r.n_lines]
    finished = time.perf_counter()
    manifest: dict[str, Any] = {
        "simulator": "lms.simulator",
        "contract_schema_version": "1.0",
        "args": cfg.to_json(),
        "seed": cfg.seed,
        "events": {
            "lines": n_lines,
            "valid_events": n_valid,
            "by_type": dict(sorted(counts.items())),
            "duplicates": planted["duplicate_events"],
            "invalid": planted["invalid_events"],
            "invalid_by_reason": dict(sorted(invalid_reasons.items())),
            "late": planted["late_events"],
            "late_share": planted["late_events"] / n_valid if n_valid else 0.0,
            "order": "arrival",
            "parts": parts,
        },
        "time_range": {
            "occurred_min": iso_z(min(o[0] for o in occurred)) if n_valid else None,
            "occurred_max": iso_z(max(o[1] for o in occurred)) if n_valid else None,
            "arrival_min": iso_z(min(a[0] for a in arrivals)) if n_valid else None,
            "arrival_max": iso_z(max(a[1] for a in arrivals)) if n_valid else None,
        },
        "planted": {
            "students": cfg.students,
            "cohorts": dict(sorted(cohorts.items())),
            "dropouts": cohorts.get("dropout", 0),
            "cheaters": int(pop.is_cheater.sum()),
            "cheaters_by_behaviour": {
                name: int(pop.cheat[:, j].sum()) for j, name in enumerate(CHEAT_BEHAVIOURS)
            },
            "enrollments_by_status": dict(
                sorted(enrollments["status"].value_counts().astype(int).to_dict().items())
            ),
            "live_attendance_intervals": planted["live_attendance_intervals"],
        },
        "oltp": {"target": oltp_target, "rows": oltp_counts},
        "truth_dir": "truth",
        "timings_s": {
            "generate": round(generated - started, 3),
            "write_events": round(events_written - generated, 3),
            "total": round(finished - started, 3),
        },
    }
    # Timings vary run to run; keep them out of the file so identical runs give identical bytes.
    write_json({k: v for k, v in manifest.items() if k != "timings_s"}, out_dir / "manifest.json")
    return manifest
