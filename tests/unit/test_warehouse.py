"""The warehouse package without services: dbt's environment, failure reports, the report's
charts, and the dbt project's own conventions checked on `dbt parse` (which needs no database)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import lms.warehouse.dbt as dbt_module
from lms.settings import REPO_ROOT, Settings
from lms.warehouse.charts import bar_chart, heatmap, line_chart, table
from lms.warehouse.dbt import (
    _failed_nodes,
    dbt_env,
    dbt_target_path,
    forget_partial_parse_if_files_changed,
)


def test_dbt_env_carries_the_settings_and_nothing_else_from_lms() -> None:
    settings = Settings(raw_schema="raw_x", dbt_schema_prefix="t1_", pg_port=5999)
    env = dbt_env(settings)
    assert env["LMS_RAW_SCHEMA"] == "raw_x"
    assert env["LMS_DBT_SCHEMA_PREFIX"] == "t1_"
    assert env["LMS_PG_PORT"] == "5999"
    assert env["DBT_PROFILES_DIR"].endswith("dbt_project")
    assert "-c jit=off" in env["PGOPTIONS"]


def test_each_schema_prefix_gets_its_own_target_dir() -> None:
    assert dbt_target_path(Settings()) == REPO_ROOT / "target"
    a = dbt_target_path(Settings(dbt_schema_prefix="a_"))
    b = dbt_target_path(Settings(dbt_schema_prefix="b_"))
    assert a != b and a.parent == REPO_ROOT / "target" / "runs"


def test_partial_parse_state_is_dropped_only_when_the_project_files_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "partial_parse.msgpack"
    state.write_bytes(b"old")
    forget_partial_parse_if_files_changed(tmp_path)  # no stamp yet: state of unknown files
    assert not state.exists()

    state.write_bytes(b"parsed")
    forget_partial_parse_if_files_changed(tmp_path)  # same files: partial parsing stays
    assert state.exists()

    monkeypatch.setattr(dbt_module, "project_files_fingerprint", lambda: "a model was added")
    forget_partial_parse_if_files_changed(tmp_path)
    assert not state.exists()


def test_failed_nodes_are_named_from_run_results(tmp_path: Path) -> None:
    (tmp_path / "run_results.json").write_text(
        json.dumps(
            {
                "results": [
                    {"unique_id": "model.lms_platform.ok", "status": "success", "message": None},
                    {
                        "unique_id": "test.lms_platform.unique_fct_events_event_id",
                        "status": "fail",
                        "message": "Got 3 results, configured to fail if != 0\nmore",
                    },
                    {"unique_id": "model.lms_platform.bad", "status": "error", "message": "boom"},
                ]
            }
        )
    )
    failed = _failed_nodes(tmp_path)
    assert failed == [
        "test.lms_platform.unique_fct_events_event_id (fail: Got 3 results, configured to fail if != 0 / more)",
        "model.lms_platform.bad (error: boom)",
    ]


def test_charts_are_well_formed_svg_with_one_mark_per_value() -> None:
    svg = bar_chart([("a", 1.0), ("b <&>", 3.0)], title="t")
    root = ET.fromstring(svg)
    assert len([e for e in root.iter() if e.get("class") == "bar"]) == 2
    grid = ET.fromstring(heatmap({(1, 0): 2.0, (7, 23): 5.0}, title="h"))
    assert len([e for e in grid.iter() if e.get("class") == "cell"]) == 7 * 24
    lines = ET.fromstring(line_chart({"x": [("w1", 1.0), ("w2", 2.0)]}, title="l"))
    assert len([e for e in lines.iter() if e.get("class") == "line"]) == 1
    assert "no data yet" in bar_chart([], title="empty")
    assert "&lt;b&gt;" in table(["h"], [["<b>"]])


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`dbt parse` of the real project (offline: parsing needs no database connection)."""
    target = tmp_path_factory.mktemp("dbt-target")
    dbt = Path(sys.executable).with_name("dbt")
    env = dbt_env(Settings())
    result = subprocess.run(
        [
            str(dbt),
            "parse",
            "--project-dir",
            str(REPO_ROOT),
            "--target-path",
            str(target),
            "--no-partial-parse",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    return json.loads((target / "manifest.json").read_text())


def _models(manifest: dict) -> list[dict]:
    return [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]


def test_every_model_and_column_is_described(manifest: dict) -> None:
    for model in _models(manifest):
        assert model["description"], model["name"]
        assert model["columns"], f"{model['name']} has no documented columns"
        for column in model["columns"].values():
            assert column["description"], f"{model['name']}.{column['name']}"


def test_only_staging_reads_sources_and_marts_have_contracts(manifest: dict) -> None:
    for model in _models(manifest):
        reads_source = any(d.startswith("source.") for d in model["depends_on"]["nodes"])
        assert reads_source == model["name"].startswith("stg_"), model["name"]
        if model["config"]["schema"] in ("marts", "features"):
            assert model["config"]["contract"]["enforced"], model["name"]


def test_every_primary_key_is_tested_unique_and_not_null(manifest: dict) -> None:
    tests: dict[str, set[str]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test" and node.get("attached_node"):
            tests.setdefault(node["attached_node"], set()).add(node["test_metadata"]["name"])
    for model in _models(manifest):
        kinds = tests.get(model["unique_id"], set())
        assert {"unique", "not_null"} <= kinds or "unique_combination_of_columns" in kinds, model[
            "name"
        ]


def test_feature_marts_keep_the_names_the_ml_code_reads(manifest: dict) -> None:
    by_name = {m["name"]: m for m in _models(manifest)}
    for name in (
        "student_course_asof",
        "student_topic_asof",
        "chapter_transitions",
        "question_difficulty",
    ):
        assert by_name[name]["config"]["schema"] == "features"
    asof = by_name["student_course_asof"]["columns"]
    assert {
        "student_id",
        "course_id",
        "as_of_date",
        "course_day",
        "course_length_days",
        "label_dropout",
        "label_final_score",
        "label_observed_on",
    } <= set(asof)
    extra = set(asof) - {
        "student_id",
        "course_id",
        "as_of_date",
        "course_day",
        "course_length_days",
        "enrollment_id",
        "label_dropout",
        "label_final_score",
        "label_observed_on",
    }
    assert all(c.startswith("f_") for c in extra), extra


def test_sources_have_freshness_and_exposures_cover_dashboards_models_and_api(
    manifest: dict,
) -> None:
    for source in manifest["sources"].values():
        assert source["loaded_at_field"], source["name"]
        assert source["freshness"]["error_after"]["count"], source["name"]
    kinds = {e["type"] for e in manifest["exposures"].values()}
    assert {"dashboard", "ml", "application"} <= kinds
    assert {
        "active_students",
        "completion_rate",
        "average_quiz_score",
        "dropout_rate",
        "time_on_task_hours",
    } <= {m["name"] for m in manifest["metrics"].values()}
    unit_tests = {u["name"] for u in manifest["unit_tests"].values()}
    assert any("inactivity" in n for n in unit_tests) and any("late" in n for n in unit_tests)
