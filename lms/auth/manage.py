"""Operator actions on API keys (used by `lms keys` and by tests): create, list, revoke."""

from __future__ import annotations

import re
from collections.abc import Iterable

from lms.auth.keys import generate_key, hash_key
from lms.auth.scopes import parse_scopes
from lms.auth.store import ApiKeyRecord, DuplicateKeyName, KeyStore
from lms.errors import UsageError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TEACHER_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def create_key(
    store: KeyStore,
    name: str,
    scopes: str | Iterable[str],
    *,
    teacher_id: str | None = None,
) -> tuple[str, ApiKeyRecord]:
    """Create a key; return ``(key, record)``. The key itself is never retrievable again."""
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"invalid key name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (e.g. collector-web)"
        )
    if teacher_id is not None and not TEACHER_ID_PATTERN.match(teacher_id):
        raise UsageError(f"invalid teacher id {teacher_id!r}: expected an id like tch_0001")
    scope_names = parse_scopes(scopes)
    for _ in range(3):
        key, prefix = generate_key()
        try:
            return key, store.create(name, prefix, hash_key(key), scope_names, teacher_id)
        except DuplicateKeyName:
            # A taken name is the operator's problem; a prefix collision (1 in 2.8e12) is ours.
            if any(record.name == name for record in store.list_keys()):
                raise
    raise UsageError("could not allocate a unique key prefix; try again")


def list_keys(store: KeyStore) -> list[ApiKeyRecord]:
    return store.list_keys()


def revoke_key(store: KeyStore, name_or_id: str) -> ApiKeyRecord:
    """Revoke a key (idempotent). Running APIs stop accepting it within their cache TTL."""
    return store.revoke(name_or_id)
