"""The dbt warehouse on data that came through ingestion, in schemas of its own.

A small simulated school is written to its own OLTP database, its events produced to its own
Kafka topic (as the collector would: `received_at` stamped), landed by the Spark landing job
into its own raw schema and snapshotted with personal data removed. Then the real `dbt build`
(models, snapshots, every dbt test and unit test) runs with a schema prefix of its own, and the
Great Expectations suites run on the result, on good data and on planted bad data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from lms.quality import ExpectationsFailed, run_suite
from lms.services.s3 import s3_client
from lms.settings import Settings, get_settings
from lms.warehouse import DbtFailed, run_dbt

# Spark landing plus full dbt builds: minutes on a loaded 2-core machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

pytest.importorskip("pyspark")

DBT_SCHEMAS = ("staging", "intermediate", "marts", "features", "snapshots", "analytics")


def _produce(settings: Settings, events_dir: Path) -> int:
    """The school's events into the topic as the collector sends them (received_at stamped)."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    sent = 0
    for path in sorted(events_dir.glob("events-*.jsonl")):
        for line in path.read_bytes().splitlines():
            event = orjson.loads(line)
            occurred = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
            event["received_at"] = (
                (occurred + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
            )
            producer.send(
                settings.kafka_topic_raw,
                key=event["student_id"].encode(),
                value=orjson.dumps(event),
            )
            sent += 1
    producer.flush()
    producer.close()
    return sent


def _drop_schemas(settings: Settings, schemas: list[str]) -> None:
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'drop schema if exists "{schema}" cascade')


def _scalar(settings: Settings, sql: str) -> Any:
    with psycopg.connect(settings.warehouse_dsn) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture(scope="module")
