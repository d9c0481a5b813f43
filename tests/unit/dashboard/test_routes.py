"""The dashboard over HTTP: pages and files behind the keys, the login cookie, the CSRF rule on
the API for cookie-authenticated changes, and the security headers of every response."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from llmpulse.dashboard import CSRF_HEADER, SESSION_COOKIE, csrf_token
from llmpulse.dashboard.assets import CHART_TRACES, trim_plotly
from llmpulse.dashboard.routes import PAGES
from llmpulse.server.auth import generate_key
from llmpulse.store import Store

STATIC = ["app.css", "common.js", "overview.js", "trace.js", "plotly.min.js"]
EVERY_PAGE = [*PAGES, "/models/gpt-4o", "/traces/abc"]


def login(client: TestClient, key: str) -> None:
    """Sign in through the login form, as a browser does."""
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    answer = client.post(
        "/login", data={"key": key, "csrf": token.group(1), "next": "/traces"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == "/traces"


@pytest.fixture
def keyed(sqlite_store: Store, make_client: Callable[..., TestClient]) -> tuple[TestClient, str]:
    """A client of a server whose keys are on, and an admin key."""
    key, _ = generate_key(sqlite_store, "admin", ["admin"])
    return make_client(sqlite_store), key


class TestOpenServer:
    def test_every_page_and_file_is_served_with_the_security_headers(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """Without keys every page and file answers 200 with a CSP that allows no inline script."""
        client = make_client(sqlite_store)
        for path in EVERY_PAGE + [f"/static/{n}" for n in STATIC]:
            answer = client.get(path)
            assert answer.status_code == 200, path
            csp = answer.headers["content-security-policy"]
            script_src = re.search(r"script-src ([^;]*)", csp)
            assert script_src is not None and script_src.group(1) == "'self'", csp
            assert "unsafe-eval" not in csp and answer.headers["x-frame-options"] == "DENY"

    def test_plotly_comes_from_the_plotly_package_and_is_cached(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """plotly.min.js is the installed package's file with only the bar trace registered
        besides the core (the rest of its bytes unchanged), gzipped for a client that takes it,
        with an ETag per encoding honoured by a 304."""
        import gzip
        from pathlib import Path

        import plotly

        client = make_client(sqlite_store)
        packaged = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
        plain = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        registered = re.findall(rb"\.register\(\[([^\]]*)\]\)", plain.content)
        assert len(registered) == 1 and registered[0].count(b"()") == len(CHART_TRACES) == 1
        full = re.findall(rb"\.register\(\[([^\]]*)\]\)", packaged)[0]
        assert full.count(b"()") > 40 and registered[0] + b"," in full + b","
        assert plain.content == packaged.replace(full, registered[0])
        packed = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip, br"})
        assert packed.headers["content-encoding"] == "gzip"
        assert int(packed.headers["content-length"]) < len(plain.content) / 2
        assert packed.content == plain.content  # httpx decodes it
        assert packed.headers["etag"] != plain.headers["etag"]
        for answer, coding in [(plain, "identity"), (packed, "gzip")]:
            assert answer.headers["vary"] == "Accept-Encoding"
            again = client.get(
                "/static/plotly.min.js",
                headers={"If-None-Match": answer.headers["etag"], "Accept-Encoding": coding},
            )
            assert again.status_code == 304 and again.content == b""
        assert gzip.decompress(gzip.compress(plain.content)) == plain.content

    def test_pages_link_files_by_version_and_those_urls_are_immutable(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """A page links each file as /static/name?v=<its ETag>; that URL may be kept for a
        year, the bare or a stale one must be checked again. Our scripts come before plotly."""
        client = make_client(sqlite_store)
        page = client.get("/").text
        links = re.findall(r'(?:src|href)="(/static/([\w.]+)\?v=(\w+))"', page)
        assert [name for _, name, _ in links] == [
            "app.css", "common.js", "overview.js", "plotly.min.js"]  # fmt: skip
        for url, name, version in links:
            answer = client.get(url)
            assert answer.headers["etag"].strip('"').startswith(version), name
            assert answer.headers["cache-control"] == "private, max-age=31536000, immutable"
            for other in [f"/static/{name}", f"/static/{name}?v=old"]:
                assert client.get(other).headers["cache-control"] == "private, no-cache"

    def test_trim_refuses_a_bundle_it_does_not_recognise(self) -> None:
        """Another build's text (no single registration list, or the wanted trace missing or
        found twice) is not trimmed: the full bundle is served instead."""
        entry = b'var a=W((e,t)=>{"use strict";t.exports=b()});var b=W((e,t)=>{t.exports={moduleType:"trace",name:"bar"}});'  # fmt: skip
        twice = entry + entry.replace(b"a=", b"c=").replace(b"b=", b"d=").replace(b"b()", b"d()")
        good = entry + b"var p=W((e,t)=>{Z.register([a(),x()])});"
        assert trim_plotly(good) is not None and b"register([a()])" in (trim_plotly(good) or b"")
        assert trim_plotly(good, ("pie",)) is None
        assert trim_plotly(entry + b"Z.register(q);") is None
        assert trim_plotly(twice + b"Z.register([a(),c()]);") is None
        assert trim_plotly(good + b"Y.register([a()])") is None

    def test_unknown_files_are_404(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """Only the dashboard's own files are served: no path walks out of static/."""
        client = make_client(sqlite_store)
        for name in ["nope.js", "..%2F__init__.py", "base.html", "%2e%2e%2fsession.py"]:
            assert client.get(f"/static/{name}").status_code == 404, name

    def test_a_path_argument_is_escaped_in_the_page(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """A model name in the URL reaches the page HTML-escaped, in the title and data-arg."""
        client = make_client(sqlite_store)
        html = client.get('/models/<script>alert(1)</script>"x').text
        assert "<script>alert(1)" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;x" in html


class TestKeysOn:
    def test_no_page_or_file_without_a_key(self, keyed: tuple[TestClient, str]) -> None:
        """With keys on, pages redirect to the login page and files answer 401."""
        client, _ = keyed
        for path in EVERY_PAGE:
            answer = client.get(path, follow_redirects=False)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/login?next=")
        for name in STATIC:
            answer = client.get(f"/static/{name}")
            assert answer.status_code == 401 and b"plotly" not in answer.content[:200], name

    def test_the_login_page_loads_nothing(self, keyed: tuple[TestClient, str]) -> None:
        """The login page works without any asset (it references no script and no file)."""
        client, _ = keyed
        html = client.get("/login").text
        assert "<script" not in html and "/static/" not in html

    def test_login_sets_a_strict_httponly_cookie(self, keyed: tuple[TestClient, str]) -> None:
        """A good key signs in: HttpOnly, SameSite=Strict cookie; then pages and files load."""
        client, key = keyed
        form = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        answer = client.post(
            "/login", data={"key": key, "csrf": token.group(1), "next": "/"}, follow_redirects=False
        )
        cookie = answer.headers["set-cookie"]
        assert f"{SESSION_COOKIE}=" in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        for path in EVERY_PAGE + [f"/static/{n}" for n in STATIC]:
            assert client.get(path).status_code == 200, path
        assert f'content="{csrf_token(key)}"' in client.get("/").text

    def test_a_wrong_key_or_a_forged_form_does_not_sign_in(
        self, keyed: tuple[TestClient, str]
    ) -> None:
        """An unknown key, or a form without the login page's token, gives no cookie."""
        client, key = keyed
        form = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        wrong = client.post("/login", data={"key": "lp_nope", "csrf": token.group(1)},
                            follow_redirects=False)  # fmt: skip
        assert "error=denied" in wrong.headers["location"]
        forged = client.post("/login", data={"key": key, "csrf": "guess"}, follow_redirects=False)
        assert "error=expired" in forged.headers["location"]
        assert SESSION_COOKIE not in client.cookies
        assert client.get("/", follow_redirects=False).status_code == 303

    def test_the_login_never_redirects_off_site(self, keyed: tuple[TestClient, str]) -> None:
        """``next`` must be a path on this server; anything else goes to the overview."""
        client, key = keyed
        for target in ["//evil.example/", "https://evil.example/", "/\\evil.example"]:
            form = client.get("/login", params={"next": target})
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token is not None
            answer = client.post("/login", data={"key": key, "csrf": token.group(1),
                                                 "next": target}, follow_redirects=False)  # fmt: skip
            assert answer.headers["location"] == "/", target

    def test_a_read_only_key_is_enough_to_sign_in_not_to_ingest(
        self, keyed: tuple[TestClient, str], sqlite_store: Store
    ) -> None:
        """The cookie carries the key's own scopes: a read key's session cannot ingest."""
        client, _ = keyed
        read_key, _ = generate_key(sqlite_store, "reader", ["read"])
        login(client, read_key)
        assert client.get("/api/v1/traces").status_code == 200
        body = {"spans": []}
        answer = client.post(
            "/api/v1/ingest", json=body, headers={CSRF_HEADER: csrf_token(read_key)}
        )
        assert answer.status_code == 403


class TestCsrf:
    def test_cookie_authenticated_changes_need_the_token(
        self, keyed: tuple[TestClient, str]
    ) -> None:
        """A cookie-authenticated POST/PUT/DELETE without the page's token is 403 and changes
        nothing; with it, the request goes through to the route."""
        client, key = keyed
        login(client, key)
        assert client.get("/api/v1/keys").status_code == 200  # reads need no token
        before = client.get("/api/v1/keys").json()
        refused = [
            client.post("/api/v1/keys", json={"name": "x", "scopes": ["read"]}),
            client.put("/api/v1/alerts/1", json={"action": "resolve", "who": "x"}),
            client.post(
                "/api/v1/keys",
                json={"name": "x", "scopes": ["read"]},
                headers={CSRF_HEADER: "0" * 64},
            ),
        ]
        for answer in refused:
            assert answer.status_code == 403 and answer.json()["type"].endswith(":csrf")
        assert client.get("/api/v1/keys").json() == before
        token = {CSRF_HEADER: csrf_token(key)}
        made = client.post("/api/v1/keys", json={"name": "x", "scopes": ["read"]}, headers=token)
        assert made.status_code == 201
        missing = client.put("/api/v1/alerts/1", json={"action": "resolve", "who": "x"},
                             headers=token)  # fmt: skip
        assert missing.status_code == 404  # past the CSRF and key checks: no such alert

    def test_logout_needs_the_token(self, keyed: tuple[TestClient, str]) -> None:
        """The sign-out form carries the session's token; a forged one is refused."""
        client, key = keyed
        login(client, key)
        assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
        assert client.get("/", follow_redirects=False).status_code == 200
        out = client.post("/logout", data={"csrf": csrf_token(key)}, follow_redirects=False)
        assert out.status_code == 303
        assert client.get("/", follow_redirects=False).status_code == 303


class TestOverviewSeries:
    def test_minute_buckets_only_for_short_windows(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """The overview's series is per minute over 1 h and hourly over 24 h and 7 d (so a long
        window reads hourly rollups), with every call counted either way."""
        import time

        client = make_client(sqlite_store)
        now = time.time()
        spans = [
            {"trace_id": f"t{i}", "span_id": f"s{i}", "name": "answer", "kind": "llm",
             "start_time": now - 60 - 1500 * i, "end_time": now - 59 - 1500 * i}
            for i in range(40)
        ]  # fmt: skip
        assert client.post("/api/v1/ingest", json={"spans": spans}).status_code == 200
        for window, step, calls in [(3600, 60, 3), (86400, 3600, 40), (7 * 86400, 3600, 40)]:
            body = client.get(
                "/api/v1/dashboard/overview", params={"start": now - window, "end": now}
            ).json()
            assert body["step_seconds"] == step, window
            assert sum(b["calls"] for b in body["series"]) == body["totals"]["calls"] == calls
            assert all(b["bucket_start"] % step == 0 for b in body["series"])


class TestScriptsWriteText:
    def test_no_script_parses_html(self) -> None:
        """The dashboard's scripts never hand strings to the HTML parser (innerHTML and kin) or
        to eval; every value goes through textContent (the CSP would block eval anyway)."""
        from importlib import resources

        folder = resources.files("llmpulse.dashboard") / "static"
        scripts = [p for p in folder.iterdir() if p.name.endswith(".js")]
        assert len(scripts) >= 8
        sinks = re.compile(
            r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
            r"setTimeout\(\s*[\"'`]|\.html\("
        )
        for script in scripts:
            found = sinks.findall(script.read_text(encoding="utf-8"))
            assert found == [], (script.name, found)


class TestRevocation:
    def test_revoking_the_key_ends_its_sessions(
        self, keyed: tuple[TestClient, str], sqlite_store: Store
    ) -> None:
        """A session lives only as long as its key: once revoked, pages, files and the API
        refuse the cookie at the next request."""
        client, admin = keyed
        reader, record = generate_key(sqlite_store, "reader", ["read"])
        login(client, reader)
        assert client.get("/", follow_redirects=False).status_code == 200
        revoked = client.delete(
            f"/api/v1/keys/{record.key_id}", headers={"Authorization": f"Bearer {admin}"}
        )
        assert revoked.status_code in (200, 204)
        assert client.get("/", follow_redirects=False).status_code == 303
        assert client.get("/static/common.js").status_code == 401
        assert client.get("/api/v1/traces").status_code == 401
