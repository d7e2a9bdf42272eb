"""One typed settings object for the whole platform, read from ``LMS_*`` environment variables.

The environment is chosen by ``LMS_ENV`` (``local`` for a developer machine and CI, ``production``
otherwise). Secrets have development defaults that only work locally: outside ``local`` a missing
or placeholder secret is a startup error, never a silent default.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

# Values that are fine on a laptop and must never reach production.
DEV_PLACEHOLDER = "local-dev-only"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LMS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["local", "production"] = "local"
    state_dir: Path = Field(default=REPO_ROOT / ".state", description="Service data, logs, pids")

    # PostgreSQL: one cluster, the OLTP database and the local warehouse.
    pg_host: str = "127.0.0.1"
    pg_port: int = 15432
    pg_user: str = "lms"
    pg_password: str = DEV_PLACEHOLDER
    pg_oltp_db: str = "lms_oltp"
    pg_warehouse_db: str = "lms_warehouse"
    # The platform's own operational tables (API keys, online features, model scores): PostgreSQL
    # in every environment, the local warehouse database unless configured otherwise.
    platform_dsn_override: str | None = Field(default=None, alias="LMS_PLATFORM_DSN")

    # Kafka (KRaft, single node locally; a cluster's bootstrap list in production).
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_bootstrap: str | None = None
    kafka_topic_raw: str = "lms.events.raw.v1"
    kafka_topic_dead_letter: str = "lms.events.dead-letter.v1"

    # S3-compatible object store for the lake.
    s3_port: int = 19000
    s3_endpoint: str | None = None
    s3_access_key: str = "lms-local"
    s3_secret_key: str = DEV_PLACEHOLDER
    s3_region: str = "us-east-1"
    lake_bucket: str = "lms-lake"

    # Elasticsearch.
    es_port: int = 19200
    es_transport_port: int = 19300
    es_url: str | None = None
    # Live indices written by the streaming jobs (streaming/) and read by serving/routes/live.py.
    stream_index_prefix: str = "lms-live-"
    # The jobs' Kafka consumer group (offsets committed at each checkpoint: the jobs' lag).
    stream_group_id: str = "lms-stream"
    # CPU priority (nice, 0-19) of the streaming jobs' processes; unset: 0 for `lms stream run`,
    # 10 in `lms demo`, where Spark, dbt and training share the machine's cores with them.
    stream_nice: int | None = Field(default=None, ge=0, le=19)

    # BigQuery (the goccy emulator locally).
    bq_port: int = 19050
    bq_grpc_port: int = 19060
    bq_project: str = "lms-local"
    bq_dataset: str = "lms_raw"
    bq_endpoint: str | None = None

    # Spark: local mode by default; a cluster is `LMS_SPARK_MASTER=spark://host:7077` (or yarn, k8s://...).
    spark_master: str = "local[2]"
    spark_driver_memory: str = "1g"
    spark_shuffle_partitions: int = 4
    # Streaming checkpoints: local disk by default; a cluster needs a shared path (s3a://, hdfs://).
    checkpoint_root: str | None = None
    # The warehouse raw layer is PostgreSQL locally; BigQuery loading is switched on here (production,
    # and the tests that exercise it against the emulator).
    land_to_bigquery: bool = False
    # Schema of the PostgreSQL warehouse's raw layer (tests use their own to stay isolated).
    raw_schema: str = "raw"
    # Key for the HMAC that pseudonymises personal data (emails) on its way out of the OLTP database.
    pii_hash_key: str = DEV_PLACEHOLDER

    # dbt (the warehouse): profile target (`postgres` locally, `bigquery` in production,
    # `bigquery_emulator` for the emulator tests) and an optional prefix for every schema dbt
    # builds (`t_ab12_` → `t_ab12_marts`), so tests and benchmarks never touch the dev warehouse.
    dbt_target: str = "postgres"
    dbt_schema_prefix: str = ""

    # Prefect: the local ephemeral API unless a server URL is configured (PREFECT_API_URL).
    # `lms demo` starts its own server on this port when PREFECT_API_URL is not set.
    prefect_port: int = 18420

    # ML: where the feature marts are read, where predictions are written, where models live.
    features_schema: str = "features"
    ml_schema: str = "ml"
    model_bucket: str | None = None  # the lake bucket unless set
    model_prefix: str = "models"

    @model_validator(mode="after")
    def _no_placeholder_secrets_outside_local(self) -> Settings:
        if self.env != "local":
            for name in ("pg_password", "s3_secret_key", "pii_hash_key"):
                if getattr(self, name) == DEV_PLACEHOLDER:
                    raise ValueError(
                        f"LMS_{name.upper()} must be set when LMS_ENV={self.env} "
                        "(the development default is refused outside local)"
                    )
        return self

    # Derived addresses: explicit configuration wins, otherwise the local services' ports.
    @property
    def kafka_bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def s3_endpoint_url(self) -> str:
        return self.s3_endpoint or f"http://127.0.0.1:{self.s3_port}"

    @property
    def es_base_url(self) -> str:
        return self.es_url or f"http://127.0.0.1:{self.es_port}"

    @property
    def bq_endpoint_url(self) -> str:
        return self.bq_endpoint or f"http://127.0.0.1:{self.bq_port}"

    @property
    def lake_root(self) -> str:
        return f"s3a://{self.lake_bucket}"

    @property
    def checkpoints(self) -> str:
        return self.checkpoint_root or (self.state_dir / "checkpoints").as_uri()

    def pg_dsn(self, database: str | None = None) -> str:
        db = database or self.pg_warehouse_db
        return f"postgresql://{self.pg_user}:{self.pg_password}@{self.pg_host}:{self.pg_port}/{db}"

    @property
    def oltp_dsn(self) -> str:
        return self.pg_dsn(self.pg_oltp_db)

    @property
    def warehouse_dsn(self) -> str:
        return self.pg_dsn(self.pg_warehouse_db)

    @property
    def platform_dsn(self) -> str:
        return self.platform_dsn_override or self.warehouse_dsn


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
