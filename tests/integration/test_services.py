"""The five local services for real: health, idempotent up, and a round trip through each."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from lms.errors import LmsError
from lms.services.base import ServiceStatus
from lms.services.bigquery import bq_client
from lms.services.manager import SERVICE_NAMES, ServiceManager
from lms.services.s3 import s3_client
from lms.settings import REPO_ROOT, Settings, get_settings

pytestmark = pytest.mark.integration
LMS = REPO_ROOT / ".venv" / "bin" / "lms"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="module")
def services(settings: Settings) -> list[ServiceStatus]:
    """Reuses running services; starts (and leaves running) whatever is stopped."""
    return ServiceManager(settings).up()


def test_all_healthy_in_status_json(services: list[ServiceStatus]) -> None:
    result = subprocess.run(
        [str(LMS), "services", "status", "--json"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    body = json.loads(result.stdout)
    assert body["all_healthy"] is True
    by_name = {s["name"]: s for s in body["services"]}
    assert set(by_name) == set(SERVICE_NAMES)
    for svc in by_name.values():
        assert svc["health"] == "healthy"
        assert isinstance(svc["pid"], int)
        assert "127.0.0.1" in svc["address"]


def test_second_up_is_a_noop(services: list[ServiceStatus], settings: Settings) -> None:
    again = ServiceManager(settings).up()
    assert [s.action for s in again] == ["already running"] * len(SERVICE_NAMES)
    assert [s.pid for s in again] == [s.pid for s in services]
    result = subprocess.run(
        [str(LMS), "services", "up"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "nothing to do" in result.stdout


def test_port_clash_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        clash = Settings(state_dir=tmp_path / "state", es_port=port)
        with pytest.raises(LmsError) as err:
            ServiceManager(clash).up(["elasticsearch"], run_hooks=False)
    msg = str(err.value)
    assert "\n" not in msg
    assert "elasticsearch" in msg and str(port) in msg and "LMS_ES_PORT" in msg
    assert "elasticsearch.log" in msg


def test_postgres_both_databases(services: list[ServiceStatus], settings: Settings) -> None:
    import psycopg

    for dsn, db in (
        (settings.oltp_dsn, settings.pg_oltp_db),
        (settings.warehouse_dsn, settings.pg_warehouse_db),
    ):
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            row = conn.execute("select current_database(), current_user").fetchone()
            assert row == (db, settings.pg_user)


def test_kafka_round_trip(services: list[ServiceStatus], settings: Settings) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"lms-test-{uuid.uuid4().hex[:8]}"
    payload = uuid.uuid4().bytes
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    producer.send(topic, payload).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=20000,
        group_id=None,
    )
    try:
        values = [msg.value for msg in consumer]
    finally:
        consumer.close()
    assert payload in values


def test_s3_put_get(services: list[ServiceStatus], settings: Settings) -> None:
    client = s3_client(settings)
    key = f"tests/{uuid.uuid4().hex}.txt"
    client.put_object(Bucket=settings.lake_bucket, Key=key, Body=b"hello lake")
    body = client.get_object(Bucket=settings.lake_bucket, Key=key)["Body"].read()
    assert body == b"hello lake"
    client.delete_object(Bucket=settings.lake_bucket, Key=key)


def test_elasticsearch_index_search(services: list[ServiceStatus], settings: Settings) -> None:
    from elasticsearch import Elasticsearch

    es = Elasticsearch(settings.es_base_url, request_timeout=30)
    index = f"lms-test-{uuid.uuid4().hex[:8]}"
    try:
        es.index(index=index, id="1", document={"title": "fractions chapter", "n": 3}, refresh=True)
        hits = es.search(index=index, query={"match": {"title": "fractions"}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["1"]
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)


def test_bigquery_round_trip(services: list[ServiceStatus], settings: Settings) -> None:
    from google.cloud import bigquery

    client = bq_client(settings)
    table_id = f"{settings.bq_project}.{settings.bq_dataset}.t_{uuid.uuid4().hex[:8]}"
    schema = [bigquery.SchemaField("id", "INT64"), bigquery.SchemaField("name", "STRING")]
    client.create_table(bigquery.Table(table_id, schema=schema))
    try:
        errors = client.insert_rows_json(table_id, [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
        assert errors == []
        rows = client.query(f"SELECT id, name FROM `{table_id}` ORDER BY id").result()
        assert [(r["id"], r["name"]) for r in rows] == [(1, "a"), (2, "b")]
    finally:
        client.delete_table(table_id, not_found_ok=True)
