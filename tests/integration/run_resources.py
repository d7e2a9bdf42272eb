"""An isolated run's names on the shared services, and their removal after the test.

End-to-end tests run the platform under names of their own (topics, bucket, raw schema, OLTP
database, dbt schema prefix, ml schema, model prefix, live index prefix, consumer group), passed
to child processes as ``LMS_*`` variables, so they never read or disturb anyone else's data.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import httpx
import psycopg
from botocore.exceptions import ClientError

from lms.services.s3 import s3_client
from lms.settings import Settings, get_settings


def isolated_overrides(run: str, work: Path) -> dict[str, str]:
    """``LMS_*`` variables for a run named ``run`` (lowercase letters and digits)."""
    return {
        "LMS_KAFKA_TOPIC_RAW": f"lms.test.{run}.raw",
        "LMS_KAFKA_TOPIC_DEAD_LETTER": f"lms.test.{run}.dlq",
        "LMS_LAKE_BUCKET": f"lms-test-{run}",
        "LMS_CHECKPOINT_ROOT": (work / "checkpoints").as_uri(),
        "LMS_RAW_SCHEMA": f"raw_{run}",
        "LMS_PG_OLTP_DB": f"lms_oltp_{run}",
        "LMS_DBT_SCHEMA_PREFIX": f"t_{run}_",
        "LMS_ML_SCHEMA": f"t_{run}_ml",
        "LMS_MODEL_PREFIX": f"models-{run}",
        "LMS_STREAM_INDEX_PREFIX": f"lms-live-{run}-",
        "LMS_STREAM_GROUP_ID": f"lms-test-{run}",
        "LMS_STREAM_CHECKPOINT_DIR": (work / "stream-checkpoints").as_uri(),
        "PREFECT_HOME": str(work / "prefect"),
    }


def isolated_settings(overrides: dict[str, str]) -> Settings:
    """The settings a child process sees with ``overrides`` in its environment."""
    saved = dict(os.environ)
    os.environ.update(overrides)
    get_settings.cache_clear()
    try:
        return get_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def drop_run_resources(settings: Settings) -> None:
    """Best effort: remove everything the isolated run created (never raises)."""
    with (
        contextlib.suppress(Exception),
        psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn,
    ):
        schemas = conn.execute(
            "select nspname from pg_namespace where nspname like %s or nspname in (%s, %s)",
            (settings.dbt_schema_prefix + "%", settings.raw_schema, settings.ml_schema),
        ).fetchall()
        for (schema,) in schemas:
            conn.execute(f'drop schema if exists "{schema}" cascade')
    default = get_settings()
    if settings.pg_oltp_db != default.pg_oltp_db:
        with (
            contextlib.suppress(Exception),
            psycopg.connect(default.oltp_dsn, autocommit=True) as conn,
        ):
            conn.execute(f'drop database if exists "{settings.pg_oltp_db}" with (force)')
    with contextlib.suppress(Exception):
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
        admin.delete_topics([settings.kafka_topic_raw, settings.kafka_topic_dead_letter])
    with contextlib.suppress(Exception):
        _drop_bucket(s3_client(settings), settings.lake_bucket)
    with contextlib.suppress(Exception):
        _drop_indices(settings.es_base_url, settings.stream_index_prefix)


def _drop_bucket(s3: Any, bucket: str) -> None:
    # By StartAfter rather than continuation tokens: s3proxy repeats a token on some keys.
    after = ""
    while True:
        listed = s3.list_objects_v2(Bucket=bucket, StartAfter=after, MaxKeys=1000)
        keys = [obj["Key"] for obj in listed.get("Contents", [])]
        if not keys:
            break
        for key in keys:
            with contextlib.suppress(ClientError):
                s3.delete_object(Bucket=bucket, Key=key)
        after = keys[-1]
    s3.delete_bucket(Bucket=bucket)


def _drop_indices(es: str, prefix: str) -> None:
    # Elasticsearch refuses wildcard deletes by default: one by one, by name.
    with httpx.Client(base_url=es, timeout=30) as client:
        listed = client.get(f"/_cat/indices/{prefix}*", params={"format": "json", "h": "index"})
        for row in listed.json():
            client.delete(f"/{row['index']}")
        templates = client.get(f"/_index_template/{prefix}*")
        if templates.status_code == 200:
            for template in templates.json().get("index_templates", []):
                client.delete(f"/_index_template/{template['name']}")
