"""``/api/v1/models``: the model catalog — provider, per-token prices, limits, type, active.

Prices are USD **per token** (``0.0000025`` for $2.50 per million). A model's input and output
prices, once both are set, feed the price table the server prices ingested spans with (spans
that arrive without a cost); other fields describe the model for people and dashboards.
Reading needs ``read``; creating and updating need ``admin``.
"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from llmpulse.server.deps import ADMIN, READ, get_state, get_store
from llmpulse.server.problems import Problem
from llmpulse.store import ModelRecord, Store

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/models", tags=["models"])

ModelType = Literal["chat", "completion", "embedding", "image", "audio", "rerank", "other"]
Price = Field(default=None, ge=0, le=1.0, description="USD per token")


class ModelFields(BaseModel):
    """The settable fields of a model (all optional in an update)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    provider: str | None = Field(default=None, max_length=200)
    input_price_per_token: float | None = Price
    output_price_per_token: float | None = Price
    cache_read_price_per_token: float | None = Price
    cache_write_price_per_token: float | None = Price
    reasoning_price_per_token: float | None = Price
    context_length: int | None = Field(default=None, ge=1, le=2**40)
    max_tokens: int | None = Field(default=None, ge=1, le=2**40)
    model_type: ModelType | None = None
    active: bool | None = None


class ModelIn(ModelFields):
    """A model to add to the catalog."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")


class ModelOut(BaseModel):
    """A model of the catalog."""

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

    @classmethod
    def of(cls, record: ModelRecord) -> ModelOut:
        """The body of a catalog entry."""
        return cls(**{f: getattr(record, f) for f in ModelRecord.__slots__})


@router.get("", response_model=list[ModelOut], dependencies=[Depends(READ)])
def list_models(
    active_only: bool = Query(False, description="Only models marked active."),
    store: Store = Depends(get_store),
) -> list[ModelOut]:
    """The catalog by name."""
    return [ModelOut.of(m) for m in store.list_models(active_only=active_only)]


@router.post("", response_model=ModelOut, status_code=201, dependencies=[Depends(ADMIN)])
def create_model(body: ModelIn, request: Request) -> ModelOut:
    """Add a model; 409 when the name is taken."""
    state = get_state(request)
    values = body.model_dump(exclude={"name"}, exclude_none=True)
    created = state.store.add_model(body.name, values, at=time.time())
    if created is None:
        raise Problem(409, f"model {body.name!r} exists; PATCH /api/v1/models/{body.name} "
                      "changes it", kind="conflict")  # fmt: skip
    state.prices.invalidate()
    return ModelOut.of(created)


@router.get("/{name:path}", response_model=ModelOut, dependencies=[Depends(READ)])
def get_model(
    name: str = Path(max_length=200),
    store: Store = Depends(get_store),
) -> ModelOut:
    """One model."""
    model = store.get_model(name)
    if model is None:
        raise Problem(404, f"no model {name!r} in the catalog", kind="not-found")
    return ModelOut.of(model)


@router.patch("/{name:path}", response_model=ModelOut, dependencies=[Depends(ADMIN)])
def update_model(body: ModelFields, request: Request, name: str = Path(max_length=200)) -> ModelOut:
    """Change the given fields (``null`` clears a price or limit; type and active cannot be null)."""
    state = get_state(request)
    values = body.model_dump(exclude_unset=True)
    for required in ("model_type", "active"):
        if required in values and values[required] is None:
            raise Problem(422, f"{required} cannot be null", kind="validation")
    updated = state.store.update_model(name, values, at=time.time())
    if updated is None:
        raise Problem(404, f"no model {name!r} in the catalog", kind="not-found")
    state.prices.invalidate()
    return ModelOut.of(updated)
