"""One place that builds the platform's Spark session: connector jars, S3A and local sizing.

Local mode by default (``LMS_SPARK_MASTER=local[2]``); a cluster is the same code with a master
URL. Connector versions must match the installed pyspark exactly, so they are derived from it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyspark
from pyspark.sql import SparkSession

from lms.settings import Settings

HADOOP_AWS_VERSION = "3.5.0"  # the hadoop-client-api jar that pyspark 4.2 ships
POSTGRES_JDBC_VERSION = "42.7.4"
IVY_SETTINGS = Path(__file__).with_name("ivysettings.xml")


def connector_packages() -> list[str]:
    return [
        f"org.apache.spark:spark-sql-kafka-0-10_2.13:{pyspark.__version__}",
        f"org.apache.hadoop:hadoop-aws:{HADOOP_AWS_VERSION}",
        f"org.postgresql:postgresql:{POSTGRES_JDBC_VERSION}",
    ]


def build_session(settings: Settings, app_name: str) -> SparkSession:
    # Spark picks the machine's external address otherwise; everything local is on loopback.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.jars.packages", ",".join(connector_packages()))
        .config("spark.jars.ivySettings", str(IVY_SETTINGS))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config(
            "spark.sql.streaming.stateStore.providerClass",
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        )
        # Each batch commits only its changes to the dedup state (not a fresh RocksDB snapshot).
        .config("spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled", "true")
        # Counting the store's rows costs a RocksDB read before every write (to know whether the
        # key is new); de-duplication has just read the key anyway. Without the count the state
        # metrics lose only `numTotalStateRows`: ~10 % less CPU per landed event (docs/ingestion.md).
        .config("spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows", "false")
        .config("spark.sql.parquet.compression.codec", "zstd")
        # A task writing several (date, type) partitions keeps one open file per partition instead
        # of sorting its rows by partition first (the sort cost ~4 % of the landing job's CPU).
        .config("spark.sql.maxConcurrentOutputFileWriters", "64")
        # Open Parquet writers buffer a row group each; Parquet shrinks their row groups so that
        # together they stay within this share of the heap (its default, 95 %, leaves Spark
        # nothing when a big backlog fills many open files at once).
        .config("spark.hadoop.parquet.memory.pool.ratio", "0.3")
        # No empty micro-batch just to advance the watermark: the dedup state is pruned on the
        # next batch with data anyway, and an empty batch costs a full state-store round trip.
        .config("spark.sql.streaming.noDataMicroBatches.enabled", "false")
        # The file sink's commit log through Hadoop's FileSystem API: the FileContext API checks
        # that a parent "directory" exists, which an object store cannot always answer truthfully.
        .config(
            "spark.sql.streaming.checkpointFileManagerClass",
            "org.apache.spark.sql.execution.streaming.checkpointing."
            "FileSystemBasedCheckpointFileManager",
        )
        # S3A against the configured endpoint (s3proxy locally, AWS S3 in production).
        .config("spark.hadoop.fs.s3a.endpoint", settings.s3_endpoint_url)
        .config("spark.hadoop.fs.s3a.endpoint.region", settings.s3_region)
        .config("spark.hadoop.fs.s3a.path.style.access", "true")
        .config("spark.hadoop.fs.s3a.access.key", settings.s3_access_key)
        .config("spark.hadoop.fs.s3a.secret.key", settings.s3_secret_key)
        .config(
            "spark.hadoop.fs.s3a.connection.ssl.enabled",
            str(settings.s3_endpoint_url.startswith("https")).lower(),
        )
        # Skip S3A's parent-directory probes on create/mkdir: object stores have no directories,
        # the probes cost requests, and on s3proxy's file-system backend they misread a prefix as
        # a file ("parent is not a dir").
        .config("spark.hadoop.fs.s3a.create.performance", "true")
        .config("spark.hadoop.fs.s3a.performance.flags", "create,mkdir")
        .config(
            "spark.hadoop.fs.s3a.aws.credentials.provider",
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        )
        # The streaming file sink writes each file once at its final path (its commit log makes it
        # exactly-once); batch writes (snapshots, replays) use the v2 committer to rename less.
        .config("spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version", "2")
    )
    # The JVM inherits our stdout, and Ivy's dependency report goes there: commands whose stdout
    # is a result (`lms flow ... ` JSON, the demo's summary) would carry it. The JVM gets stderr
    # as its stdout instead; our own stdout is put back once it has started.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        session = builder.getOrCreate()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    session.sparkContext.setLogLevel("WARN")
    return session
