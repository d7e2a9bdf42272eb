"""FastAPI wiring shared by every API: ``require_scopes(...)`` turns a request into a Principal.

An API stores its verifier once at startup (``app.state.key_verifier = KeyVerifier(...)``, see
:func:`install_key_verifier`) and declares what each route needs::

    EventsWriter = Annotated[Principal, Depends(require_scopes(EVENTS_WRITE))]

    @app.post("/v1/events")
    async def post_events(principal: EventsWriter) -> ...

The key is read from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Missing, malformed,
unknown and revoked keys give 401 with a ``WWW-Authenticate`` challenge; a valid key without the
scope gives 403; an unreachable key store gives 503 (the key may well be valid).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from lms.auth.scopes import SCOPES, Principal
from lms.auth.store import KeyStoreUnavailable
from lms.auth.verify import InvalidKey, KeyVerifier

REALM = "lms"

# auto_error=False: these only extract the key (and document both schemes in OpenAPI); the
# decision and its status code are ours, so every failure carries the same challenge.
_bearer = HTTPBearer(
    auto_error=False,
    description="`Authorization: Bearer lms_<prefix>_<secret>` (create keys with `lms keys create`)",
)
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The same key in an `X-API-Key` header."
)


def install_key_verifier(app: FastAPI, verifier: KeyVerifier) -> None:
    app.state.key_verifier = verifier


async def get_key_verifier(request: Request) -> KeyVerifier:
    # async: it does no I/O, and a plain def would cost a thread-pool round trip per request.
    verifier: KeyVerifier | None = getattr(request.app.state, "key_verifier", None)
    if verifier is None:
        # A wiring mistake in the API, not the caller's fault: refuse service, clearly.
        raise HTTPException(503, "authentication is not configured on this server")
    return verifier


def _challenge(error: str | None = None, scope: str | None = None) -> dict[str, str]:
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    if scope:
        value += f', scope="{scope}"'
    return {"WWW-Authenticate": value}


def _known(scopes: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}")
    return scopes


def presented_key(request: Request) -> str | None:
    """The key of ``Authorization: Bearer <key>``, else of ``X-API-Key``: exactly what the
    ``HTTPBearer``/``APIKeyHeader`` dependencies above extract, without their per-request cost."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if scheme and credentials and scheme.lower() == "bearer":
            return credentials
    return request.headers.get("x-api-key") or None


async def authorize(
    request: Request, verifier: KeyVerifier, key: str | None, required: tuple[str, ...]
) -> Principal:
    """The decision behind every scoped route: 401 without a valid key, 403 without the
    scopes, 503 when the key store cannot be asked; the Principal otherwise."""
    if not key:
        raise HTTPException(
            401,
            "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            headers=_challenge(),
        )
    try:
        principal = await verifier.averify(key.strip())
    except InvalidKey as exc:
        raise HTTPException(401, exc.reason, headers=_challenge("invalid_token")) from None
    except KeyStoreUnavailable:
        raise HTTPException(
            503, "cannot verify API keys right now; retry shortly", headers={"Retry-After": "5"}
        ) from None
    # For access logs: the key's name is an operator label, not personal data.
    request.state.api_key_name = principal.name
    missing = principal.missing(required)
    if missing:
        raise HTTPException(
            403,
            f"API key {principal.name!r} lacks scope {' '.join(missing)}",
            headers=_challenge("insufficient_scope", " ".join(required)),
        )
    return principal


def require_scopes(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits a request only with a valid key holding every ``scopes``."""
    required = _known(tuple(scopes))

    async def dependency(
        request: Request,
        verifier: Annotated[KeyVerifier, Depends(get_key_verifier)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_api_key_header)],
    ) -> Principal:
        key = bearer.credentials if bearer is not None else header_key
        return await authorize(request, verifier, key, required)

    dependency.__name__ = f"require_scopes_{'_'.join(s.replace(':', '_') for s in scopes)}"
    return dependency


def scope_checker(*scopes: str) -> Callable[[Request], Awaitable[Principal]]:
    """:func:`require_scopes` as a plain coroutine of the request, for an API that builds its
    own single dependency on a hot path: FastAPI resolves each sub-dependency of a route on
    every request, and on a cached answer those resolutions cost more than the answer itself.
    The same decisions and status codes; its routes document the key schemes with
    :data:`KEY_SECURITY` (``openapi_extra``) since no security dependency declares them."""
    required = _known(tuple(scopes))

    async def check(request: Request) -> Principal:
        verifier = await get_key_verifier(request)
        return await authorize(request, verifier, presented_key(request), required)

    return check


# The OpenAPI ``security`` of an operation guarded by :func:`scope_checker`: either scheme, by
# the names FastAPI gives ``_bearer`` and ``_api_key_header`` in ``components.securitySchemes``.
KEY_SECURITY: list[dict[str, list[str]]] = [
    {_bearer.scheme_name: []},
    {_api_key_header.scheme_name: []},
]
KEY_SCHEMES: dict[str, dict[str, object]] = {
    _bearer.scheme_name: _bearer.model.model_dump(mode="json", by_alias=True, exclude_none=True),
    _api_key_header.scheme_name: _api_key_header.model.model_dump(
        mode="json", by_alias=True, exclude_none=True
    ),
}
