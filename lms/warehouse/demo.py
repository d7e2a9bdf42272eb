"""The demo's warehouse step: build the dbt project on the landed school, render the report."""

from __future__ import annotations

from typing import Any

import psycopg

from lms.settings import Settings
from lms.warehouse.dbt import dbt_target_path, run_dbt
from lms.warehouse.report import write_report


def build_warehouse(settings: Settings) -> dict[str, Any]:
    """`dbt build` (models, snapshots, tests), then the HTML report; returns the summary rows."""
    run_dbt(["build"], settings)
    report = write_report(settings.state_dir / "reports" / "warehouse-report.html", settings)
    prefix = settings.dbt_schema_prefix
    counts = {}
    with psycopg.connect(settings.warehouse_dsn) as conn:
        for table in (
            "marts.fct_events",
            "features.student_course_asof",
            "marts.rpt_students_at_risk",
        ):
            row = conn.execute(f"select count(*) from {prefix}{table}").fetchone()
            counts[table] = row[0] if row else 0
    return {
        "rows": counts,
        "report": str(report),
        "dbt_docs": f"lms warehouse docs → {dbt_target_path(settings) / 'index.html'}",
    }
