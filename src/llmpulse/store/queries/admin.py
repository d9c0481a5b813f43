"""API keys and the model catalog: the small tables the server administers.

Keys are kept as their public id plus the SHA-256 of the whole key; the key itself is never
stored (see llmpulse.server.auth for why a plain hash is enough for a random 256-bit secret).
Model prices are USD per token, as the API speaks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from llmpulse.store.models import ApiKeyRow, ModelRow

__all__ = [
    "MODEL_FIELDS",
    "ApiKeyRecord",
    "ModelRecord",
    "any_key",
    "find_key",
    "get_model",
    "insert_key",
    "insert_model",
    "list_keys",
    "list_models",
    "revoke_key",
    "update_model",
]

_KEYS: Table = ApiKeyRow.__table__  # type: ignore[assignment]
_MODELS: Table = ModelRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as listed: never its secret."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    revoked_at: float | None


# Settable fields of a model (everything but name and the timestamps).
MODEL_FIELDS = (
    "provider", "input_price_per_token", "output_price_per_token", "cache_read_price_per_token",
    "cache_write_price_per_token", "reasoning_price_per_token", "context_length", "max_tokens",
    "model_type", "active",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """One model of the catalog; prices in USD per token (``None``: not set)."""

    name: str
    provider: str | None
    input_price_per_token: float | None
    output_price_per_token: float | None
    cache_read_price_per_token: float | None
    cache_write_price_per_token: float | None
    reasoning_price_per_token: float | None
    context_length: int | None
    max_tokens: int | None
    model_type: str
    active: bool
    created_at: float
    updated_at: float


def _key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        name=row.name,
        scopes=tuple(row.scopes.split()),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def insert_key(
    conn: Connection,
    key_id: str,
    secret_hash: str,
    name: str,
    scopes: tuple[str, ...],
    created_at: float,
) -> ApiKeyRecord:
    """Store a new key (its hash only) and return it as listed."""
    values = {
        "key_id": key_id,
        "secret_hash": secret_hash,
        "name": name,
        "scopes": " ".join(sorted(scopes)),
        "created_at": created_at,
        "revoked_at": None,
    }
    conn.execute(insert(_KEYS).values(**values))
    return ApiKeyRecord(key_id, name, tuple(sorted(scopes)), created_at, None)


def list_keys(conn: Connection) -> list[ApiKeyRecord]:
    """Every key ever created (revoked ones too), oldest first."""
    query = select(_KEYS).order_by(_KEYS.c.created_at, _KEYS.c.key_id)
    return [_key(r) for r in conn.execute(query)]


def find_key(conn: Connection, key_id: str) -> tuple[ApiKeyRecord, str] | None:
    """The key with this public id and its stored hash, or ``None``."""
    row = conn.execute(select(_KEYS).where(_KEYS.c.key_id == key_id)).first()
    return None if row is None else (_key(row), row.secret_hash)


def revoke_key(conn: Connection, key_id: str, at: float) -> ApiKeyRecord | None:
    """Mark the key revoked (the first revocation time is kept); ``None`` if there is no such key."""
    conn.execute(
        update(_KEYS).where(_KEYS.c.key_id == key_id, _KEYS.c.revoked_at.is_(None)),
        {"revoked_at": at},
    )
    found = find_key(conn, key_id)
    return None if found is None else found[0]


def any_key(conn: Connection) -> bool:
    """Whether any key was ever created (revoking them all does not open the server again)."""
    return conn.execute(select(_KEYS.c.key_id).limit(1)).first() is not None


def _model(row: Any) -> ModelRecord:
    return ModelRecord(**{f: getattr(row, f) for f in ModelRecord.__slots__})


def list_models(conn: Connection, active_only: bool) -> list[ModelRecord]:
    """The catalog, by name; only active models when ``active_only``."""
    query = select(_MODELS).order_by(_MODELS.c.name)
    if active_only:
        query = query.where(_MODELS.c.active.is_(True))
    return [_model(r) for r in conn.execute(query)]


def get_model(conn: Connection, name: str) -> ModelRecord | None:
    """The model called ``name``, or ``None``."""
    row = conn.execute(select(_MODELS).where(_MODELS.c.name == name)).first()
    return None if row is None else _model(row)


def insert_model(conn: Connection, name: str, values: dict[str, Any], at: float) -> ModelRecord:
    """Add a model (the caller checked that the name is free)."""
    unknown = set(values) - set(MODEL_FIELDS)
    if unknown:
        raise ValueError(f"unknown model field(s): {sorted(unknown)}")
    row = {f: None for f in MODEL_FIELDS} | {"model_type": "chat", "active": True}
    row |= values
    conn.execute(insert(_MODELS).values(name=name, created_at=at, updated_at=at, **row))
    created = get_model(conn, name)
    assert created is not None
    return created


def update_model(
    conn: Connection, name: str, values: dict[str, Any], at: float
) -> ModelRecord | None:
    """Change the given fields of a model; ``None`` if there is no such model."""
    unknown = set(values) - set(MODEL_FIELDS)
    if unknown:
        raise ValueError(f"unknown model field(s): {sorted(unknown)}")
    conn.execute(update(_MODELS).where(_MODELS.c.name == name), {**values, "updated_at": at})
    return get_model(conn, name)
