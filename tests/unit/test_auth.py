"""API keys: format and digest, scopes, the in-memory store, the verifier's cache, and the
401/403/503 matrix of ``require_scopes`` on a small FastAPI app (no PostgreSQL)."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from lms.auth import (
    ADMIN,
    ALERTS_READ,
    EVENTS_WRITE,
    PREDICTIONS_READ,
    InMemoryKeyStore,
    InvalidKey,
    KeyStoreUnavailable,
    KeyVerifier,
    Principal,
    create_key,
    generate_key,
    hash_key,
    key_prefix,
    parse_scopes,
    revoke_key,
)
from lms.auth.dependencies import install_key_verifier, require_scopes
from lms.auth.store import ApiKeyRecord
from lms.errors import UsageError

# --- key material --------------------------------------------------------------------------


def test_generated_keys_are_unique_prefixed_and_high_entropy() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    key, prefix = next(iter(keys))
    assert key.startswith(f"lms_{prefix}_")
    assert len(key.split("_", 2)[2]) >= 43  # 32 random bytes, base64url
    assert key_prefix(key) == prefix


def test_hash_is_sha256_hex_and_not_the_key() -> None:
    key, _ = generate_key()
    digest = hash_key(key)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert key not in digest and hash_key(key) == digest != hash_key(key + "x")


@pytest.mark.parametrize(
    "text",
    ["", "Bearer", "lms_short_secret", "abc_12345678_secret", "lms_12345678_", "x" * 10_000],
)
def test_malformed_keys_have_no_prefix(text: str) -> None:
    assert key_prefix(text) is None


# --- scopes --------------------------------------------------------------------------------


def test_parse_scopes_sorts_and_deduplicates() -> None:
    assert parse_scopes("events:write, alerts:read,events:write") == (ALERTS_READ, EVENTS_WRITE)
    assert parse_scopes([PREDICTIONS_READ]) == (PREDICTIONS_READ,)


@pytest.mark.parametrize("text", ["", " , ", "events:read", "events:write,root"])
def test_parse_scopes_refuses_unknown_or_empty(text: str) -> None:
    with pytest.raises(UsageError, match="scope"):
        parse_scopes(text)


def test_admin_implies_every_scope_and_teacher_id_is_carried() -> None:
    admin = Principal(1, "ops", "abcdefgh", frozenset({ADMIN}))
    assert admin.missing([EVENTS_WRITE, ALERTS_READ]) == []
    teacher = Principal(2, "t", "abcdefgi", frozenset({ALERTS_READ}), teacher_id="tch_0001")
    assert teacher.missing([ALERTS_READ, PREDICTIONS_READ]) == [PREDICTIONS_READ]
    assert teacher.teacher_id == "tch_0001"


# --- management ----------------------------------------------------------------------------


def test_create_list_revoke() -> None:
    store = InMemoryKeyStore()
    key, record = create_key(store, "collector-web", "events:write", teacher_id=None)
    assert record.name == "collector-web" and record.scopes == (EVENTS_WRITE,)
    assert key_prefix(key) == record.prefix
    _, other = create_key(store, "teacher-1", [ALERTS_READ], teacher_id="tch_0001")
    assert [r.name for r in store.list_keys()] == ["collector-web", "teacher-1"]
    assert other.teacher_id == "tch_0001"
    revoked = revoke_key(store, "collector-web")
    assert revoked.is_revoked
    assert revoke_key(store, "collector-web").revoked_at == revoked.revoked_at  # idempotent
    assert revoke_key(store, other.prefix).name == "teacher-1"  # by prefix too


@pytest.mark.parametrize(
    ("name", "scopes", "teacher", "match"),
    [
        ("has space", "events:write", None, "invalid key name"),
        ("-dash-first", "events:write", None, "invalid key name"),
        ("ok", "events:delete", None, "unknown scope"),
        ("ok", "events:write", "tch 1", "invalid teacher id"),
    ],
)
def test_create_refuses_bad_input_with_one_clear_line(
    name: str, scopes: str, teacher: str | None, match: str
) -> None:
    with pytest.raises(UsageError, match=match) as info:
        create_key(InMemoryKeyStore(), name, scopes, teacher_id=teacher)
    assert "\n" not in str(info.value)


def test_duplicate_name_is_a_usage_error_even_after_revocation() -> None:
    store = InMemoryKeyStore()
    create_key(store, "web", "events:write")
    revoke_key(store, "web")
    with pytest.raises(UsageError, match="already exists"):
        create_key(store, "web", "events:write")


def test_revoke_unknown_name() -> None:
    with pytest.raises(UsageError, match="no API key named 'nope'"):
        revoke_key(InMemoryKeyStore(), "nope")


# --- verifier ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_verifier_caches_valid_keys_until_ttl() -> None:
    store, clock = InMemoryKeyStore(), Clock()
    key, record = create_key(store, "web", "events:write")
    verifier = KeyVerifier(store, ttl_s=30, clock=clock)
    principal = verifier.verify(key)
    assert principal.name == "web" and principal.scopes == {EVENTS_WRITE}
    for _ in range(100):
        verifier.verify(key)
    assert store.lookups == 1
    # A revocation is seen once the cached entry expires, not before.
    revoke_key(store, "web")
    assert verifier.verify(key).key_id == record.id
    clock.now += 31
    with pytest.raises(InvalidKey, match="revoked"):
        verifier.verify(key)


def test_verifier_caches_unknown_keys_briefly() -> None:
    store, clock = InMemoryKeyStore(), Clock()
    verifier = KeyVerifier(store, negative_ttl_s=5, clock=clock)
    wrong, _ = generate_key()
    for _ in range(10):
        with pytest.raises(InvalidKey, match="unknown"):
            verifier.verify(wrong)
    assert store.lookups == 1
    clock.now += 6
    with pytest.raises(InvalidKey):
        verifier.verify(wrong)
    assert store.lookups == 2


def test_malformed_key_never_reaches_the_store() -> None:
    store = InMemoryKeyStore()
    with pytest.raises(InvalidKey, match="malformed"):
        KeyVerifier(store).verify("hunter2")
    assert store.lookups == 0


def test_verifier_cache_is_bounded() -> None:
    store = InMemoryKeyStore()
    verifier = KeyVerifier(store, max_entries=10)
    for _ in range(50):
        with pytest.raises(InvalidKey):
            verifier.verify(generate_key()[0])
    assert len(verifier._cache) == 10


class DownStore(InMemoryKeyStore):
    def find_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        raise KeyStoreUnavailable("cannot reach PostgreSQL")


# --- require_scopes: the 401/403 matrix ------------------------------------------------------


def make_client(store: InMemoryKeyStore) -> TestClient:
    app = FastAPI()
    install_key_verifier(app, KeyVerifier(store))

    @app.get("/events")
    async def events(
        principal: Annotated[Principal, Depends(require_scopes(EVENTS_WRITE))],
    ) -> dict[str, str | None]:
        return {"name": principal.name, "teacher_id": principal.teacher_id}

    @app.get("/alerts")
    async def alerts(
        principal: Annotated[Principal, Depends(require_scopes(ALERTS_READ, PREDICTIONS_READ))],
    ) -> dict[str, str | None]:
        return {"name": principal.name, "teacher_id": principal.teacher_id}

    return TestClient(app)


@pytest.fixture
def keys() -> tuple[InMemoryKeyStore, dict[str, str]]:
    store = InMemoryKeyStore()
    made = {
        "writer": create_key(store, "writer", "events:write")[0],
        "reader": create_key(store, "reader", "alerts:read,predictions:read", teacher_id="tch_1")[
            0
        ],
        "admin": create_key(store, "admin", "admin")[0],
        "revoked": create_key(store, "old", "events:write")[0],
    }
    revoke_key(store, "old")
    return store, made


@pytest.mark.parametrize(
    ("path", "key", "status", "error"),
    [
        ("/events", None, 401, None),
        ("/events", "garbage", 401, "invalid_token"),
        ("/events", "lms_abcdefgh_notarealsecretatall", 401, "invalid_token"),
        ("/events", "revoked", 401, "invalid_token"),
        ("/events", "reader", 403, "insufficient_scope"),
        ("/events", "writer", 200, None),
        ("/events", "admin", 200, None),
        ("/alerts", "writer", 403, "insufficient_scope"),
        ("/alerts", "reader", 200, None),
    ],
)
@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_status_matrix(
    keys: tuple[InMemoryKeyStore, dict[str, str]],
    path: str,
    key: str | None,
    status: int,
    error: str | None,
    header: str,
) -> None:
    store, made = keys
    client = make_client(store)
    headers = {}
    if key is not None:
        value = made.get(key, key)
        headers = (
            {"Authorization": f"Bearer {value}"} if header == "bearer" else {"X-API-Key": value}
        )
    response = client.get(path, headers=headers)
    assert response.status_code == status, response.text
    if status in (401, 403):
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="lms"')
        if error:
            assert f'error="{error}"' in challenge
        assert "detail" in response.json()
    if key in made:
        # A key never comes back in an answer.
        assert made[key] not in response.text


def test_revoked_key_message_and_teacher_restriction(
    keys: tuple[InMemoryKeyStore, dict[str, str]],
) -> None:
    store, made = keys
    client = make_client(store)
    response = client.get("/events", headers={"Authorization": f"Bearer {made['revoked']}"})
    assert response.json()["detail"] == "API key revoked"
    response = client.get("/alerts", headers={"X-API-Key": made["reader"]})
    assert response.json() == {"name": "reader", "teacher_id": "tch_1"}


def test_non_bearer_authorization_scheme_is_401() -> None:
    store = InMemoryKeyStore()
    key, _ = create_key(store, "w", "events:write")
    response = make_client(store).get("/events", headers={"Authorization": f"Basic {key}"})
    assert response.status_code == 401


def test_unreachable_store_is_503_not_401() -> None:
    store = DownStore()
    key, _ = generate_key()
    response = make_client(store).get("/events", headers={"X-API-Key": key})
    assert response.status_code == 503
    assert response.headers["retry-after"]


def test_require_scopes_refuses_unknown_scope_at_definition() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        require_scopes("events:read")
