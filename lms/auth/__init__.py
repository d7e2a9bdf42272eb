"""API keys shared by every API of the platform (collector, prediction API, ...).

- :mod:`lms.auth.scopes`: scope names and the :class:`Principal` a route receives.
- :mod:`lms.auth.keys`: key format and digest.
- :mod:`lms.auth.store`: ``platform.api_keys`` in PostgreSQL (and an in-memory store for tests).
- :mod:`lms.auth.verify`: verification with a short cache.
- :mod:`lms.auth.dependencies`: ``require_scopes(...)`` for FastAPI (imported lazily by APIs, so the
  CLI does not import FastAPI).
"""

from lms.auth.keys import generate_key, hash_key, key_prefix
from lms.auth.manage import create_key, list_keys, revoke_key
from lms.auth.scopes import (
    ADMIN,
    ALERTS_READ,
    EVENTS_WRITE,
    LIVE_READ,
    PREDICTIONS_READ,
    SCOPES,
    Principal,
    parse_scopes,
)
from lms.auth.store import (
    ApiKeyRecord,
    InMemoryKeyStore,
    KeyStore,
    KeyStoreUnavailable,
    PostgresKeyStore,
    migrate,
)
from lms.auth.verify import InvalidKey, KeyVerifier

__all__ = [
    "ADMIN",
    "ALERTS_READ",
    "EVENTS_WRITE",
    "LIVE_READ",
    "PREDICTIONS_READ",
    "SCOPES",
    "ApiKeyRecord",
    "InMemoryKeyStore",
    "InvalidKey",
    "KeyStore",
    "KeyStoreUnavailable",
    "KeyVerifier",
    "PostgresKeyStore",
    "Principal",
    "create_key",
    "generate_key",
    "hash_key",
    "key_prefix",
    "list_keys",
    "migrate",
    "parse_scopes",
    "revoke_key",
]
