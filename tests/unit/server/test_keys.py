"""API keys: created once and shown once, stored hashed, revoked for good; the CLI and the API."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from llmpulse.cli.main import app as cli
from llmpulse.errors import ConfigError
from llmpulse.server.app import create_app
from llmpulse.server.auth import hash_key
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store

from .conftest import bearer


class TestKeysApi:
    def test_key_is_shown_once_and_stored_hashed(self, client: TestClient, store: Store) -> None:
        """The create response holds the key; listings and the store never do."""
        created = client.post("/api/v1/keys", json={"name": "ci", "scopes": ["ingest", "read"]})
        assert created.status_code == 201
        key = created.json()["key"]
        assert key.startswith("lp_") and created.json()["scopes"] == ["ingest", "read"]
        listing = client.get("/api/v1/keys", headers=bearer(key))
        assert listing.status_code == 403  # a read+ingest key may not manage keys
        record, stored = store.find_api_key(created.json()["key_id"]) or (None, "")
        assert record is not None and stored == hash_key(key) and key not in stored

    def test_revoked_key_is_refused(self, client: TestClient, admin_key: str) -> None:
        """After revocation the key gets 401; the listing shows it revoked."""
        made = client.post(
            "/api/v1/keys", json={"name": "tmp", "scopes": ["read"]}, headers=bearer(admin_key)
        ).json()
        assert client.get("/api/v1/health", headers=bearer(made["key"])).status_code == 200
        revoked = client.delete(f"/api/v1/keys/{made['key_id']}", headers=bearer(admin_key))
        assert revoked.status_code == 200 and revoked.json()["active"] is False
        listing = client.get("/api/v1/keys", headers=bearer(admin_key)).json()
        assert [k["active"] for k in listing if k["key_id"] == made["key_id"]] == [False]
        assert "key" not in listing[0]
        again = client.delete(f"/api/v1/keys/{made['key_id']}", headers=bearer(admin_key))
        assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
        missing = client.delete("/api/v1/keys/nope", headers=bearer(admin_key))
        assert missing.status_code == 404

    def test_revoking_every_key_keeps_the_server_closed(
        self, client: TestClient, store: Store, admin_key: str
    ) -> None:
        """Once a key existed, revoking all of them does not make the API open again."""
        key_id = admin_key.split("_")[1]
        client.delete(f"/api/v1/keys/{key_id}", headers=bearer(admin_key))
        assert client.get("/api/v1/keys").status_code == 401


class TestKeysCli:
    def test_create_list_revoke(self, sqlite_url: str) -> None:
        """The CLI creates a key that the API accepts, lists it, and revokes it."""
        runner = CliRunner()
        made = runner.invoke(
            cli, ["keys", "create", "--name", "ops", "--scope", "admin", "--json",
                  "--database-url", sqlite_url],
        )  # fmt: skip
        assert made.exit_code == 0, made.output
        key = json.loads(made.stdout)["key"]
        with Store.open(sqlite_url) as store, TestClient(create_app(store=store)) as c:
            assert c.get("/api/v1/keys", headers=bearer(key)).status_code == 200
            listed = runner.invoke(cli, ["keys", "list", "--json", "--database-url", sqlite_url])
            rows = json.loads(listed.stdout)
            assert [r["name"] for r in rows] == ["ops"] and key not in listed.stdout
            out = runner.invoke(
                cli, ["keys", "revoke", rows[0]["key_id"], "--database-url", sqlite_url]
            )
            assert out.exit_code == 0 and "revoked" in out.stdout
            assert c.get("/api/v1/keys", headers=bearer(key)).status_code == 401

    def test_bad_scope_and_unknown_key(self, sqlite_url: str) -> None:
        """A scope that does not exist and an unknown key id are one-line errors, exit 2."""
        runner = CliRunner()
        bad = runner.invoke(
            cli, ["keys", "create", "--name", "x", "--scope", "root", "--database-url", sqlite_url]
        )
        assert bad.exit_code == 2 and "scopes must be some of" in bad.output
        gone = runner.invoke(cli, ["keys", "revoke", "abc", "--database-url", sqlite_url])
        assert gone.exit_code == 2 and "no API key 'abc'" in gone.output


class TestPublicBind:
    def test_app_refuses_a_public_bind_without_keys(self, sqlite_store: Store) -> None:
        """On a non-loopback address with no key the app does not start, and says how to fix it."""
        app = create_app(ServerSettings(host="0.0.0.0"), store=sqlite_store)
        with pytest.raises(ConfigError, match="--insecure"), TestClient(app):
            pass

    def test_public_bind_requires_keys_even_before_one_exists(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """With --insecure on a public address requests pass; without it, a key is needed."""
        insecure = make_client(sqlite_store, host="0.0.0.0", insecure=True)
        assert insecure.get("/api/v1/keys").status_code == 200
        from llmpulse.server.auth import generate_key

        key, _ = generate_key(sqlite_store, "a", ["read"])
        secure = make_client(sqlite_store, host="0.0.0.0")
        assert secure.get("/api/v1/keys").status_code == 401
        assert secure.get("/api/v1/keys", headers=bearer(key)).status_code == 403

    def test_serve_cli_refuses_and_says_so(self, sqlite_url: str) -> None:
        """`llmpulse serve --host 0.0.0.0` with no key exits 2 with the fix in one line."""
        out = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--database-url", sqlite_url])
        assert out.exit_code == 2
        assert "refusing to serve 0.0.0.0 without API keys" in out.output
        assert "llmpulse keys create" in out.output and "--insecure" in out.output


class TestServeProcess:
    def test_serve_answers_over_http(self, tmp_path: object, sqlite_url: str) -> None:
        """`llmpulse serve` runs uvicorn: health answers over a real socket, SIGINT stops it."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmpulse.cli.main", "serve", "--port", "0",
             "--database-url", sqlite_url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            port = None
            deadline = time.monotonic() + 60
            lines = []
            while port is None and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
                port = int(found.group(1)) if found else None
            assert port, "".join(lines)
            body = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=10).json()
            assert body["status"] == "ok"
            docs = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10)
            assert docs.json()["info"]["title"] == "llmpulse"
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
