"""Structured JSON logs for the collector: one line per request with its id and latency.

What is logged: method, path, status, duration, the API key's *name*, batch counts and reason
codes. What never is: bodies, events, feedback text, keys, client addresses (the
access log of uvicorn, which prints client IPs, is switched off in favour of this one).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# uvicorn adds color_message (the same text with ANSI colours) to its records.
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
}

access_log = logging.getLogger("lms.collector.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and where, not its message: messages can quote input.
            entry["error"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """Route the collector's, uvicorn's and kafka-python's logs through one JSON handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # kafka-python is chatty at INFO (every connection); its warnings still come through.
    logging.getLogger("kafka").setLevel(logging.WARNING)


class RequestContextMiddleware:
    """Gives every request an id (the client's X-Request-ID when sane) and logs its outcome.

    Pure ASGI rather than BaseHTTPMiddleware: no extra task per request on the hot path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SAFE_REQUEST_ID.match(candidate):
                    request_id = candidate
                break
        request_id = request_id or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        log_fields: dict[str, Any] = {}
        state["log_fields"] = log_fields
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Safety net for bugs only (every expected failure has its own status): answer 503
            # so clients retry the batch, which event_ids make safe, instead of a 500. Logged
            # with the exception's type and traceback but not the request.
            access_log.error("unexpected error", exc_info=exc, extra={"request_id": request_id})
            if status:
                raise  # the response already started; only closing the connection is left
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", b"5"),
                    ],
                }
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": b'{"detail":"unexpected collector error; retry later with the same '
                    b"event_ids (request id " + request_id.encode() + b')"}',
                }
            )
        finally:
            path = scope.get("path", "")
            if path not in ("/health", "/ready") or status >= 400:
                access_log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope.get("method"),
                        "path": path,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "api_key": state.get("api_key_name"),
                        **log_fields,
                    },
                )
