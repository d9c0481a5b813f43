"""The app's frame: problem-details errors, the scope rule for routes, settings, health."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from llmpulse.errors import ConfigError, StoreError
from llmpulse.server import app as app_module
from llmpulse.server.app import create_app
from llmpulse.server.deps import READ
from llmpulse.server.problems import PROBLEM_JSON
from llmpulse.server.settings import ServerSettings, is_loopback
from llmpulse.store import Store


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return dict(body)


class TestProblemDetails:
    def test_unknown_route_is_a_404_problem(self, client: TestClient) -> None:
        """A path that does not exist answers a problem body naming it."""
        body = _problem(client.get("/api/v1/nothing-here"), 404)
        assert (
            "/api/v1/nothing-here" in body["detail"] and body["instance"] == "/api/v1/nothing-here"
        )

    def test_wrong_method_is_a_405_problem(self, client: TestClient) -> None:
        """A method a route does not take is 405, in the same shape."""
        body = _problem(client.put("/api/v1/health"), 405)
        assert "PUT" in body["detail"]

    def test_allow_lists_every_method_of_the_path(self, client: TestClient) -> None:
        """A 405 on a path served by several routes lists all of their methods in Allow."""
        response = client.put("/api/v1/keys")
        assert response.status_code == 405
        assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "POST"}

    def test_repeated_single_query_parameter_is_422(self, client: TestClient) -> None:
        """?model=a&model=b is refused naming the parameter; list parameters may repeat."""
        body = _problem(client.get("/api/v1/spans?model=a&model=b"), 422)
        assert body["detail"].startswith("'model':")
        typo = _problem(client.get("/api/v1/spans?modle=a"), 422)
        assert typo["detail"] == "'modle': not a parameter of this endpoint"
        ok = client.get("/api/v1/metrics/summary?group_by=model&group_by=kind")
        assert ok.status_code == 200

    def test_invalid_body_names_the_field(self, client: TestClient) -> None:
        """A body with a wrong field type is 422 naming the field, with the list of errors."""
        body = _problem(client.post("/api/v1/keys", json={"name": "x", "scopes": ["root"]}), 422)
        assert body["detail"].startswith("scopes[0]:")
        assert body["errors"][0]["field"] == "scopes[0]"

    def test_body_that_is_not_json_is_400(self, client: TestClient) -> None:
        """Malformed JSON is a 400 problem, not a 500 and not a bare 422."""
        response = client.post(
            "/api/v1/keys", content=b"{not json", headers={"content-type": "application/json"}
        )
        _problem(response, 400)

    def test_unexpected_error_is_a_500_without_traceback(self, sqlite_store: Store) -> None:
        """An exception in a route gives 'internal error' and no trace of the code."""
        app = create_app(store=sqlite_store)
        router = APIRouter()

        @router.get("/boom", dependencies=[Depends(READ)])
        def boom() -> None:
            raise RuntimeError("secret internals at /home/app/code.py line 3")

        app.include_router(router)
        with TestClient(app, raise_server_exceptions=False) as c:
            response = c.get("/boom")
        body = _problem(response, 500)
        assert body["detail"] == "internal error"
        assert "secret" not in response.text and "Traceback" not in response.text

    def test_a_store_error_is_a_503_naming_no_database(self, sqlite_store: Store) -> None:
        """A store failure that is not "unavailable" (a statement the database refused) is a
        503 to retry with the server's Retry-After, not a 500, and names no database."""
        app = create_app(
            ServerSettings(retry_after_seconds=7, alert_interval=0), store=sqlite_store
        )
        router = APIRouter()

        @router.get("/refused", dependencies=[Depends(READ)])
        def refused() -> None:
            raise StoreError("query failed on sqlite:////srv/data/llmpulse.db: disk I/O error")

        app.include_router(router)
        with TestClient(app, raise_server_exceptions=False) as c:
            response = c.get("/refused")
        body = _problem(response, 503)
        assert body["detail"] == "the database could not answer this request; retry later"
        assert response.headers["retry-after"] == "7"
        assert "sqlite" not in response.text and "/srv" not in response.text

    def test_an_unavailable_store_sends_the_configured_retry_after(self, tmp_path: Path) -> None:
        """Native routes send LLMPULSE_RETRY_AFTER_SECONDS with a 503, as OTLP does (they sent
        a fixed 5)."""
        path = tmp_path / "llmpulse.db"
        Store.open(f"sqlite:///{path}").close()
        with (
            Store.open(f"sqlite:///file:{path}?mode=ro&uri=true", migrate=False) as store,
            TestClient(
                create_app(ServerSettings(retry_after_seconds=3, alert_interval=0), store=store)
            ) as c,
        ):
            response = c.post("/api/v1/keys", json={"name": "k", "scopes": ["read"]})
        _problem(response, 503)
        assert response.headers["retry-after"] == "3"


