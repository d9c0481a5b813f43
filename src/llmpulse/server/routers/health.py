"""``GET /api/v1/health``: is each part of the server working? No key needed.

200 when the store answers and its schema is current, 503 (same body) otherwise, so a load
balancer can use it as is.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from llmpulse.server.deps import PUBLIC, ServerState, get_state

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["health"])


class StoreHealth(BaseModel):
    """The database: reachable, how fast one query comes back, and its schema revision."""

    backend: str
    reachable: bool
    latency_ms: float | None = None
    revision: str | None = None
    head_revision: str
    up_to_date: bool
    error: str | None = None


class IngestHealth(BaseModel):
    """The ingest gate of this process: batches in progress, waiting, and what was refused."""

    in_flight: int
    waiting: int
    concurrency: int
    queue_capacity: int
    accepted_batches: int
    rejected_batches: int
    seconds_since_last_commit: float | None


class Health(BaseModel):
    """Overall status (``ok`` or ``degraded``) and each component's."""

    status: str
    version: str
    uptime_seconds: float
    auth_required: bool
    store: StoreHealth
    ingest: IngestHealth


@router.get("/health", response_model=Health, responses={503: {"model": Health}}, **PUBLIC)
async def health(request: Request, state: ServerState = Depends(get_state)) -> Any:
    """Status of the store (reachability, latency, schema version) and the ingest queue."""
    store = await run_in_threadpool(state.store.ping)
    ok = bool(store["reachable"] and store["up_to_date"])
    auth = await run_in_threadpool(state.auth_required)
    body = Health(
        status="ok" if ok else "degraded",
        version=request.app.version,
        uptime_seconds=time.time() - state.started_at,
        auth_required=auth,
        store=StoreHealth(**store),
        ingest=IngestHealth(**state.gate.state()),
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
