"""A lean dispatcher in front of FastAPI for the hottest GET routes (dropout risk, next chapters).

Why: answered from the caches, a prediction costs tens of microseconds, while FastAPI's routing,
parameter and dependency resolution cost several hundred per request (measured: about 0.5 ms of
CPU of the 0.6 ms the whole app took), the difference between ~600 and over 1,000 requests per
second on two cores. So requests to these routes whose parameters are in their plain, valid form
are answered here, by the very functions the FastAPI routes call (same key check, same scopes,
same teacher rule, same model snapshot, same body), inside the observability middleware (request
id, access log, metrics and ``X-Model-Version`` as for any route).

Only successes are answered here. Anything else (a parameter out of range or in an unusual
spelling, a missing or refused key, an unknown id, a missing model) is passed to FastAPI as if
this layer did not exist, so every error keeps FastAPI's exact status, body and headers; the
repeated work happens on error paths only. The FastAPI routes stay the reference and the
OpenAPI documentation.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import orjson
from fastapi import HTTPException
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

# The route's answer for (request, student_id, course_id, parsed query): the response body.
Handler = Callable[[Request, str, str, dict[str, Any]], Awaitable[dict[str, Any]]]
_INT = re.compile(r"[0-9]{1,4}")
_FALSE = frozenset({"false", "0"})


class Bounds(NamedTuple):
    """An integer query parameter's range and default, shared by the route's ``Query`` and
    its hot twin so both accept exactly the same values."""

    low: int
    high: int
    default: int


@dataclass(frozen=True)
class HotRoute:
    """One route served here: its FastAPI twin (for the route template in logs and metrics),
    the integer query parameters it takes as ``name -> (low, high, default)``, the boolean ones
    it answers only when false (true takes FastAPI's path), and the handler."""

    route: APIRoute
    ints: Mapping[str, Bounds]
    false_only: frozenset[str]
    handler: Handler
    defaults: Mapping[str, Any]  # the response model's defaults, merged under the answer

    def parse(self, query: bytes) -> dict[str, Any] | None:
        """The parameters, or None when FastAPI must decide (anything but the plain form)."""
        values = {name: default for name, (_, _, default) in self.ints.items()}
        if not query:
            return values
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        if len({k for k, _ in pairs}) != len(pairs):
            return None  # a repeated parameter: FastAPI's rule decides
        for key, raw in pairs:
            if key in self.ints:
                low, high, _ = self.ints[key]
                if not _INT.fullmatch(raw) or not low <= int(raw) <= high:
                    return None
                values[key] = int(raw)
            elif key in self.false_only and raw.lower() not in _FALSE:
                return None
            # Any other parameter is ignored, as FastAPI ignores it.
        return values


class HotRoutes:
    """ASGI middleware: ``GET {prefix}/students/{student_id}/courses/{course_id}/{suffix}`` for
    the ``routes`` suffixes, ids as the API's id pattern; everything else goes to ``app``."""

    def __init__(self, app: ASGIApp, prefix: str, routes: Mapping[str, HotRoute]) -> None:
        self.app = app
        self.routes = dict(routes)
        names = "|".join(re.escape(s) for s in self.routes)
        ident = r"([A-Za-z0-9_-]{1,64})"  # serving.routes.schemas.ID_PATTERN
        self.path = re.compile(rf"{re.escape(prefix)}/students/{ident}/courses/{ident}/({names})")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            self.path.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path")
            else None
        )
        hot = self.routes[match[3]] if match else None
        params = hot.parse(scope.get("query_string", b"")) if hot else None
        if match is None or hot is None or params is None:
            await self.app(scope, receive, send)
            return
        student_id, course_id = match[1], match[2]
        try:
            answer = await hot.handler(Request(scope), student_id, course_id, params)
        except HTTPException:
            await self.app(scope, receive, send)  # FastAPI gives the error its exact form
            return
        scope["route"] = hot.route
        scope["path_params"] = {"student_id": student_id, "course_id": course_id}
        body = orjson.dumps({**hot.defaults, **answer})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
