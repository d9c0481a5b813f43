"""API keys: how they look, how they are hashed and checked, and the scope dependency.

A key is ``lp_<key_id>_<secret>``: ``key_id`` (12 hex characters) is public and indexes the
row; the secret is 32 random bytes (urlsafe base64). The store keeps only the SHA-256 of the
whole key. A slow salted hash (bcrypt, argon2) protects low-entropy passwords against guessing;
a 256-bit random secret cannot be guessed, so a fast hash is as safe here and keeps each
request's check at one indexed lookup plus one hash. The comparison is constant-time.

Scopes: ``read`` (GET the API), ``ingest`` (send spans and points), ``admin`` (keys, models;
implies both others).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from llmpulse.store import ApiKeyRecord, Store

__all__ = ["SCOPES", "Principal", "generate_key", "hash_key", "parse_key", "verify_key"]

SCOPES = ("read", "ingest", "admin")
_PREFIX = "lp_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: a key's id and scopes, or ``anonymous`` while no key is needed."""

    key_id: str | None
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """Whether this principal may do what ``scope`` covers (admin covers everything)."""
        return scope in self.scopes or "admin" in self.scopes


ANONYMOUS = Principal(key_id=None, scopes=frozenset(SCOPES))


def hash_key(key: str) -> str:
    """The SHA-256 hex digest the store keeps for ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_key(key: str) -> str | None:
    """The key id of a well-formed key, or ``None``."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] + "_" != _PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1]


def generate_key(store: Store, name: str, scopes: Sequence[str]) -> tuple[str, ApiKeyRecord]:
    """Create a key: returns the key (shown once, never stored) and its stored record."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {list(scopes)}")
    key_id = secrets.token_hex(6)
    key = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = store.add_api_key(key_id, hash_key(key), name, sorted(set(scopes)), at=time.time())
    return key, record


def verify_key(store: Store, key: str) -> ApiKeyRecord | None:
    """The record of a valid, unrevoked ``key``, or ``None``."""
    key_id = parse_key(key)
    if key_id is None:
        return None
    found = store.find_api_key(key_id)
    if found is None:
        return None
    record, stored_hash = found
    if not hmac.compare_digest(stored_hash, hash_key(key)) or record.revoked_at is not None:
        return None
    return record
