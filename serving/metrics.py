"""Request ids, structured access logs, ``X-Model-Version`` and Prometheus metrics, in one ASGI
middleware (a plain ASGI wrapper: ``BaseHTTPMiddleware`` costs a task per request).

Logs are one JSON object per request: request id, method, the *route template* (never the raw
path, which holds student ids), status, latency, the API key's name and the model versions. No
personal data: ids of students never appear in a log line.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sys
import time
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The collector's formatter: one JSON object per line, exception type + traceback only.
from ingestion.collector.logs import JsonFormatter

access_log = logging.getLogger("serving.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Request ids must be unique, not secret: a random per-process prefix and a counter cost nothing,
# where uuid4 reads the kernel's random source on every request.
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)
BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def configure_logging(level: str = "INFO") -> None:
    """JSON logs on stderr for the service's loggers (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("serving", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False


def tune_logging() -> None:
    """Skip what the logging module gathers for every record and the JSON lines never show:
    the caller's file and line (a stack walk), thread and process names. Process-wide, so only
    for the service's own processes (``serving.app.app_factory``), never a test run's. These
    are the switches of the logging HOWTO's "Optimization" section."""
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lms_serve_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lms_serve_request_seconds",
            "Request latency by route template",
            ["route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "lms_serve_predictions",
            "Predictions served, by model and version",
            ["model", "version"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "lms_serve_model_loaded",
            "1 for the model version currently served",
            ["model", "version"],
            registry=self.registry,
        )
        self.swaps = Counter(
            "lms_serve_model_swaps", "Model versions swapped in", ["model"], registry=self.registry
        )
        self.cold_starts = Counter(
            "lms_serve_cold_starts",
            "Answers given from the cold-start rule (too little history)",
            ["endpoint"],
            registry=self.registry,
        )
        self.cache_hits = Gauge(
            "lms_serve_feature_cache_hits", "Online feature cache hits", registry=self.registry
        )
        self.cache_misses = Gauge(
            "lms_serve_feature_cache_misses", "Online feature cache misses", registry=self.registry
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._predicted: dict[tuple[str, str], Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count a request and its latency; the labelled children are looked up once per
        (method, route, status), not on every request (each lookup takes a lock)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def predicted(self, model: str, version: str, n: int = 1) -> None:
        """Count ``n`` predictions of a model version (its child looked up once, as above)."""
        child = self._predicted.get((model, version))
        if child is None:
            child = self._predicted[(model, version)] = self.predictions.labels(model, version)
        child.inc(n)

    def swapped(self, name: str, version: str, previous: str | None) -> None:
        if previous is not None:
            self.model_info.remove(name, previous)
        self.model_info.labels(name, version).set(1)
        self.swaps.labels(name).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode(
            "latin-1"
        )
        request_id = given if REQUEST_ID.match(given) else f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500  # until a response starts

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                versions = state.get("model_versions")
                if versions:
                    value = ",".join(f"{k}={v}" for k, v in versions.items())
                    headers.append((b"x-model-version", value.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # A safety net for bugs only (every expected failure has its own 4xx/503): logged
            # with its traceback and the request id, answered 503 (retry) unless already started.
            access_log.error("unexpected error", exc_info=exc, extra={"request_id": request_id})
            if status != 500:
                raise
            body = orjson.dumps({"detail": "internal error; retry", "request_id": request_id})
            await send_wrapper(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"5")],
                }
            )
            await send_wrapper({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "route": template,
                        "status": status,
                        "latency_ms": round(elapsed * 1000, 3),
                        "api_key": state.get("api_key_name"),
                        "model_versions": state.get("model_versions"),
                    },
                )
