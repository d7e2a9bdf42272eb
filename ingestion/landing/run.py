"""One scheduled landing run: the Kafka backlog, then the OLTP snapshots, in one Spark session."""

from __future__ import annotations

from ingestion.landing.events import LandingResult, land
from ingestion.landing.snapshots import SnapshotResult, snapshot
from ingestion.landing.spark import build_session
from lms.settings import Settings


def land_all(settings: Settings, app_name: str) -> tuple[list[LandingResult], list[SnapshotResult]]:
    """Events into the lake and the raw layer (an availableNow batch: what is in Kafka now),
    then today's OLTP snapshots; used by the pipeline flow and the demo."""
    spark = build_session(settings, app_name)
    try:
        return land(spark, settings), snapshot(spark, settings)
    finally:
        spark.stop()
