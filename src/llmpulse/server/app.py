"""``create_app(settings)``: the one place the server is put together.

Routers live one module per resource under ``llmpulse.server.routers``; each module exposes
``router`` (an ``APIRouter``). To add one, write the module and add its name to ``ROUTERS``
below: ``create_app`` includes them in order. Every route must declare who may call it (a
scope dependency from ``llmpulse.server.deps``, or ``**PUBLIC``); ``create_app`` raises at
startup for a route that does not, and the OpenAPI document states each operation's scope as
``x-llmpulse-scope``. See /work/coord/SERVER.md and docs/server.md for the conventions.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from llmpulse.dashboard.routes import create_dashboard
from llmpulse.errors import ConfigError
from llmpulse.server import problems
from llmpulse.server._query import SingleValuedQuery
from llmpulse.server.catalog import PriceCatalog
from llmpulse.server.deps import DashboardKeys, IngestGate, RequireScope, ServerState
from llmpulse.server.metrics import HttpMetricsMiddleware
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store

__all__ = ["ROUTERS", "SETTINGS_JSON_ENV", "app_from_env", "create_app", "route_scope"]

log = logging.getLogger(__name__)

# Router modules under llmpulse.server.routers, included in this order.
ROUTERS = [
    "health",
    "keys",
    "ingest",
    "otlp",
    "prometheus",
    "traces",
    "runs",
    "workflows",
    "metrics",
    "models",
    "dashboard",
    "regression",
    "alerts",
]

_API_DESCRIPTION = """\
The llmpulse server: ingest spans and metric points, query traces, runs, metrics and models,
and run regression detection. Errors are RFC 9457 problem details (`application/problem+json`).
Lists are cursor-paged (`limit`, `cursor` → `next_cursor`). Authenticate with
`Authorization: Bearer <API key>` (see `llmpulse keys create`).
"""


def route_scope(route: APIRoute) -> str | None:
    """The scope a route requires (``"public"`` when marked so), or ``None`` if undeclared."""
    stack: list[Dependant] = [route.dependant]
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, RequireScope):
            return dep.call.scope
        stack.extend(dep.dependencies)
    extra = route.openapi_extra or {}
    scope = extra.get("x-llmpulse-scope")
    return scope if isinstance(scope, str) else None


def _api_routes(routers: list[APIRouter]) -> list[APIRoute]:
    # The routers' own routes: FastAPI may wrap included routers, but their routes carry the
    # router's prefix and dependencies (routers set their prefix themselves, see SERVER.md).
    return [r for router in routers for r in router.routes if isinstance(r, APIRoute)]


def _check_scopes(routes: list[APIRoute]) -> None:
    for route in routes:
        if route_scope(route) is None:
            raise ConfigError(
                f"route {sorted(route.methods or ())} {route.path} declares no scope: add "
                "dependencies=[Depends(READ|INGEST|ADMIN)] or **PUBLIC (llmpulse.server.deps)"
            )


def _openapi_with_scopes(
    app: FastAPI, routes: list[APIRoute], models: list[type[BaseModel]]
) -> Any:
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = base()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(doc.pop("$defs", {}))
            components[model.__name__] = doc
        for route in routes:
            if route.include_in_schema:
                for method in route.methods or ():
                    operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                    if operation is not None:
                        operation["x-llmpulse-scope"] = route_scope(route)
        app.openapi_schema = schema
        return schema

    return openapi


def create_app(settings: ServerSettings | None = None, *, store: Store | None = None) -> FastAPI:
    """The server app. It opens (and migrates) the store at startup unless ``store`` is given,
    which the caller then owns and closes."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = store is None
        opened = Store.open(settings.database_url) if own else store
        assert opened is not None
        try:
            state = ServerState(
                settings=settings,
                store=opened,
                gate=IngestGate(
                    settings.ingest_concurrency, settings.ingest_queue, settings.retry_after_seconds
                ),
                prices=PriceCatalog(opened),
            )
            state.alerts, runner = _alerting(settings, opened)
            state.keys_exist = opened.any_api_key()
            if settings.require_auth and not state.keys_exist:
                raise ConfigError(
                    f"refusing to serve {settings.host} without API keys: anyone who can reach "
                    "it could read and write your data. Create a key (`llmpulse keys create "
                    "--scope admin`) or pass --insecure to serve without authentication"
                )
            app.state.llmpulse = state
            if runner is not None:
                runner.start()
            try:
                yield
            finally:
                if runner is not None:
                    runner.stop()
        finally:
            if own:
                opened.close()

    app = FastAPI(
        title="llmpulse",
        version=_version(),
        description=_API_DESCRIPTION,
        lifespan=lifespan,
        responses=problems.PROBLEM_RESPONSES,
    )
    problems.install(app)
    app.add_middleware(HttpMetricsMiddleware)
    routers: list[APIRouter] = []
    models: list[type[BaseModel]] = []
    for name in ROUTERS:
        module = importlib.import_module(f"llmpulse.server.routers.{name}")
        routers.append(module.router)
        # Bodies a route reads by hand (gzip, protobuf) are documented from these models.
        models.extend(getattr(module, "OPENAPI_MODELS", ()))
        app.include_router(module.router)
    routes = _api_routes(routers)
    _check_scopes(routes)
    # The web dashboard at / (pages and files behind the same keys; not in the OpenAPI doc).
    app.include_router(create_dashboard(DashboardKeys()))
    app.state.api_routes = routes  # the 405 handler lists every method of a path in Allow
    app.add_middleware(SingleValuedQuery, routes=routes)
    app.openapi = _openapi_with_scopes(app, routes, models)  # type: ignore[method-assign]
    return app


def _alerting(settings: ServerSettings, store: Store) -> tuple[Any, Any]:
    """The alert engine (rules file checked now: a bad one stops the start) and, unless
    ``alert_interval`` is 0, the runner that evaluates and delivers in this process (one
    evaluator per database at a time, elected by a lease)."""
    from llmpulse.alerting import AlertEngine, AlertRunner, DeliveryWorker, RuleSet, load_rules
    from llmpulse.alerting.channels import NetworkPolicy

    policy = NetworkPolicy(settings.alert_network_allow)
    rule_set = (
        load_rules(settings.alert_rules, policy=policy)
        if settings.alert_rules
        else RuleSet(network=policy)
    )
    engine = AlertEngine(store, rule_set, link_base=settings.public_url or None)
    if settings.alert_interval <= 0:
        return engine, None
    worker = DeliveryWorker(store, engine.channels, owner=engine.owner)
    return engine, AlertRunner(engine, worker, interval_seconds=float(settings.alert_interval))


def _version() -> str:
    # Not llmpulse.__version__: importing the package root loads the SDK, which the server
    # does not use.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llmpulse")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


# Environment variable through which ``llmpulse serve --workers N`` hands each worker process
# the settings it resolved (uvicorn starts workers from an import string, not an object).
SETTINGS_JSON_ENV = "LLMPULSE_SERVER_SETTINGS_JSON"


def app_from_env() -> FastAPI:
    """App factory for uvicorn worker processes: settings from ``SETTINGS_JSON_ENV``."""
    import os

    text = os.environ.get(SETTINGS_JSON_ENV)
    settings = ServerSettings.from_json(text) if text else ServerSettings.resolve()
    return create_app(settings)
