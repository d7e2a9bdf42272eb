"""OLTP snapshots: a Spark JDBC extract of the LMS's transactional tables into the lake and the
warehouse raw layer, with personal data removed on the way.

Personal data policy (the lake and the warehouse never hold it in clear):

* names and dates of birth are dropped;
* emails become ``email_hash``, an HMAC-SHA256 keyed by ``LMS_PII_HASH_KEY`` of the lower-cased
  address, so a person can still be matched across systems by whoever holds the key, and by no one
  else. The key is a secret: it has no working default outside local development.

Each run writes ``<lake>/oltp/<table>/snapshot_date=<UTC date>/`` (that day's partition replaced)
and replaces ``raw.oltp_<table>`` in one transaction, stamped with ``_snapshot_at``; dbt snapshots
build the history (SCD2) from successive runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ingestion.landing.warehouse import WarehouseWriter, jdbc_url
from lms.oltp import OLTP_TABLES
from lms.settings import Settings

log = logging.getLogger(__name__)

OLTP_SCHEMA = "lms"
TABLES = OLTP_TABLES
# Columns that must never leave the OLTP database in clear, per table.
DROPPED = {
    "students": ("full_name", "date_of_birth"),
    "teachers": ("full_name",),
}
HASHED = {
    "students": ("email",),
    "teachers": ("email",),
}


@dataclass(frozen=True)
class SnapshotResult:
    table: str
    rows: int


def _hmac_sha256(column: Column, key: str) -> Column:
    # HMAC(k, m) = H((k ^ opad) || H((k ^ ipad) || m)); Spark has sha2 but no hmac, and the key
    # must not be a plain prefix (that would be open to length extension and easy to misuse).
    block = 64
    raw_key = key.encode()
    if len(raw_key) > block:
        import hashlib

        raw_key = hashlib.sha256(raw_key).digest()
    raw_key = raw_key.ljust(block, b"\0")
    ipad = bytes(b ^ 0x36 for b in raw_key)
    opad = bytes(b ^ 0x5C for b in raw_key)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.lower(column).cast("binary")), 256))
    return F.sha2(F.concat(F.lit(opad), inner), 256)


def pseudonymise(table: str, frame: DataFrame, key: str) -> DataFrame:
    for name in HASHED.get(table, ()):
        frame = frame.withColumn(f"{name}_hash", _hmac_sha256(F.col(name), key)).drop(name)
    return frame.drop(*DROPPED.get(table, ()))


def write_lake_snapshot(
    settings: Settings, table: str, frame: DataFrame, taken_at: datetime
) -> str:
    """Replace the day's snapshot partition ``oltp/<table>/snapshot_date=<date>/`` in the lake.

    Written as whole objects (Arrow → Parquet → PUT), not through Hadoop's rename-based output
    committer: object stores have no rename (S3A copies every file) and s3proxy's file-system
    backend lists the committer's directory markers without a size, which S3A cannot read. OLTP
    tables are small next to the event stream, so the driver holds one table at a time.
    """
    import io

    import pyarrow.parquet as pq

    from lms.services.s3 import s3_client

    s3 = s3_client(settings)
    prefix = f"oltp/{table}/snapshot_date={taken_at.date().isoformat()}/"
    stale = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=settings.lake_bucket, Prefix=prefix
        )
        for obj in page.get("Contents", [])
    ]
    buffer = io.BytesIO()
    pq.write_table(frame.toArrow(), buffer, compression="zstd")
    key = f"{prefix}part-{taken_at.strftime('%Y%m%dT%H%M%S')}.parquet"
    s3.put_object(Bucket=settings.lake_bucket, Key=key, Body=buffer.getvalue())
    for old in stale:
        if old != key:
            s3.delete_object(Bucket=settings.lake_bucket, Key=old)
    return key


def read_table(spark: SparkSession, settings: Settings, table: str) -> DataFrame:
    url, props = jdbc_url(settings.oltp_dsn)
    return spark.read.jdbc(url, f"{OLTP_SCHEMA}.{table}", properties=props)


def snapshot(
    spark: SparkSession, settings: Settings, tables: tuple[str, ...] = TABLES
) -> list[SnapshotResult]:
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown OLTP table(s): {', '.join(unknown)}")
    taken_at = datetime.now(UTC)
    warehouse = WarehouseWriter(settings)
    results = []
    for table in tables:
        frame = pseudonymise(table, read_table(spark, settings, table), settings.pii_hash_key)
        frame = frame.withColumn("_snapshot_at", F.lit(taken_at)).cache()
        rows = frame.count()
        write_lake_snapshot(settings, table, frame, taken_at)
        warehouse.replace_table(f"oltp_{table}", frame, label=f"snapshot {table}")
        frame.unpersist()
        log.info("snapshot %s: %d rows", table, rows)
        results.append(SnapshotResult(table=table, rows=rows))
    return results
