"""What routers depend on: the store, the server's state, the caller's key, the ingest gate.

A router module declares its routes with one of the scope dependencies, so the rule "every
endpoint needs a key" cannot be forgotten (``create_app`` refuses to start with a route that
has neither a scope nor the ``PUBLIC`` mark)::

    from fastapi import APIRouter, Depends
    from llmpulse.server.deps import READ, get_store

    router = APIRouter(prefix="/api/v1", tags=["things"])

    @router.get("/things", dependencies=[Depends(READ)])
    def list_things(store: Store = Depends(get_store)) -> ...: ...

The key rules (``RequireScope``): health and ``/metrics`` never need a key; every other route
needs one once any key was ever created in the store (revoking them all does not open the
server again), and always when the server binds a non-loopback address without
``--insecure``. A missing, unknown, malformed or revoked key is 401; a valid key without the
route's scope is 403.

The dashboard's session cookie (``llmpulse.dashboard.session``) stands in for the header when
the header is absent; a state-changing request authenticated by the cookie must also carry the
session's CSRF token, or it is 403.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from llmpulse.dashboard.session import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, csrf_valid
from llmpulse.server.auth import ANONYMOUS, Principal, verify_key
from llmpulse.server.catalog import PriceCatalog
from llmpulse.server.problems import Problem
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store

if TYPE_CHECKING:
    from llmpulse.alerting import AlertEngine

__all__ = [
    "ADMIN",
    "INGEST",
    "PUBLIC",
    "READ",
    "DashboardKeys",
    "IngestGate",
    "RequireScope",
    "ServerState",
    "get_gate",
    "get_state",
    "get_store",
    "key_allows",
]

# Mark of a route that needs no key (health, /metrics): ``@router.get(..., **PUBLIC)``.
PUBLIC: dict[str, Any] = {"openapi_extra": {"x-llmpulse-scope": "public"}}
_bearer = HTTPBearer(auto_error=False, description="An llmpulse API key: `Bearer lp_...`")


class IngestGate:
    """Bounds the ingest batches a process works on: ``concurrency`` at once, ``queue`` waiting.

    Past that the request gets 503 with Retry-After at once, before its body is read, so an
    overload turns into client retries (which the SDK honours) instead of a growing heap.
    """

    def __init__(self, concurrency: int, queue: int, retry_after: int) -> None:
        self.concurrency = concurrency
        self.queue = queue
        self.retry_after = retry_after
        self._slots = asyncio.Semaphore(concurrency)
        self.in_flight = 0
        self.waiting = 0
        self.accepted_batches = 0
        self.rejected_batches = 0
        self.last_commit_at: float | None = None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one ingest slot for the block, or raise a 503 problem when the queue is full."""
        if self.waiting >= self.queue and self._slots.locked():
            self.rejected_batches += 1
            raise Problem(
                503, f"ingest is at capacity ({self.concurrency} batches in progress, "
                f"{self.waiting} waiting); retry after {self.retry_after} s",
                kind="overloaded", headers={"Retry-After": str(self.retry_after)},
            )  # fmt: skip
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.in_flight += 1
        try:
            yield
            self.accepted_batches += 1
            self.last_commit_at = time.time()
        finally:
            self.in_flight -= 1
            self._slots.release()

    def state(self) -> dict[str, Any]:
        """Queue depth and counters, for health."""
        lag = None if self.last_commit_at is None else max(0.0, time.time() - self.last_commit_at)
        return {
            "in_flight": self.in_flight,
            "waiting": self.waiting,
            "concurrency": self.concurrency,
            "queue_capacity": self.queue,
            "accepted_batches": self.accepted_batches,
            "rejected_batches": self.rejected_batches,
            "seconds_since_last_commit": lag,
        }


@dataclass
class ServerState:
    """Everything a request may need, built once per process by ``create_app``."""

    settings: ServerSettings
    store: Store
    gate: IngestGate
    prices: PriceCatalog
    started_at: float = field(default_factory=time.time)
    alerts: AlertEngine | None = None  # the alert engine (evaluated here when a runner runs)
    keys_exist: bool = False  # once True, stays True (keys are revoked, never deleted)

    def auth_required(self) -> bool:
        """Whether requests need a key right now."""
        if self.settings.require_auth or self.keys_exist:
            return True
        self.keys_exist = self.store.any_api_key()
        return self.keys_exist


def get_state(request: Request) -> ServerState:
    """The process's ``ServerState``."""
    state: ServerState = request.app.state.llmpulse
    return state


def get_store(request: Request) -> Store:
    """The store the server reads and writes."""
    return get_state(request).store


def get_gate(request: Request) -> IngestGate:
    """The ingest gate (native and OTLP ingest share it)."""
    return get_state(request).gate


class RequireScope:
    """Dependency: the request carries a valid key with ``scope`` (while keys are required)."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    def __call__(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Principal:
        state = get_state(request)
        if not state.auth_required():
            return ANONYMOUS
        challenge = {"WWW-Authenticate": 'Bearer realm="llmpulse"'}
        key = _cookie_key(request) if credentials is None else None
        if key is None and (credentials is None or credentials.scheme.lower() != "bearer"):
            raise Problem(401, "an API key is required: send `Authorization: Bearer <key>`",
                          kind="unauthorized", headers=challenge)  # fmt: skip
        if key is None:
            assert credentials is not None
            key = credentials.credentials
        record = verify_key(state.store, key)
        if record is None:
            raise Problem(401, "the API key is unknown, malformed or revoked",
                          kind="unauthorized", headers=challenge)  # fmt: skip
        principal = Principal(key_id=record.key_id, scopes=frozenset(record.scopes))
        if not principal.allows(self.scope):
            raise Problem(
                403, f"this key has scope(s) {', '.join(record.scopes)}; "
                f"this endpoint needs {self.scope!r}",
                kind="forbidden", required_scope=self.scope,
            )  # fmt: skip
        request.state.principal = principal
        return principal


def _cookie_key(request: Request) -> str | None:
    """The key of the dashboard session cookie, if any; a state-changing request must carry
    the session's CSRF token too (403 otherwise, before the key is even looked up)."""
    key = request.cookies.get(SESSION_COOKIE)
    if not key:
        return None
    if request.method not in SAFE_METHODS and not csrf_valid(key, request.headers.get(CSRF_HEADER)):
        raise Problem(
            403, f"a request authenticated by the dashboard cookie must send the page's "
            f"{CSRF_HEADER} header", kind="csrf",
        )  # fmt: skip
    return key


def key_allows(request: Request, key: str, scope: str) -> bool:
    """Whether ``key`` is a valid, unrevoked key with ``scope`` (the dashboard's login check)."""
    record = verify_key(get_state(request).store, key)
    return record is not None and Principal(record.key_id, frozenset(record.scopes)).allows(scope)


class DashboardKeys:
    """The dashboard's view of the keys (``llmpulse.dashboard.routes.DashboardAuth``)."""

    def required(self, request: Request) -> bool:
        """Whether requests need a key right now."""
        return get_state(request).auth_required()

    def allows_read(self, request: Request, key: str) -> bool:
        """Whether ``key`` is a valid, unrevoked key with the read scope."""
        return key_allows(request, key, "read")


READ = RequireScope("read")
INGEST = RequireScope("ingest")
ADMIN = RequireScope("admin")
