"""Run the dbt project as a subprocess, with credentials and schemas taken from Settings.

A subprocess rather than dbt's in-process runner: dbt keeps global state (flags, adapters,
the manifest) that does not survive two invocations with different settings in one process, and
the ML flows and tests do exactly that. dbt's output goes to the logger line by line; a failure
raises `DbtFailed` naming the failed nodes, read from dbt's own run_results.json.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from lms.errors import LmsError
from lms.settings import REPO_ROOT, Settings, get_settings

log = logging.getLogger(__name__)

PROFILES_DIR = REPO_ROOT / "dbt_project"
FAILED_STATUSES = {"error", "fail", "runtime error"}
# PostgreSQL settings for dbt's sessions (libpq reads PGOPTIONS; dbt-postgres profiles cannot
# set them). JIT off: an incremental run's queries read few rows, but the planner's estimates
# for them run into the millions, so each one paid 0.5-2.3 s of JIT compilation; on the full
# build's scans JIT made no measurable difference (15.0-15.3 s with it, 15.6 s without, for
# the heatmap over 5 M events).
PG_SESSION_OPTIONS = "-c jit=off"
# dbt's own log file (logs/dbt.log) at info, the level of its console output: at its default,
# debug, it formats and writes every query and connection event, ~3.5 s of an incremental
# build's CPU (py-spy). What a failure needs is still there: the console lines (in our log),
# the failed nodes' messages (run_results.json) and their compiled SQL (target/run/).
# DBT_LOG_LEVEL_FILE=debug in the environment brings the full log back.
DBT_FILE_LOG_LEVEL = "info"
# The scheduled build (the pipeline flow, so the demo, and the benchmark that times it): every
# model, snapshot and data test, without dbt's unit tests. Unit tests check the models' SQL
# against fixed fixtures, not the data, so they can only fail when the project changes: they
# run where it changes (`make test`: tests/integration/test_warehouse.py builds with them; a
# developer's `lms warehouse build`). dbt's docs recommend the same (unit tests in development
# and CI, not in production). In a 1 % incremental build they were ~6 s of node time.
SCHEDULED_BUILD = ("build", "--exclude-resource-type", "unit_test")


class DbtFailed(LmsError):
    """dbt ran and some nodes failed (or dbt could not start); the message names them."""

    def __init__(self, message: str, failed_nodes: list[str] | None = None) -> None:
        super().__init__(message)
        self.failed_nodes = failed_nodes or []


def dbt_target_path(settings: Settings) -> Path:
    """dbt's target directory: `target/` for the dev warehouse, its own one per target, database
    and schema prefix, so two runs on different schemas (a test next to the dev warehouse, the
    benchmark's database) never share artefacts."""
    default_db = Settings.model_fields["pg_warehouse_db"].default
    if (
        not settings.dbt_schema_prefix
        and settings.dbt_target == "postgres"
        and settings.pg_warehouse_db == default_db
    ):
        return REPO_ROOT / "target"
    name = f"{settings.dbt_target}-{settings.pg_warehouse_db}-{settings.dbt_schema_prefix or 'default'}"
    return REPO_ROOT / "target" / "runs" / name.strip("_-")


def dbt_env(settings: Settings) -> dict[str, str]:
    """The environment profiles.yml and the project read (their only source of configuration)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    env.update(
        {
            "DBT_PROFILES_DIR": str(PROFILES_DIR),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "LMS_ENV": settings.env,
            "LMS_DBT_TARGET": settings.dbt_target,
            "LMS_DBT_SCHEMA_PREFIX": settings.dbt_schema_prefix,
            "LMS_PG_HOST": settings.pg_host,
            "LMS_PG_PORT": str(settings.pg_port),
            "LMS_PG_USER": settings.pg_user,
            "LMS_PG_PASSWORD": settings.pg_password,
            "LMS_PG_WAREHOUSE_DB": settings.pg_warehouse_db,
            "LMS_RAW_SCHEMA": settings.raw_schema,
            "LMS_BQ_PROJECT": settings.bq_project,
            "LMS_BQ_DATASET": settings.bq_dataset,
            "LMS_BQ_ENDPOINT_URL": settings.bq_endpoint_url,
        }
    )
    for name in ("LMS_BQ_AUTH_METHOD", "LMS_BQ_LOCATION"):
        if name in os.environ:
            env[name] = os.environ[name]
    env["PGOPTIONS"] = " ".join(filter(None, [env.get("PGOPTIONS", ""), PG_SESSION_OPTIONS]))
    env.setdefault("DBT_LOG_LEVEL_FILE", DBT_FILE_LOG_LEVEL)
    return env


def _dbt_executable() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def _failed_nodes(target_path: Path) -> list[str]:
    results = target_path / "run_results.json"
    if not results.exists():
        return []
    data = json.loads(results.read_text())
    failed = []
    for result in data.get("results", []):
        if str(result.get("status")) in FAILED_STATUSES:
            # dbt's first line only names the model; the database's reason follows it
            message = [m.strip() for m in (result.get("message") or "").splitlines() if m.strip()]
            reason = " / ".join(message[:3])[:400]
            failed.append(f"{result['unique_id']} ({result['status']}: {reason})")
    return failed


PROJECT_FILES_STAMP = "lms_project_files.sha256"


def project_files_fingerprint() -> str:
    """A hash of the dbt project's file names (not contents)."""
    names = sorted(
        str(path.relative_to(REPO_ROOT))
        for path in (REPO_ROOT / "dbt_project").rglob("*")
        if path.is_file()
    )
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def forget_partial_parse_if_files_changed(target_path: Path) -> None:
    """Drop dbt's partial-parse state when files were added, removed or renamed since the last
    run in this target directory.

    Why: dbt 1.x's partial parsing keeps a unit test's dependencies from the old file set, so
    the first build after a pull that adds a model a unit test reads failed with "depends on a
    node named ... which was not found" (seen on the benchmark's warehouse). Edits to existing
    files are still parsed partially; a full parse costs tens of seconds, once per such change.
    """
    stamp = target_path / PROJECT_FILES_STAMP
    current = project_files_fingerprint()
    previous = stamp.read_text().strip() if stamp.exists() else None
    if previous != current:  # no stamp: state written by a version that did not keep one
        state = target_path / "partial_parse.msgpack"
        if state.exists():
            state.unlink()
            log.info("dbt project files changed since the last run here: full parse")
    stamp.write_text(current + "\n")


def run_dbt(args: list[str], settings: Settings | None = None) -> None:
    """Run `dbt <args>` on the project with the profile target and schemas from settings.

    Streams dbt's output to this module's logger. Raises `DbtFailed` naming the failed nodes
    when dbt exits non-zero.
    """
    settings = settings or get_settings()
    if not args:
        raise DbtFailed("run_dbt needs a dbt command, e.g. ['build']")
    target_path = dbt_target_path(settings)
    target_path.mkdir(parents=True, exist_ok=True)
    forget_partial_parse_if_files_changed(target_path)
    stale = target_path / "run_results.json"
    stale.unlink(missing_ok=True)
    cmd = [
        _dbt_executable(),
        "--no-use-colors",
        *args,
        "--project-dir",
        str(REPO_ROOT),
        "--target-path",
        str(target_path),
    ]
    log.info("running %s (target %s)", " ".join(args), settings.dbt_target)
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=dbt_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    except OSError as exc:
        raise DbtFailed(f"cannot start dbt ({cmd[0]}): {exc}; run `make setup`") from exc
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        lines.append(line)
        log.info("dbt: %s", line)
    code = proc.wait()
    if code == 0:
        return
    failed = _failed_nodes(target_path)
    if failed:
        raise DbtFailed(
            f"dbt {args[0]} failed on {len(failed)} node(s): " + "; ".join(failed), failed
        )
    tail = " | ".join(line for line in lines[-5:] if line.strip())
    raise DbtFailed(f"dbt {args[0]} failed (exit {code}): {tail}")
