"""Key verification with a short cache, so an API checks a key on every request for ~1 µs.

Cached by the key's SHA-256 digest (the raw key is not kept). A verified key stays valid for
``ttl_s`` seconds in each process: a revocation takes effect within that time, which is the
price of not querying PostgreSQL on every request. Unknown and revoked keys are cached for a
shorter ``negative_ttl_s`` so a client hammering with a wrong key costs no database round trips.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from lms.auth.keys import hash_key, key_prefix
from lms.auth.scopes import Principal
from lms.auth.store import KeyStore

UNKNOWN_KEY = "unknown API key"
REVOKED_KEY = "API key revoked"
MALFORMED_KEY = "malformed API key (expected lms_<prefix>_<secret>)"


class InvalidKey(Exception):
    """The key is wrong, unknown or revoked: the caller answers 401."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Entry:
    expires_at: float
    principal: Principal | None
    reason: str | None


class KeyVerifier:
    def __init__(
        self,
        store: KeyStore,
        *,
        ttl_s: float = 30.0,
        negative_ttl_s: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[str, _Entry] = OrderedDict()

    def _cached(self, digest: str) -> _Entry | None:
        entry = self._cache.get(digest)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._cache.pop(digest, None)
            return None
        return entry

    def _remember(self, digest: str, principal: Principal | None, reason: str | None) -> _Entry:
        ttl = self.ttl_s if principal is not None else self.negative_ttl_s
        entry = _Entry(self._clock() + ttl, principal, reason)
        self._cache[digest] = entry
        self._cache.move_to_end(digest)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return entry

    def _load(self, digest: str) -> tuple[Principal | None, str | None]:
        # Raises KeyStoreUnavailable, which is deliberately not cached.
        record = self.store.find_by_hash(digest)
        if record is None:
            return None, UNKNOWN_KEY
        if record.is_revoked:
            return None, REVOKED_KEY
        principal = Principal(
            key_id=record.id,
            name=record.name,
            prefix=record.prefix,
            scopes=frozenset(record.scopes),
            teacher_id=record.teacher_id,
        )
        return principal, None

    @staticmethod
    def _result(entry: _Entry) -> Principal:
        if entry.principal is None:
            raise InvalidKey(entry.reason or UNKNOWN_KEY)
        return entry.principal

    def verify(self, key: str) -> Principal:
        """Blocking variant (CLI, threads): a Principal, or InvalidKey."""
        if key_prefix(key) is None:
            raise InvalidKey(MALFORMED_KEY)
        digest = hash_key(key)
        entry = self._cached(digest)
        if entry is None:
            entry = self._remember(digest, *self._load(digest))
        return self._result(entry)

    async def averify(self, key: str) -> Principal:
        """For request handlers: a cache hit never leaves the event loop; a miss queries the
        store in a worker thread so a slow database does not stall other requests."""
        if key_prefix(key) is None:
            raise InvalidKey(MALFORMED_KEY)
        digest = hash_key(key)
        entry = self._cached(digest)
        if entry is None:
            principal, reason = await asyncio.to_thread(self._load, digest)
            entry = self._remember(digest, principal, reason)
        return self._result(entry)

    def forget(self) -> None:
        """Drop the cache (tests; an admin endpoint after a revocation)."""
        self._cache.clear()