def landed(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A small school, landed through Kafka and Spark into raw_wh_<run>; OLTP in its own db."""
    from ingestion.landing.events import land
    from ingestion.landing.snapshots import snapshot
    from lms.oltp import migrate
    from lms.simulator.batch import run_simulation
    from lms.simulator.config import SimulationConfig

    run = uuid.uuid4().hex[:8]
    base = get_settings()
    settings = base.model_copy(
        update={
            "kafka_topic_raw": f"lms.test.warehouse.{run}",
            "lake_bucket": f"lms-test-warehouse-{run}",
            "checkpoint_root": tmp_path_factory.mktemp("checkpoints").as_uri(),
            "raw_schema": f"raw_wh_{run}",
            "pg_oltp_db": f"lms_oltp_wh_{run}",
            "dbt_schema_prefix": f"t{run}_",
        }
    )
    with psycopg.connect(base.pg_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'create database "{settings.pg_oltp_db}"')
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    admin.create_topics(
        [NewTopic(settings.kafka_topic_raw, num_partitions=2, replication_factor=1)]
    )
    s3_client(settings).create_bucket(Bucket=settings.lake_bucket)
    try:
        migrate(settings.oltp_dsn)
        out = tmp_path_factory.mktemp("school")
        cfg = SimulationConfig(students=40, courses=2, days=28, seed=11, invalid_rate=0.0)
        run_simulation(cfg, out, oltp_dsn=settings.oltp_dsn)
        assert _produce(settings, out) > 1000
        land(spark, settings, sinks=("warehouse",))
        snapshot(spark, settings)
        yield settings
    finally:
        admin.delete_topics([settings.kafka_topic_raw])
        admin.close()
        _drop_schemas(
            settings,
            [settings.raw_schema]
            + [f"{settings.dbt_schema_prefix}{s}" for s in DBT_SCHEMAS]
            + [
                f"{settings.dbt_schema_prefix}bad_features",
                f"{settings.dbt_schema_prefix}ml",
                f"raw_bad_{run}",
            ],
        )
        with psycopg.connect(base.pg_dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{settings.pg_oltp_db}" with (force)')


@pytest.fixture(scope="module")
def built(landed: Settings) -> Settings:
    run_dbt(["build"], landed)
    return landed


def test_dbt_build_passes_with_every_test_on_landed_data(built: Settings) -> None:
    p = built.dbt_schema_prefix
    raw = _scalar(built, f"select count(*) from {built.raw_schema}.events")
    assert _scalar(built, f"select count(*) from {p}marts.fct_events") == raw > 1000
    assert _scalar(built, f"select count(distinct event_id) from {p}marts.fct_events") == raw
    assert _scalar(built, f"select count(*) from {p}features.student_course_asof") > 0
    assert _scalar(built, f"select count(*) from {p}features.student_topic_asof") > 0
    assert _scalar(built, f"select count(*) from {p}features.chapter_transitions") > 0
    assert _scalar(built, f"select count(*) from {p}marts.rpt_students_at_risk") > 0
    # the dev warehouse's schemas were not touched: everything went to the prefixed ones
    assert (
        _scalar(
            built,
            "select count(*) from information_schema.tables "
            f"where table_schema = '{p}features' and table_name = 'student_course_asof'",
        )
        == 1
    )


def test_features_never_look_at_or_after_the_as_of_date(built: Settings) -> None:
    """Recompute one feature straight from the events fact and compare, row by row."""
    p = built.dbt_schema_prefix
    mismatches = _scalar(
        built,
        f"""
        select count(*) from {p}features.student_course_asof as f
        where f.f_n_events != (
            select count(*) from {p}marts.fct_events as e
            where e.student_id = f.student_id and e.course_id = f.course_id
                and e.event_date < f.as_of_date
        )
        """,
    )
    assert mismatches == 0


def test_reruns_replays_and_late_events_never_double_count(built: Settings) -> None:
    p, raw = built.dbt_schema_prefix, built.raw_schema
    with psycopg.connect(built.warehouse_dsn, autocommit=True) as conn:
        # a replay re-lands 200 events (same ids, new loaded_at) ...
        conn.execute(
            f"update {raw}.events set loaded_at = now() "
            f"where event_id in (select event_id from {raw}.events order by event_id limit 200)"
        )
        # ... and one event arrives three weeks late
        conn.execute(
            f"""
            insert into {raw}.events (event_id, event_type, schema_version, occurred_at,
                received_at, student_id, course_id, session_id, client, payload, event_date)
            select gen_random_uuid(), event_type, schema_version, occurred_at - interval '21 days',
                now(), student_id, course_id, session_id, client, payload,
                (occurred_at - interval '21 days')::date
            from {raw}.events where event_type = 'page_view' limit 1
            """
        )
    run_dbt(["run", "--select", "fct_events"], built)
    run_dbt(["run", "--select", "fct_events"], built)  # a plain re-run
    raw_count = _scalar(built, f"select count(*) from {raw}.events")
    assert _scalar(built, f"select count(*) from {p}marts.fct_events") == raw_count
    assert _scalar(built, f"select count(distinct event_id) from {p}marts.fct_events") == raw_count


def test_at_risk_mart_joins_ml_scores_once_they_exist(built: Settings) -> None:
    p = built.dbt_schema_prefix
    ml = f"{p}ml"
    with psycopg.connect(built.warehouse_dsn, autocommit=True) as conn:
        student, course = conn.execute(
            f"select student_id, course_id from {p}marts.rpt_students_at_risk limit 1"
        ).fetchone()  # type: ignore[misc]
        conn.execute(f"create schema {ml}")
        conn.execute(
            f"""create table {ml}.student_course_scores (
                student_id text, course_id text, as_of_date date, dropout_risk double precision,
                risk_band text, predicted_final_score double precision,
                predicted_final_score_low double precision, predicted_final_score_high double precision,
                dropout_model_version text, score_model_version text, scored_at timestamptz,
                primary key (student_id, course_id, as_of_date))"""
        )
        conn.execute(
            f"insert into {ml}.student_course_scores values "
            "(%s, %s, '2026-01-01', 0.2, 'low', 70, 60, 80, 'v1', 'v1', now()), "
            "(%s, %s, '2026-01-08', 0.9, 'high', 40, 30, 50, 'v2', 'v2', now())",
            (student, course, student, course),
        )
    run_dbt(["run", "--select", "rpt_students_at_risk", "--vars", f"{{ml_schema: {ml}}}"], built)
    with psycopg.connect(built.warehouse_dsn) as conn:
        row = conn.execute(
            f"select risk_band, risk_source, ml_dropout_risk, ml_model_version "
            f"from {p}marts.rpt_students_at_risk where student_id = %s and course_id = %s",
            (student, course),
        ).fetchone()
    assert row == ("high", "model", 0.9, "v2")  # the latest as-of date wins


def test_quality_suites_pass_on_good_data(built: Settings) -> None:
    for name in ("raw_events", "raw_oltp", "features_student_course", "features_student_topic"):
        result = run_suite(name, built)
        assert result.success and result.evaluated > 3


def test_quality_suites_fail_with_a_readable_report_on_planted_bad_data(built: Settings) -> None:
    p = built.dbt_schema_prefix
    bad_raw = f"raw_bad_{built.raw_schema.removeprefix('raw_wh_')}"
    with psycopg.connect(built.warehouse_dsn, autocommit=True) as conn:
        conn.execute(f"create schema {bad_raw}")
        conn.execute(f"create table {bad_raw}.events as select * from {built.raw_schema}.events")
        conn.execute(
            f"update {bad_raw}.events set event_type = 'teleport' "
            f"where event_id in (select event_id from {bad_raw}.events limit 3)"
        )
        conn.execute(
            f"update {bad_raw}.events set occurred_at = '1990-01-01' "
            f"where event_type = 'login' and event_id in "
            f"(select event_id from {bad_raw}.events where event_type = 'login' limit 2)"
        )
        conn.execute(f"create schema {p}bad_features")
        conn.execute(
            f"create table {p}bad_features.student_course_asof as "
            f"select * from {p}features.student_course_asof"
        )
        conn.execute(
            f"update {p}bad_features.student_course_asof set label_dropout = 7 "
            f"where ctid in (select ctid from {p}bad_features.student_course_asof limit 4)"
        )
    with pytest.raises(ExpectationsFailed) as raw_failure:
        run_suite("raw_events", built.model_copy(update={"raw_schema": bad_raw}))
    report = str(raw_failure.value)
    assert "expect_column_values_to_be_in_set" in report and "event_type" in report
    assert "3 of" in report and "'teleport'" in report
    assert "occurred_at" in report and "2 of" in report
    assert not raw_failure.value.result.success

    with pytest.raises(ExpectationsFailed) as feature_failure:
        run_suite(
            "features_student_course",
            built.model_copy(update={"dbt_schema_prefix": f"{p}bad_"}),
        )
    assert "label_dropout" in str(feature_failure.value) and "4 of" in str(feature_failure.value)


def test_report_renders_with_data_in_headless_chromium(built: Settings, tmp_path: Path) -> None:
    import re

    from lms.warehouse.browser import dump_dom
    from lms.warehouse.report import write_report

    page = write_report(tmp_path / "report.html", built)
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "<script src" not in html
    dom = dump_dom(page)
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None
    marks = re.search(r'data-rendered-marks="(\d+)"', body.group(1))
    assert marks is not None and int(marks.group(1)) > 50  # bars, heatmap cells, lines drawn
    rows = dict(re.findall(r'<section id="([a-z-]+)" data-rows="(\d+)"', dom))
    for section in (
        "performance-trends",
        "course-effectiveness",
        "chapter-dropoff",
        "teacher-performance",
        "learning-paths",
        "engagement-heatmap",
        "students-at-risk",
        "topic-weak-scores",
        "time-per-module",
        "live-attendance-sessions",
        "live-attendance-students",
    ):
        assert int(rows.get(section, "0")) > 0 or section == "students-at-risk", (section, rows)


def test_dbt_docs_generate_covers_sources_to_exposures(built: Settings) -> None:
    import json

    from lms.warehouse import dbt_target_path

    run_dbt(["docs", "generate"], built)
    target = dbt_target_path(built)
    assert (target / "index.html").exists()
    catalog = json.loads((target / "catalog.json").read_text())
    assert any(k.endswith("student_course_asof") for k in catalog["nodes"])
    manifest = json.loads((target / "manifest.json").read_text())
    parents = manifest["parent_map"]
    exposure = "exposure.lms_platform.teacher_dashboard"
    assert "model.lms_platform.rpt_students_at_risk" in parents[exposure]


def test_a_failing_dbt_test_stops_the_build_and_names_the_node(built: Settings) -> None:
    p = built.dbt_schema_prefix
    with psycopg.connect(built.warehouse_dsn, autocommit=True) as conn:
        conn.execute(
            f"update {p}marts.rpt_students_at_risk set risk_band = 'extreme' "
            f"where student_course_id in "
            f"(select student_course_id from {p}marts.rpt_students_at_risk limit 1)"
        )
    try:
        with pytest.raises(DbtFailed) as failure:
            run_dbt(["test", "--select", "rpt_students_at_risk"], built)
        assert any(
            "accepted_values_rpt_students_at_risk_risk_band" in n
            for n in failure.value.failed_nodes
        )
        assert "failed on 1 node(s)" in str(failure.value)
    finally:
        run_dbt(["run", "--select", "rpt_students_at_risk"], built)
