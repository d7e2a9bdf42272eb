"""API key material: generation, the stored digest, and the shape check done before any lookup.

A key reads ``lms_<prefix>_<secret>``: the prefix (8 characters) identifies the key in listings
and logs, the secret carries 256 random bits. Only the SHA-256 digest of the whole key is stored.

Why SHA-256 and not scrypt/argon2: slow hashes protect *guessable* secrets (passwords) from an
offline attacker with the hash table. A 256-bit random secret cannot be guessed, so a slow hash
would buy no security and would cost tens of milliseconds on every request the collector serves.
"""

from __future__ import annotations

import hashlib
import secrets
import string

KEY_PREFIX = "lms"
PREFIX_LENGTH = 8
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
# token_urlsafe(32) gives 43 characters; anything much longer than a real key is refused before
# hashing so a megabyte "key" costs nothing.
MAX_KEY_LENGTH = 128


def generate_key() -> tuple[str, str]:
    """A new ``(key, prefix)``; the key is shown to the operator once and never stored."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}", prefix


def hash_key(key: str) -> str:
    """The digest stored and looked up (hex SHA-256 of the whole key)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str | None:
    """The prefix of a well-formed key, or None when the text cannot be one of our keys."""
    if len(key) > MAX_KEY_LENGTH:
        return None
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != PREFIX_LENGTH or not parts[2]:
        return None
    return parts[1]
