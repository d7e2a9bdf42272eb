"""``score``: batch predictions with the promoted models for every running student-course into
the warehouse's ``ml`` schema (the at-risk mart, dashboards and the prediction service read it)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE

from flows.retries import transient_only
from lms.settings import get_settings
from ml.registry import Registry
from ml.scoring import score_all


@task(retries=2, retry_delay_seconds=5, retry_condition_fn=transient_only, cache_policy=NONE)
def score_task(schema: str | None, history: bool) -> dict[str, Any]:
    settings = get_settings()
    report = score_all(settings, Registry(settings), schema=schema, history=history)
    logger = get_run_logger()
    for name, reason in report.skipped.items():
        logger.warning("not scored with %s: %s", name, reason)
    rows = [
        {"table": f"{settings.ml_schema}.{t}", "rows": n} for t, n in sorted(report.rows.items())
    ]
    create_table_artifact(rows, key="ml-scores", description="Rows written by the score flow")
    logger.info("scored: %s with %s", report.rows, report.versions)
    return {"rows": report.rows, "versions": report.versions, "skipped": report.skipped}


@flow(name="score", log_prints=True)
def score_flow(features_schema: str | None = None, history: bool = False) -> dict[str, Any]:
    return score_task(features_schema, history)
