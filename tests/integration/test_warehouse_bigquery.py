"""The same dbt project on BigQuery: every model compiles for the `bigquery` adapter (against the
BigQuery emulator, which answers dbt's introspection), the compiled SQL parses as BigQuery SQL,
and the emulator (goccy's, which analyses queries with ZetaSQL, BigQuery's own front end) runs
the models in dependency order on a sample of the raw layer.

The raw sample is copied from the dev warehouse's raw layer, which ingestion filled (`lms demo`);
production lands into BigQuery directly.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from lms.oltp import OLTP_TABLES
from lms.settings import Settings, get_settings
from lms.warehouse import dbt_target_path, run_dbt
from lms.warehouse.bigquery_load import bigquery_client, copy_raw_to_bigquery, ensure_dataset

# Spark landing plus full dbt builds: minutes on a loaded 2-core machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

DBT_SCHEMAS = ("staging", "intermediate", "marts", "features", "snapshots")
# PostgreSQL-only syntax that must never reach the BigQuery SQL.
# What the emulator runs in reasonable time: staging, the events fact, sessions and the
# dimensions. The wider marts run too but take minutes each on its SQLite engine.
EMULATOR_MODELS = ("stg_", "dim_", "fct_events", "int_events_sessionised", "fct_sessions")
POSTGRES_ONLY = re.compile(r"::|->>|\bjsonb\b|\btimestamptz\b|generate_series|at time zone")


@pytest.fixture(scope="module")
def bq_settings() -> Iterator[Settings]:
    base = get_settings()
    with psycopg.connect(base.warehouse_dsn) as conn:
        landed = conn.execute(
            "select count(*) from information_schema.tables where table_schema = %s "
            "and table_name in ('events', 'oltp_enrollments')",
            (base.raw_schema,),
        ).fetchone()
    if not landed or landed[0] < 2:
        pytest.skip("the dev warehouse has no landed raw layer yet (run `lms demo` first)")
    run = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={
            "dbt_target": "bigquery_emulator",
            "dbt_schema_prefix": f"bq{run}_",
            "bq_dataset": f"bq{run}_raw",
        }
    )
    client = bigquery_client(settings)
    yield settings
    # Only the raw sample (tables) is removed: the emulator (v0.8.1) panics on DROP VIEW, which
    # deleting the model datasets would issue, and then fails its health check for a while.
    client.delete_dataset(settings.bq_dataset, delete_contents=True, not_found_ok=True)


@pytest.fixture(scope="module")
def compiled(bq_settings: Settings) -> dict[str, Any]:
    """The manifest of `dbt compile` on the BigQuery target (before any dataset exists)."""
    run_dbt(["compile"], bq_settings)
    manifest = json.loads((dbt_target_path(bq_settings) / "manifest.json").read_text())
    return {k: v for k, v in manifest["nodes"].items() if v["resource_type"] == "model"}


def test_every_model_compiles_to_bigquery_sql(compiled: dict[str, Any]) -> None:
    import sqlglot

    assert len(compiled) >= 40
    for node in compiled.values():
        sql = node["compiled_code"]
        assert sql and not POSTGRES_ONLY.search(sql), f"{node['name']}: PostgreSQL syntax"
        parsed = sqlglot.parse_one(sql, read="bigquery")
        assert parsed is not None, node["name"]
        assert "`" in sql, f"{node['name']}: relations are not BigQuery-quoted"


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
        bq_settings, ["events", *(f"oltp_{t}" for t in OLTP_TABLES)], event_limit=300
    )
    assert copied["events"] > 0
    for schema in DBT_SCHEMAS:
        ensure_dataset(client, f"{bq_settings.dbt_schema_prefix}{schema}")
    failures = {}
    for node in _topological(compiled):
        if not node["name"].startswith(EMULATOR_MODELS):
            continue
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
