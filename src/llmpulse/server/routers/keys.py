"""``/api/v1/keys``: create, list and revoke API keys (scope ``admin``).

The key is in the create response only; the store keeps its hash.
"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from llmpulse.server.auth import generate_key
from llmpulse.server.deps import ADMIN, get_state
from llmpulse.server.problems import Problem
from llmpulse.store import ApiKeyRecord, Store

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], dependencies=[Depends(ADMIN)])

Scope = Literal["read", "ingest", "admin"]


class KeyIn(BaseModel):
    """A key to create: a name to recognise it by, and its scopes."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1, max_length=3)


class KeyOut(BaseModel):
    """A key as listed (never its secret)."""

    key_id: str
    name: str
    scopes: list[str]
    created_at: float
    revoked_at: float | None
    active: bool


class CreatedKey(KeyOut):
    """A new key: ``key`` is shown this once and cannot be retrieved again."""

    key: str


def _out(record: ApiKeyRecord) -> KeyOut:
    return KeyOut(
        key_id=record.key_id,
        name=record.name,
        scopes=list(record.scopes),
        created_at=record.created_at,
        revoked_at=record.revoked_at,
        active=record.revoked_at is None,
    )


def _store(request: Request) -> Store:
    return get_state(request).store


@router.post("", response_model=CreatedKey, status_code=201)
def create_key(body: KeyIn, request: Request) -> CreatedKey:
    """Create a key; the response is the only time its secret is shown."""
    state = get_state(request)
    key, record = generate_key(state.store, body.name, body.scopes)
    state.keys_exist = True
    return CreatedKey(**_out(record).model_dump(), key=key)


@router.get("", response_model=list[KeyOut])
def list_keys(request: Request) -> list[KeyOut]:
    """Every key, revoked ones included, oldest first."""
    return [_out(r) for r in _store(request).list_api_keys()]


@router.delete("/{key_id}", response_model=KeyOut)
def revoke_key(request: Request, key_id: str = Path(max_length=64)) -> KeyOut:
    """Revoke a key: from now on it gets 401. Revoking twice keeps the first time."""
    record = _store(request).revoke_api_key(key_id, at=time.time())
    if record is None:
        raise Problem(404, f"no API key {key_id!r}", kind="not-found")
    return _out(record)
