"""``pipeline``: land → dbt build → expectations → train → score → refresh the at-risk mart, as
one flow. Each stage is a task with retries for transient failures; failed expectations stop the
flow with their report."""

from __future__ import annotations

import json
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from flows.retries import transient_only
from flows.score import score_flow
from flows.train import FEATURE_SUITES, train_flow, validate
from lms.settings import get_settings
from lms.warehouse.dbt import SCHEDULED_BUILD

RAW_SUITES = ("raw_events", "raw_oltp")


@task(retries=1, retry_delay_seconds=10, retry_condition_fn=transient_only, cache_policy=NONE)
def land() -> dict[str, int]:
    """Kafka → lake + warehouse raw layer, then the OLTP snapshots (both idempotent)."""
    from ingestion.landing.run import land_all

    landed, snaps = land_all(get_settings(), "lms-flow-pipeline")
    out = {f"events:{r.query}": r.input_rows for r in landed} | {
        f"oltp:{r.table}": r.rows for r in snaps
    }
    get_run_logger().info("landed %s", out)
    return out


@task(retries=1, retry_delay_seconds=10, retry_condition_fn=transient_only, cache_policy=NONE)
def dbt(args: list[str]) -> None:
    from lms.warehouse import run_dbt

    run_dbt(args, get_settings())


@flow(name="pipeline", log_prints=True)
def pipeline_flow(
    land_events: bool = True,
    validate_data: bool = True,
    truth_dir: str | None = None,
    models: list[str] | None = None,
) -> dict[str, Any]:
    settings = get_settings()
    # The at-risk mart reads the scores from the ml schema this run writes to.
    dbt_vars = ["--vars", json.dumps({"ml_schema": settings.ml_schema})]
    if land_events:
        land()
    if validate_data:
        validate(RAW_SUITES, settings)
    dbt([*SCHEDULED_BUILD, *dbt_vars])
    if validate_data:
        validate(FEATURE_SUITES, settings)
    trained = train_flow(models=models, truth_dir=truth_dir, validate_marts=False)
    scored = score_flow()
    # The at-risk mart joins the scores; rebuild it so it carries the ones just written.
    dbt([*SCHEDULED_BUILD, "--select", "rpt_students_at_risk", *dbt_vars])
    return {"trained": trained, "scored": scored}
