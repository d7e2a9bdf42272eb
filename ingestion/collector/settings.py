"""The collector's settings: the platform's ``Settings`` plus ``LMS_COLLECTOR_*`` and topic knobs.

Subclassing keeps one source for shared values (Kafka address, topic names, platform DSN) while
the collector-only fields stay out of ``lms/settings.py``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field

from lms.settings import Settings

MIB = 1024 * 1024


class CollectorSettings(Settings):
    # HTTP server (`lms collector run` flags override these).
    collector_host: str = "127.0.0.1"
    # 18080: the platform keeps its ports in 15000-19999, below Linux's ephemeral range (32768+)
    # so an outgoing connection can never take a port a service is about to bind.
    collector_port: int = Field(default=18080, ge=1, le=65535)
    collector_workers: int = Field(default=1, ge=1, le=64)

    # Request limits: 413 beyond either.
    collector_max_events: int = Field(default=1000, ge=1, description="Events per request")
    collector_max_body_bytes: int = Field(default=MIB, ge=1024, description="Request body size")

    # Recently accepted event_ids remembered per process to answer "duplicate" without a resend.
    collector_dedup_cache_size: int = Field(default=200_000, ge=0)
    collector_dedup_ttl_s: float = Field(default=900.0, gt=0)

    # API key cache (revocations take effect within collector_key_cache_ttl_s).
    collector_key_cache_ttl_s: float = Field(default=30.0, ge=0)

    # Kafka client: confluent-kafka (librdkafka: partitioning, batching, compression and acks in
    # C threads, ~3x less Python CPU per record) or kafka-python; see
    # ingestion/collector/confluent.py and producer.py.
    collector_kafka_client: Literal["confluent-kafka", "kafka-python"] = "confluent-kafka"

    # Kafka producer. lz4 costs a fraction of gzip's CPU for a little less compression.
    # confluent-kafka supports every codec here; kafka-python needs a package for lz4 (in the
    # platform environment), zstd (zstandard) and snappy (python-snappy).
    collector_compression: Literal["lz4", "gzip", "zstd", "snappy", "none"] = "lz4"
    collector_linger_ms: int = Field(default=5, ge=0)
    collector_batch_bytes: int = Field(default=512 * 1024, ge=1024)
    collector_ack_timeout_s: float = Field(default=15.0, gt=0)
    collector_create_topics: bool = Field(
        default=True, description="Create/update the topics at startup (needs admin rights)"
    )

    # Topics (ingestion/topics.py). Replication 1 and min ISR 1 suit one local broker; a cluster
    # wants 3 and 2 so that acks=all survives one broker down.
    kafka_raw_partitions: int = Field(default=6, ge=1)
    kafka_dead_letter_partitions: int = Field(default=1, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int = Field(default=1, ge=1)
    kafka_raw_retention_days: float = Field(default=7, gt=0)
    kafka_dead_letter_retention_days: float = Field(default=30, gt=0)


@lru_cache(maxsize=1)
def get_collector_settings() -> CollectorSettings:
    return CollectorSettings()
