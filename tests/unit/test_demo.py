"""The demo's pieces that need no services: its directories, the settings it reports, the
summary's text, and one-line errors for bad options."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lms.demo.cpu import part_of, sample, used_between
from lms.demo.steps import DemoDirs, environment_overrides
from lms.demo.summary import BODY_CHARS, render
from lms.settings import Settings


def test_demo_dirs_keep_everything_under_one_root(tmp_path: Path) -> None:
    dirs = DemoDirs(tmp_path / "demo").create()
    for path in (dirs.school, dirs.logs, dirs.run, dirs.stream, dirs.summary):
        assert path.is_relative_to(dirs.root)
    assert dirs.pid_file("serve") == dirs.run / "serve.pid"
    assert dirs.logs.is_dir() and dirs.run.is_dir() and dirs.stream.is_dir()


def test_reported_settings_never_include_secrets() -> None:
    shown = environment_overrides(
        {
            "LMS_KAFKA_TOPIC_RAW": "t",
            "LMS_PG_PASSWORD": "p",
            "LMS_S3_SECRET_KEY": "s",
            "LMS_PII_HASH_KEY": "h",
            "LMS_PLATFORM_DSN": "postgresql://u:p@h/db",
            "HOME": "/root",
        }
    )
    assert shown == {"LMS_KAFKA_TOPIC_RAW": "t"}


def test_child_process_output_goes_to_the_step_log(tmp_path: Path) -> None:
    """A JVM started inside a step writes to inherited descriptors: those must reach the log,
    and the demo's own output must be back on the terminal afterwards."""
    script = f"""
import subprocess, sys
from pathlib import Path
from lms.demo.steps import output_to
lines = []
with output_to(Path({str(tmp_path / "step.log")!r}), lines.append):
    print("python inside")
    subprocess.run(["sh", "-c", "echo child out; echo child err >&2"], check=True)
print("after", lines)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    log = (tmp_path / "step.log").read_text()
    assert {"python inside", "child out", "child err"} <= set(log.splitlines())
    assert "child out" not in done.stdout and "child err" not in done.stderr
    assert done.stdout.startswith("after") and "step.log" in done.stdout


def _summary(tmp_path: Path) -> dict[str, Any]:
    long_body = {"students": [{"student_id": f"stu_{i:07d}"} for i in range(200)]}
    return {
        "timings": {"services": 3.0, "pipeline": 301.4},
        "cpu_s": {"services": {}, "pipeline": {"machine": 540.2, "other": 380.0, "postgres": 0.4}},
        "services": {"postgres": "127.0.0.1:15432"},
        "simulation": {
            "directory": str(tmp_path / "school"),
            "events": 1000,
            "valid_events": 990,
            "invalid_events": 10,
            "planted": {},
            "oltp_rows": {"students": 50},
        },
        "collector": {
            "url": "http://127.0.0.1:18080",
            "accepted": 990,
            "duplicate": 5,
            "rejected": 10,
            "reasons": {"missing_field": 10},
            "topics": ["raw", "dlq"],
        },
        "landing": {"lake": "s3a://lms-lake/events/", "raw_counts": {"events": 990}},
        "stream": {
            "pid": 1,
            "log": "stream.log",
            "index_prefix": "lms-live-",
            "es": "http://es",
            "nice": 10,
            "lag": 12_345,
        },
        "warehouse": {
            "rows": {"marts.fct_events": 990},
            "at_risk_bands": {"high": 3},
            "report": "report.html",
            "dbt_docs": "index.html",
        },
        "models": [
            {
                "model": "dropout",
                "primary_metric": "roc_auc",
                "model_value": 0.81,
                "baseline_value": 0.7,
                "baseline": "inactive_last_week",
                "promoted": True,
                "version": "v1",
            }
        ],
        "scored": {"rows": {"student_course_scores": 50}},
        "prefect": {
            "api": "http://127.0.0.1:18420/api",
            "ui": "http://127.0.0.1:18420",
            "own": True,
        },
        "live": {"lms-live-alerts": 4},
        "serve": {
            "url": "http://127.0.0.1:18090",
            "key_file": "/k",
            "scopes": "predictions:read",
            "examples": [
                {
                    "path": "/v1/courses/crs_001/at-risk",
                    "status": 200,
                    "model_version": "v1",
                    "body": long_body,
                }
            ],
        },
        "summary_file": str(tmp_path / "summary.json"),
    }


def test_summary_names_each_layer_models_and_calls(tmp_path: Path) -> None:
    text = render(Settings(), _summary(tmp_path))
    for part in (
        "Collector http://127.0.0.1:18080/v1/events",
        "roc_auc",
        "inactive_last_week",
        "lms-live-alerts",
        'curl -s -H "X-API-Key: $(cat /k)" http://127.0.0.1:18090/v1/courses/crs_001/at-risk',
        "→ 200 (X-Model-Version: v1)",
        "pipeline 301 s",
        "12,345 events still to process: the jobs at nice 10 catch up in the background",
        "flow runs: Prefect UI http://127.0.0.1:18420 (API http://127.0.0.1:18420/api)",
        "  pipeline  machine 540, other 380",
    ):
        assert part in text
    answer = next(line for line in text.splitlines() if line.startswith("  → 200"))
    assert len(answer) < BODY_CHARS + 80  # long answers are cut, not dumped


def test_summary_never_prints_the_database_password(tmp_path: Path) -> None:
    settings = Settings(pg_password="s3cret-value")
    assert "s3cret-value" not in render(settings, _summary(tmp_path))


@pytest.mark.parametrize("args", [["--students", "0"], ["--days", "-1"]])
def test_bad_demo_options_are_one_clear_line(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lms.cli.main", "demo", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "at least 1" in result.stderr


@pytest.mark.parametrize(
    ("command", "part"),
    [
        ("/usr/lib/postgresql/15/bin/postgres -D /data", "postgres"),
        ("postgres: lms lms_warehouse 127.0.0.1(51234) idle", "postgres"),
        ("/c/bin/bigquery-emulator-v0.8.1 --project=lms", "bigquery"),
        ("java -Xmx512m -cp /k/libs/* kafka.Kafka /k/server.properties", "kafka"),
        ("java -cp /es/lib/* org.elasticsearch.bootstrap.Elasticsearch", "elasticsearch"),
        ("java -cp /s3proxy/lib/* org.gaul.s3proxy.Main --properties x", "s3"),
        (
            "java -cp /v/pyflink/lib/* org.apache.flink.client.python.PythonGatewayServer",
            "streaming",
        ),
        ("/v/bin/python -m lms.cli.main collector run --workers 1", "collector"),
        ("/v/bin/lms serve --port 18090", "serving"),
        ("/v/bin/python -m prefect server start --host 127.0.0.1 --port 18420", "prefect"),
        # Spark's class path names the PostgreSQL driver: it is the step's own work, not postgres
        (
            "java -cp /j/org.postgresql_postgresql-42.7.4.jar org.apache.spark.deploy.SparkSubmit",
            "other",
        ),
    ],
)
def test_each_process_is_counted_in_its_part(command: str, part: str) -> None:
    assert part_of(command) == part


def test_cpu_used_between_two_samples_counts_this_process() -> None:
    before = sample()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    used = used_between(before, sample())
    # this test's own process is "other"; the machine was busy at least as long
    assert used["other"] >= 0.2
    assert used["machine"] >= used["other"] - 0.05
    assert list(used) == sorted(used, key=lambda part: -used[part])


def test_a_failed_step_says_how_to_stop_what_the_demo_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lms.cli.demo import demo
    from lms.demo import steps
    from lms.errors import LmsError

    def services_then_failure(settings: Settings, report: Any) -> None:
        # as if a background process had been started, then a step failed
        DemoDirs(tmp_path).create().pid_file("collector").write_text("1\n")
        raise LmsError("Kafka is not healthy")

    monkeypatch.setattr(steps, "start_services", services_then_failure)
    with pytest.raises(LmsError, match="Kafka is not healthy"):
        demo(directory=tmp_path)
    assert f"lms demo-down --dir {tmp_path} stops them" in capsys.readouterr().err
    assert steps.background_pid_files(DemoDirs(tmp_path)) == [tmp_path / "run" / "collector.pid"]