class TestRouteScopes:
    def test_a_route_without_a_scope_stops_the_app(
        self, monkeypatch: pytest.MonkeyPatch, sqlite_store: Store
    ) -> None:
        """create_app refuses a router with a route that declares neither a scope nor PUBLIC."""
        import sys
        import types

        module = types.ModuleType("llmpulse.server.routers._open_test")
        module.router = APIRouter(prefix="/api/v1/open")  # type: ignore[attr-defined]
        module.router.add_api_route("", lambda: {}, methods=["GET"])  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setattr(app_module, "ROUTERS", [*app_module.ROUTERS, "_open_test"])
        with pytest.raises(ConfigError, match="/api/v1/open declares no scope"):
            create_app(store=sqlite_store)

    def test_every_operation_states_its_scope(self, client: TestClient) -> None:
        """The OpenAPI document carries x-llmpulse-scope on every operation."""
        doc = client.get("/openapi.json").json()
        scopes = {
            (path, method): op.get("x-llmpulse-scope")
            for path, ops in doc["paths"].items()
            for method, op in ops.items()
        }
        assert scopes and all(s in ("public", "read", "ingest", "admin") for s in scopes.values())
        assert scopes[("/api/v1/health", "get")] == "public"


class TestSettings:
    def test_flags_over_env_over_file(self, tmp_path: Any) -> None:
        """A flag beats the environment, which beats the file, which beats the default."""
        path = tmp_path / "llmpulse.yaml"
        path.write_text("server:\n  port: 7000\n  workers: 3\n  host: 0.0.0.0\n")
        env = {"LLMPULSE_PORT": "7100", "LLMPULSE_WORKERS": "2"}
        s = ServerSettings.resolve(env, config_file=path, port=7200)
        assert (s.port, s.workers, s.host) == (7200, 2, "0.0.0.0")
        assert ServerSettings.resolve({}, config_file=path).port == 7000
        assert ServerSettings.resolve({}).port == 8000

    def test_file_from_environment(self, tmp_path: Any) -> None:
        """LLMPULSE_SERVER_CONFIG names the file when --config is not given."""
        path = tmp_path / "s.yaml"
        path.write_text("max_body_bytes: 1024\n")
        s = ServerSettings.resolve({"LLMPULSE_SERVER_CONFIG": str(path)})
        assert s.max_body_bytes == 1024

    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({"LLMPULSE_PORT": "eighty"}, "LLMPULSE_PORT must be a whole number"),
            ({"LLMPULSE_PORT": "70000"}, "port must be between 0 and 65535"),
            ({"LLMPULSE_INSECURE": "maybe"}, "LLMPULSE_INSECURE must be true/false"),
            ({"LLMPULSE_WORKERS": "0"}, "workers must be >= 1"),
        ],
    )
    def test_bad_values_name_the_setting(self, env: dict[str, str], message: str) -> None:
        """A bad value is a ConfigError naming where it came from."""
        with pytest.raises(ConfigError, match=message):
            ServerSettings.resolve(env)

    def test_unknown_file_setting_is_named(self, tmp_path: Any) -> None:
        """A misspelt setting in the file is reported at its line, not ignored."""
        path = tmp_path / "s.yaml"
        path.write_text("prot: 80\n")
        with pytest.raises(ConfigError, match=r"s\.yaml line 1: prot: is not a server setting"):
            ServerSettings.resolve({}, config_file=path)

    def test_a_bad_file_value_names_file_line_and_field(self, tmp_path: Any) -> None:
        """The file is read like every llmpulse YAML file: file, line, dotted field, what is wrong."""
        path = tmp_path / "llmpulse.yaml"
        path.write_text("checks: {}\nserver:\n  host: 0.0.0.0\n  workers: many\n")
        with pytest.raises(ConfigError) as info:
            ServerSettings.resolve({}, config_file=path)
        assert (
            str(info.value) == f"{path} line 4: server.workers: must be a whole number, got 'many'"
        )

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("- 8000\n", r"line 1: \(top level\): must be a mapping"),
            ("server: [\n", "server config .* is not valid YAML"),
        ],
    )
    def test_a_broken_file_names_the_file(self, tmp_path: Any, text: str, message: str) -> None:
        """A file that is not a mapping, or not YAML, is named with its role."""
        path = tmp_path / "s.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            ServerSettings.resolve({}, config_file=path)
        with pytest.raises(ConfigError, match="cannot read server config"):
            ServerSettings.resolve({}, config_file=tmp_path / "missing.yaml")

    def test_settings_survive_the_trip_to_workers(self) -> None:
        """What serve hands to worker processes comes back equal."""
        s = ServerSettings(host="0.0.0.0", port=1234, insecure=True, workers=3)
        assert ServerSettings.from_json(s.to_json()) == s
        assert json.loads(s.to_json())["port"] == 1234

    @pytest.mark.parametrize(
        ("host", "loopback"),
        [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
         ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.com", False)],
    )  # fmt: skip
    def test_loopback(self, host: str, loopback: bool) -> None:
        """Only loopback addresses count as private binds."""
        assert is_loopback(host) is loopback
        assert ServerSettings(host=host).require_auth is not loopback
        assert ServerSettings(host=host, insecure=True).require_auth is False


class TestHealth:
    def test_health_reports_each_component(self, client: TestClient, store: Store) -> None:
        """Health answers without a key: store reachable with its latency and revision, the queue."""
        body = client.get("/api/v1/health").json()
        assert body["status"] == "ok"
        assert body["store"]["reachable"] is True and body["store"]["latency_ms"] >= 0
        assert body["store"]["revision"] == body["store"]["head_revision"]
        assert body["store"]["backend"] == store.backend
        assert body["ingest"]["in_flight"] == 0 and body["ingest"]["queue_capacity"] == 16

    def test_health_is_503_when_the_schema_is_behind(self, sqlite_store: Store) -> None:
        """A store whose schema is not at head makes health 503, for load balancers to see."""
        from sqlalchemy import text

        with TestClient(create_app(store=sqlite_store)) as c:
            with sqlite_store._engine.begin() as conn:
                conn.execute(text("UPDATE llmpulse_alembic_version SET version_num = '0001'"))
            response = c.get("/api/v1/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "degraded" and body["store"]["up_to_date"] is False


UPGRADE_TABLES = "the database has no llmpulse tables: run `llmpulse db upgrade` to create them"


class TestSchemaNotCurrent:
    def test_tables_gone_is_503_naming_the_upgrade_and_shutdown_is_clean(
        self, store: Store, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The tables vanish under a running server (its file replaced by an empty one): reads,
        native ingest and OTLP answer 503 saying what to run, without the database URL; the
        shutdown's lease release only logs a warning."""
        from tests.unit.server.otlp_payloads import json_body, request, span
        from tests.unit.server.test_ingest import batch
        from tests.unit.store.conftest import drop_every_table

        with TestClient(create_app(ServerSettings(), store=store)) as c:
            drop_every_table(store)
            answers = [
                c.get("/api/v1/traces"),
                c.get("/api/v1/metrics/summary"),
                c.post("/api/v1/ingest", json=batch(3)),
            ]
            for response in answers:
                body = _problem(response, 503)
                assert body["detail"] == UPGRADE_TABLES and body["type"].endswith("unavailable")
                assert response.headers["retry-after"]
                assert store.url not in response.text
            otlp = c.post("/v1/traces", content=json_body(request(span("chat"))),
                          headers={"Content-Type": "application/json"})  # fmt: skip
            assert otlp.status_code == 503 and UPGRADE_TABLES in otlp.text
            assert store.url not in otlp.text
        released = [r for r in caplog.records if "evaluator lease" in r.getMessage()]
        assert [r.levelname for r in released] == ["WARNING"]

    def test_schema_behind_is_503_naming_both_revisions(self, database_url: str) -> None:
        """A partly upgraded database (0006, before the trace totals): listing traces is a 503
        saying which revision the database is at, which one is needed, and what to run."""
        from llmpulse.store._migrate import head_revision
        from tests.unit.store.conftest import open_at_revision

        store = open_at_revision(database_url, "0006")
        with store, TestClient(create_app(ServerSettings(alert_interval=0), store=store)) as c:
            response = c.get("/api/v1/traces")
        body = _problem(response, 503)
        assert body["detail"] == (
            f"the database has schema revision 0006, behind the {head_revision()} this "
            "llmpulse needs: run `llmpulse db upgrade` to bring it up to date"
        )
