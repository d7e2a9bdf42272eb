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


def require_scopes(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits a request only with a valid key holding every ``scopes``."""
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}")
    required = tuple(scopes)

    async def dependency(
        request: Request,
        verifier: Annotated[KeyVerifier, Depends(get_key_verifier)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_api_key_header)],
    ) -> Principal:
        key = bearer.credentials if bearer is not None else header_key
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

    dependency.__name__ = f"require_scopes_{'_'.join(s.replace(':', '_') for s in scopes)}"
    return dependency
