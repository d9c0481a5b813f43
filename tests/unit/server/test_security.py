"""Security over every route: the key rules for each operation of the OpenAPI document, and SQL
injection payloads in every query parameter on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import text

from llmpulse.schema import MetricPoint, Run, Span
from llmpulse.server.auth import generate_key
from llmpulse.store import Store

from .conftest import bearer

# A key for each scope that does NOT cover the operation's scope.
_WRONG = {"read": ["ingest"], "ingest": ["read"], "admin": ["read", "ingest"]}

INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE spans; --",
    '" OR 1=1 --',
    "') UNION SELECT key_id, secret_hash FROM api_keys --",
    "%' OR name LIKE '%",
    "1 OR 1=1",
    "x'; DELETE FROM runs WHERE ''='",
    "$$; DROP TABLE rollups; $$",
]


def _operations(client: TestClient) -> list[tuple[str, str, str]]:
    doc = client.get("/openapi.json").json()
    return [
        (method.upper(), path, op["x-llmpulse-scope"])
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    ]


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return client.request(method, _url(path), **kwargs).status_code


class TestEveryRouteNeedsTheRightKey:
    def test_key_rules_hold_for_every_operation(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """Missing, wrong, malformed and revoked keys get 401; a key without the scope gets 403;
        the right key gets past auth; public routes need nothing."""
        c = make_client(sqlite_store)
        keys = {
            scope: generate_key(sqlite_store, scope, [scope])[0]
            for scope in ("read", "ingest", "admin")
        }
        both, _ = generate_key(sqlite_store, "read+ingest", ["read", "ingest"])
        revoked, record = generate_key(sqlite_store, "old", ["admin"])
        sqlite_store.revoke_api_key(record.key_id, at=time.time())
        key_id = keys["admin"].split("_")[1]
        forged = f"lp_{key_id}_not-the-secret"
        operations = _operations(c)
        assert len(operations) >= 20  # the walk is not vacuous
        for method, path, scope in operations:
            where = f"{method} {path}"
            if scope == "public":
                assert _call(c, method, path, {}) not in (401, 403), where
                continue
            for headers in ({}, bearer("wrong"), bearer(forged), bearer(revoked),
                            {"Authorization": f"Basic {keys['admin']}"}):  # fmt: skip
                assert _call(c, method, path, headers) == 401, f"{where} with {headers}"
            for wrong in _WRONG[scope]:
                lacking = both if scope == "admin" else keys[wrong]
                status = _call(c, method, path, bearer(lacking))
                assert status == 403, f"{where} with a {wrong} key"
            assert _call(c, method, path, bearer(keys[scope])) not in (401, 403), where
            assert _call(c, method, path, bearer(keys["admin"])) not in (401, 403), where

    def test_public_routes_are_only_health_and_metrics(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """Nothing but health (and Prometheus /metrics) is public."""
        public = {p for _, p, s in _operations(make_client(sqlite_store)) if s == "public"}
        assert public <= {"/api/v1/health", "/metrics"}


def _snapshot(store: Store) -> dict[str, Any]:
    with store._engine.connect() as conn:
        return {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in (
                "spans",
                "runs",
                "metric_points",
                "api_keys",
                "models",
                "rollups",
                "rollup_keys",
            )
        }


class TestSqlInjection:
    def test_payloads_in_every_query_parameter(
        self, store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """Every query parameter of every GET takes each payload as a plain value: enumerations,
        numbers, times and cursors answer 400/422; text filters match nothing; no table changes."""
        now = time.time()
        store.write(
            spans=[Span("t1", "s1", "chat", now - 60, now - 59, kind="llm", model="m")],
            runs=[Run("r1", "run", now - 60, model="m")],
            points=[MetricPoint("loss", 1.0, now - 60, run_id="r1")],
        )
        key, _ = generate_key(store, "admin", ["admin"])
        c = make_client(store)
        c.headers.update(bearer(key))
        before = _snapshot(store)
        doc = c.get("/openapi.json").json()
        tried = 0
        for path, ops in doc["paths"].items():
            op = ops.get("get")
            if op is None:
                continue
            for param in op.get("parameters", []):
                for payload in INJECTIONS:
                    if param["in"] == "path":
                        url = _url(path.replace("{" + param["name"] + "}", quote(payload, safe="")))
                        query = {}
                    else:
                        url, query = _url(path), {param["name"]: payload}
                    response = c.get(url, params=query)
                    tried += 1
                    where = f"{path} {param['name']}={payload!r}"
                    assert response.status_code in (200, 400, 404, 422), f"{where}: {response.text}"
                    if response.status_code == 200:
                        body = response.json()
                        items = body.get("items", body) if isinstance(body, dict) else body
                        if isinstance(items, list) and param["in"] == "query":
                            assert items == [] or param["name"] in ("limit",), where
        assert tried > 100
        assert _snapshot(store) == before
        # The store still answers normally afterwards.
        assert [s["span_id"] for s in c.get("/api/v1/spans").json()["items"]] == ["s1"]
