"""The ML pipeline on the real services: the `pipeline` flow (expectations → dbt build → train
five models, registered on S3 with cards → score into the ml schema → the at-risk mart), as the
session's platform run executed it (`lms demo` on a simulated school under names of its own, see
`platform_run` in conftest), then `lms flow train` again on the same marts.

The school (500 students, 3 courses, 77 days, seed 36) is chosen so that two courses end inside
the simulated days (labels: dropout, final score) and one is still running (students to score,
and the at-risk mart's active enrollments).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lms.settings import Settings

# Landing ~350,000 events through Spark, dbt build and five models: minutes on a loaded 2-core
# machine, beyond the suite's default per-test timeout.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]


def _lms(env: dict[str, str], *args: str, timeout: int = 2400) -> subprocess.CompletedProcess[str]:
    """Run `lms ...`; stderr (Prefect's and dbt's logs) also goes to a file named in the
    environment, so a slow run can be followed while it happens."""
    lms = Path(sys.executable).with_name("lms")
    log = Path(env["LMS_ML_TEST_LOG"])
    with log.open("a") as err:
        proc = subprocess.run(
            [str(lms), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            timeout=timeout,
            check=False,
        )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout, log.read_text()[-8000:]
    )


@pytest.fixture(scope="module")
def isolated(
    platform_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, dict[str, str]]:
    """The session's platform run (`lms demo` under names of its own, see conftest): its
    settings, and its environment for further `lms flow ...` commands."""
    log = tmp_path_factory.mktemp("ml-logs") / "lms.log"
    return platform_run["settings"], {**platform_run["env"], "LMS_ML_TEST_LOG": str(log)}


@pytest.fixture(scope="module")
def pipeline_run(platform_run: dict[str, Any]) -> dict[str, Any]:
    """What the run's `pipeline` flow returned (the demo runs it after landing)."""
    summary = platform_run["summary"]
    return {"trained": summary["models"], "scored": summary["scored"]}


def _json(stdout: str) -> Any:
    """The command's JSON result."""
    return json.loads(stdout)


def test_every_model_beats_its_baseline_on_the_held_out_window(
    pipeline_run: dict[str, Any],
) -> None:
    rows = {row["model"]: row for row in pipeline_run["trained"]}
    assert set(rows) == {
        "dropout",
        "final_score",
        "topic_mastery",
        "next_chapter",
        "quiz_difficulty",
    }
    for name, row in rows.items():
        assert row["beats_baseline"], (name, row)
        assert row["promoted"], (name, row)


def test_registry_holds_versioned_models_with_cards(
    isolated: tuple[Settings, dict[str, str]], pipeline_run: dict[str, Any]
) -> None:
    from ml.registry import Registry

    settings, _ = isolated
    registry = Registry(settings)
    assert set(registry.models()) >= {"dropout", "final_score", "topic_mastery"}
    for name in ("dropout", "final_score"):
        (version,) = registry.versions(name)
        card = registry.card(name, version)
        assert card["metrics"][card["primary_metric"]] is not None
        assert card["split"]["test_start"] > card["split"]["train_end"]
        assert card["code_version"] != "unknown"
        assert card["truth"], "the planted-truth checks ran"
        keys = {
            o["Key"].rsplit("/", 1)[-1]
            for o in registry.s3.list_objects_v2(
                Bucket=registry.bucket, Prefix=f"{registry.prefix}/{name}/versions/{version}/"
            )["Contents"]
        }
        assert {
            "card.md",
            "card.json",
            "model.json",
            "booster.json",
            "feature_importance.png",
        } <= keys
    card = registry.card("dropout", registry.versions("dropout")[0])
    assert card["truth"]["mean_risk_dropout"] > card["truth"]["mean_risk_steady"]
    assert card["truth"]["truth_roc_auc"] > 0.6


def test_scores_reach_the_warehouse_and_the_at_risk_mart(
    isolated: tuple[Settings, dict[str, str]], pipeline_run: dict[str, Any]
) -> None:
    settings, _ = isolated
    ml, marts = settings.ml_schema, settings.dbt_schema_prefix + "marts"
    with psycopg.connect(settings.warehouse_dsn) as conn:
        n, bad = conn.execute(
            f"select count(*), count(*) filter (where dropout_risk not between 0 and 1"
            f" or predicted_final_score not between 0 and 100"
            f" or risk_band not in ('low', 'medium', 'high')) from {ml}.student_course_scores"
        ).fetchone()
        assert n > 0 and bad == 0
        tables = [
            "student_topic_mastery",
            "quiz_difficulty",
            "online_student_course_features",
            "chapter_recommendations",
        ]
        for table in tables:
            assert conn.execute(f"select count(*) from {ml}.{table}").fetchone()[0] > 0, table
        joined = conn.execute(
            f"select count(*) from {marts}.rpt_students_at_risk where ml_model_version is not null"
        ).fetchone()[0]
    assert joined > 0


def test_a_model_no_better_than_the_promoted_one_is_not_promoted(
    isolated: tuple[Settings, dict[str, str]], pipeline_run: dict[str, Any]
) -> None:
    settings, env = isolated
    from ml.registry import Registry

    registry = Registry(settings)
    before = registry.promoted("dropout")
    # Same data, same seed: an identical model, which does not beat the promoted one.
    proc = _lms(env, "flow", "train", "--models", "dropout", "--no-validate")
    assert proc.returncode == 0, proc.stderr[-4000:]
    (row,) = _json(proc.stdout)
    assert row["promoted"] is False
    assert "does not beat the promoted" in row["reason"]
    assert registry.promoted("dropout") == before
    assert len(registry.versions("dropout")) == 2


def test_feature_marts_failing_expectations_stop_training_with_a_readable_report(
    isolated: tuple[Settings, dict[str, str]], pipeline_run: dict[str, Any]
) -> None:
    """Runs last: it breaks the module's feature mart on purpose."""
    settings, env = isolated
    from ml.registry import Registry

    versions = Registry(settings).versions("dropout")
    mart = f"{settings.dbt_schema_prefix}features.student_course_asof"
    latest = f"as_of_date = (select max(as_of_date) from {mart})"
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        # The end-to-end tests read the same marts afterwards: keep the true values to put back.
        conn.execute(
            f"create table {mart}_kept as select student_id, course_id, as_of_date, f_n_events "
            f"from {mart} where {latest}"
        )
        try:
            broken = conn.execute(f"update {mart} set f_n_events = -1 where {latest}").rowcount
            assert broken > 0
            proc = _lms(env, "flow", "train", "--models", "dropout")
        finally:
            conn.execute(
                f"update {mart} m set f_n_events = k.f_n_events from {mart}_kept k "
                "where (m.student_id, m.course_id, m.as_of_date) = "
                "(k.student_id, k.course_id, k.as_of_date)"
            )
            conn.execute(f"drop table {mart}_kept")
    assert proc.returncode != 0
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert error, proc.stderr[-3000:]
    assert "f_n_events" in proc.stderr
    assert Registry(settings).versions("dropout") == versions  # nothing trained or registered
