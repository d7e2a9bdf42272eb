"""The HTTP event collector: FastAPI app, Kafka producer, per-event outcomes, redaction.

Run it with ``lms collector run``; build the app with :func:`create_app`.
"""

from ingestion.collector.app import create_app
from ingestion.collector.settings import CollectorSettings, get_collector_settings

__all__ = ["CollectorSettings", "create_app", "get_collector_settings"]
