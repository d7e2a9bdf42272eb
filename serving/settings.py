"""Settings of the prediction service only (``LMS_SERVE_*``); the shared ones (database, S3,
registry bucket and prefix, ``ml`` schema) come from :class:`lms.settings.Settings`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LMS_SERVE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=18090, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # How often each worker asks the registry whether a new version was promoted. A swap is a
    # reference assignment, so requests in flight finish on the version they started with.
    model_poll_s: float = Field(default=30.0, gt=0)
    # Online features change when the scoring flow runs (daily); a short cache spares the
    # database on hot keys while a rescore is visible within the TTL.
    feature_ttl_s: float = Field(default=30.0, ge=0)
    feature_cache_size: int = Field(default=50_000, ge=0)
    db_pool_size: int = Field(default=4, ge=1, le=64)
    # Real-time signal from the streaming jobs' presence index (Elasticsearch); off = not asked.
    realtime_features: bool = True
    realtime_timeout_s: float = Field(default=0.2, gt=0)
    # FastAPI's native OpenTelemetry hooks (tracing, metrics, logs through the global OTel
    # providers). Off by default: the service exports Prometheus metrics and JSON access logs
    # itself, and the hooks' per-request provider checks cost more than a cached prediction.
    opentelemetry: bool = False
