"""The same dbt project on BigQuery: every model compiles for the `bigquery` adapter (against the
BigQuery emulator, which answers dbt's introspection), the compiled SQL parses as BigQuery SQL,
and the emulator (goccy's, which analyses queries with ZetaSQL, BigQuery's own front end) runs
the models in dependency order on a sample of the raw layer.

The test brings its own raw sample, so it runs in a fresh clone with only `lms services up`: a
tiny simulated school is landed into a PostgreSQL raw schema of its own (`lms.warehouse.sample`,
the same rows ingestion writes), then copied into a BigQuery dataset of its own by the project's
loader (`lms.warehouse.bigquery_load`). Production lands into BigQuery directly.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from lms.oltp import OLTP_TABLES
from lms.settings import REPO_ROOT, Settings, get_settings
from lms.warehouse import dbt_target_path, run_dbt
from lms.warehouse.bigquery_load import bigquery_client, copy_raw_to_bigquery, ensure_dataset
from lms.warehouse.sample import land_school

# dbt compile plus the emulator's runs: a minute or two on a loaded 2-core machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# PostgreSQL-only syntax that must never reach the BigQuery SQL.
# What the emulator runs in reasonable time: staging, the events fact, sessions and the
# dimensions. The wider marts run too but take minutes each on its SQLite engine.
EMULATOR_MODELS = ("stg_", "dim_", "fct_events", "int_events_sessionised", "fct_sessions")
# Events copied to the emulator (earliest first): enough for sessions, small for its SQLite engine.
SAMPLE_EVENTS = 300
POSTGRES_ONLY = re.compile(r"::|->>|\bjsonb\b|\btimestamptz\b|generate_series|at time zone")


@pytest.fixture(scope="module")
def bq_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for a run of its own: a PostgreSQL raw schema holding a tiny landed school, and
    BigQuery datasets named after the run."""
    from lms.simulator.batch import run_simulation
    from lms.simulator.config import SimulationConfig

    run = uuid.uuid4().hex[:8]
    settings = get_settings().model_copy(
        update={
            "dbt_target": "bigquery_emulator",
            "dbt_schema_prefix": f"bq{run}_",
            "bq_dataset": f"bq{run}_raw",
            "raw_schema": f"raw_bq_{run}",
        }
    )
    school = tmp_path_factory.mktemp("school")
    run_simulation(
        SimulationConfig(students=12, courses=2, days=14, seed=5, invalid_rate=0.0),
        school,
        oltp_dsn=None,
        workers=1,
    )
    try:
        assert land_school(settings, school) > SAMPLE_EVENTS
        yield settings
    finally:
        with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
            conn.execute(f"drop schema if exists {settings.raw_schema} cascade")
        # The run's datasets stay in the emulator (a few hundred rows, named after the run): the
        # emulator (v0.8.1) panics on DROP TABLE / DROP VIEW once its SQL engine's memory has
        # grown (a long-running dev emulator), and then restarts, failing everyone else's calls.
        shutil.rmtree(dbt_target_path(settings), ignore_errors=True)


@pytest.fixture(scope="module")
def manifest(bq_settings: Settings) -> dict[str, Any]:
    """The manifest of `dbt compile` on the BigQuery target (before any model dataset exists)."""
    run_dbt(["compile"], bq_settings)
    return json.loads((dbt_target_path(bq_settings) / "manifest.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def compiled(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest["nodes"].items() if v["resource_type"] == "model"}


def test_every_model_compiles_to_bigquery_sql(
    manifest: dict[str, Any], compiled: dict[str, Any]
) -> None:
    """Every model file, snapshot and data test compiles on the bigquery adapter to SQL that
    parses as BigQuery SQL, quotes relations BigQuery's way and carries no PostgreSQL syntax."""
    import sqlglot

    model_files = {path.stem for path in (REPO_ROOT / "dbt_project" / "models").rglob("*.sql")}
    assert {node["name"] for node in compiled.values()} == model_files
    nodes = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "snapshot", "test")
    ]
    kinds = Counter(node["resource_type"] for node in nodes)
    assert kinds["snapshot"] >= 2 and kinds["test"] >= 100, kinds
    for node in nodes:
        sql = node["compiled_code"]
        assert sql and not POSTGRES_ONLY.search(sql), f"{node['unique_id']}: PostgreSQL syntax"
        # sqlglot raises on anything that is not BigQuery SQL
        parsed = sqlglot.parse_one(sql, read="bigquery")
        assert parsed is not None, node["unique_id"]
        if node["resource_type"] != "test":
            assert "`" in sql, f"{node['unique_id']}: relations are not BigQuery-quoted"


def _topological(models: dict[str, Any]) -> list[dict[str, Any]]:
    order: list[dict[str, Any]] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        if key in seen or key not in models:
            return
        seen.add(key)
        for parent in models[key]["depends_on"]["nodes"]:
            visit(parent)
        order.append(models[key])

    for key in sorted(models):
        visit(key)
    return order


def test_models_run_on_the_bigquery_emulator(
    bq_settings: Settings, compiled: dict[str, Any]
) -> None:
    client = bigquery_client(bq_settings)
    copied = copy_raw_to_bigquery(
        bq_settings, ["events", *(f"oltp_{t}" for t in OLTP_TABLES)], event_limit=SAMPLE_EVENTS
    )
    assert copied["events"] > 0
    nodes = [node for node in _topological(compiled) if node["name"].startswith(EMULATOR_MODELS)]
    for dataset in sorted({node["schema"] for node in nodes}):
        ensure_dataset(client, dataset)
    failures = {}
    for node in nodes:
        kind = "view" if node["config"]["materialized"] == "view" else "table"
        relation = node["relation_name"]
        try:
            client.query(f"create or replace {kind} {relation} as {node['compiled_code']}").result(
                timeout=180
            )
        except Exception as exc:  # the emulator's error text is the useful part
            failures[node["name"]] = str(exc).splitlines()[0][:300]
    assert not failures, failures
    rows = list(
        client.query(
            f"select count(*) as n, count(distinct event_id) as d from "
            f"`{bq_settings.bq_project}.{bq_settings.dbt_schema_prefix}marts.fct_events`"
        ).result()
    )
    assert rows[0]["n"] == rows[0]["d"] == copied["events"]
