"""The collector's Kafka topics, created and kept in line with settings by code (idempotent).

Called by the collector at startup and by ``lms collector topics``. Partitions only ever grow
(shrinking is impossible in Kafka and re-keying would break per-student order); configs that
differ are set; a replication factor that differs is reported, since changing it means a
partition reassignment an operator should plan.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ingestion.collector.settings import CollectorSettings
from lms.errors import LmsError, UsageError

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000
# Above the collector's 1 MiB request limit: one event of a maximal request, plus the fields
# the collector adds, must always fit in a record, or a valid batch could never be written.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)


def topic_specs(settings: CollectorSettings) -> list[TopicSpec]:
    if settings.kafka_min_insync_replicas > settings.kafka_replication_factor:
        raise UsageError(
            f"LMS_KAFKA_MIN_INSYNC_REPLICAS ({settings.kafka_min_insync_replicas}) cannot exceed "
            f"LMS_KAFKA_REPLICATION_FACTOR ({settings.kafka_replication_factor}): "
            "acks=all writes would all fail"
        )
    # The topic recompresses only when a producer uses another codec; matching the collector's
    # codec keeps the broker from spending CPU on our own records.
    codec = (
        "producer" if settings.collector_compression == "none" else settings.collector_compression
    )
    common = {
        "cleanup.policy": "delete",
        "compression.type": codec,
        "min.insync.replicas": str(settings.kafka_min_insync_replicas),
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
    }
    return [
        TopicSpec(
            settings.kafka_topic_raw,
            settings.kafka_raw_partitions,
            settings.kafka_replication_factor,
            {**common, "retention.ms": str(int(settings.kafka_raw_retention_days * DAY_MS))},
        ),
        TopicSpec(
            settings.kafka_topic_dead_letter,
            settings.kafka_dead_letter_partitions,
            settings.kafka_replication_factor,
            {
                **common,
                "retention.ms": str(int(settings.kafka_dead_letter_retention_days * DAY_MS)),
            },
        ),
    ]


def admin_client(settings: CollectorSettings, timeout_s: float = 15.0) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
            client_id="lms-topics",
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=int(timeout_s * 1000),
        )
    except KafkaError as exc:
        raise LmsError(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({type(exc).__name__}); "
            "start it with `lms services up kafka` or set LMS_KAFKA_BOOTSTRAP"
        ) from None


def _current_configs(admin: KafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    described: dict[str, Any] = admin.describe_configs(resources, config_filter="all")
    topics: dict[str, dict[str, Any]] = described.get("topic", {})
    return {
        name: {key: str(entry.get("value")) for key, entry in configs.items()}
        for name, configs in topics.items()
    }


def ensure_topics(settings: CollectorSettings, admin: KafkaAdminClient | None = None) -> list[str]:
    """Create or update the raw and dead-letter topics; return one line per action taken."""
    specs = topic_specs(settings)
    own_admin = admin is None
    client = admin_client(settings) if admin is None else admin
    actions: list[str] = []
    try:
        existing = {
            topic["name"]: topic
            for topic in client.describe_topics([spec.name for spec in specs])
            if topic.get("error_code", 0) == 0
        }
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            # TopicAlreadyExistsError: another collector won the race; the update pass below
            # still applies.
            with contextlib.suppress(TopicAlreadyExistsError):
                client.create_topics(
                    {
                        spec.name: {
                            "num_partitions": spec.partitions,
                            "replication_factor": spec.replication_factor,
                            "configs": spec.configs,
                        }
                        for spec in missing
                    },
                    wait_for_metadata=True,
                )
            for spec in missing:
                actions.append(
                    f"created {spec.name} ({spec.partitions} partitions, "
                    f"replication {spec.replication_factor})"
                )

        present = [spec for spec in specs if spec.name in existing]
        current = _current_configs(client, [spec.name for spec in present]) if present else {}
        for spec in present:
            partitions = len(existing[spec.name].get("partitions", []))
            if partitions < spec.partitions:
                client.create_partitions({spec.name: spec.partitions})
                actions.append(f"{spec.name}: partitions {partitions} -> {spec.partitions}")
            elif partitions > spec.partitions:
                actions.append(
                    f"{spec.name}: has {partitions} partitions, more than the {spec.partitions} "
                    "configured; left as is (Kafka cannot remove partitions)"
                )
            replicas = {
                len(p.get("replica_nodes", p.get("replicas", [])))
                for p in existing[spec.name].get("partitions", [])
            }
            if replicas and replicas != {spec.replication_factor}:
                actions.append(
                    f"{spec.name}: replication factor {sorted(replicas)} differs from "
                    f"{spec.replication_factor}; reassign partitions to change it"
                )
            have = current.get(spec.name, {})
            changed = {k: v for k, v in spec.configs.items() if have.get(k) != v}
            if changed:
                client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name, changed)])
                actions.append(
                    f"{spec.name}: set "
                    + ", ".join(f"{k}={v} (was {have.get(k)})" for k, v in sorted(changed.items()))
                )
    except KafkaError as exc:
        raise LmsError(
            f"could not create or update the topics at {settings.kafka_bootstrap_servers}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    finally:
        if own_admin:
            client.close()
    for action in actions:
        log.info("topics: %s", action)
    return actions
