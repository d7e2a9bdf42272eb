"""FastAPI app factory of the prediction/read API: health, readiness and the route modules.

Run it with ``uvicorn serving.app:app_factory --factory``. Dependencies (the key store and the
Elasticsearch client) can be passed in, so tests use the real services with their own settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from elasticsearch import Elasticsearch
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from lms.auth.dependencies import install_key_verifier
from lms.auth.store import KeyStore, PostgresKeyStore
from lms.auth.verify import KeyVerifier
from lms.settings import Settings, get_settings
from serving.metrics import tune_logging
from serving.routes import live, predictions
from serving.settings import ServeSettings


def create_app(
    settings: Settings | None = None,
    *,
    key_store: KeyStore | None = None,
    es: Elasticsearch | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    serve = ServeSettings()
    client = es or Elasticsearch(settings.es_base_url, request_timeout=10, max_retries=1)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        predictions.start(app)
        try:
            yield
        finally:
            predictions.stop(app)
            if es is None:
                client.close()

    app = FastAPI(
        title="LMS prediction and live API",
        version="1.0",
        summary="Live dashboards and predictions for the LMS, behind scoped API keys.",
        lifespan=lifespan,
        telemetry=None
        if serve.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.es = client
    install_key_verifier(app, KeyVerifier(key_store or PostgresKeyStore(settings.platform_dsn)))

    @app.get("/health", tags=["operations"], summary="Liveness (no dependencies checked)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], summary="Readiness: Elasticsearch answers")
    def ready() -> JSONResponse:
        try:
            status = client.cluster.health(timeout="2s")["status"]
        except Exception as exc:  # any transport failure means "not ready", with the reason
            return JSONResponse(
                {"status": "unavailable", "elasticsearch": type(exc).__name__}, status_code=503
            )
        ok = status in ("green", "yellow")
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "elasticsearch": status},
            status_code=200 if ok else 503,
        )

    app.include_router(live.router)
    predictions.install(app, settings, es=client, serve=serve)
    return app


def app_factory() -> FastAPI:
    """The app as ``lms serve`` (uvicorn) runs it: a process of its own, so the logging
    module's process-wide settings can be tuned for it."""
    tune_logging()
    return create_app()
