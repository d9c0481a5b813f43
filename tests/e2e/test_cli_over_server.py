"""The read commands and ``llmpulse models`` through a real server print what they print from the
store: the same data, queried directly and through ``llmpulse serve``'s API (a real uvicorn
server on a free port), gives identical output, on SQLite and PostgreSQL. Errors (no key, a
refused key, a missing scope, no server, not a server) are one line saying how to fix them."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import pytest
from typer.testing import CliRunner

from llmpulse.cli import _extras
from llmpulse.cli.main import app
from llmpulse.schema import Span
from llmpulse.server.app import create_app
from llmpulse.server.auth import generate_key
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store
from tests.e2e.live_server import serving
from tests.unit.cli.test_read_commands import UNTIL, _spans
from tests.unit.store.conftest import T0

SOURCE = "<source>"


class Served:
    """A store with known data, a live server over it, and keys."""

    def __init__(self, url: str, store: Store, base: str, read: str, admin: str) -> None:
        self.url, self.store, self.base, self.read, self.admin = url, store, base, read, admin

    def local(self, *args: str) -> Any:
        return CliRunner().invoke(app, [*args, "--database-url", self.url])

    def remote(self, *args: str, key: str | None = None) -> Any:
        key = self.read if key is None else key
        return CliRunner().invoke(app, [*args, "--server-url", self.base, "--api-key", key])


def _many_traces() -> list[Span]:
    """600 one-span traces: more than one page of /api/v1/traces (500) and of /spans (1000)."""
    return [
        Span(f"bulk-{i:04d}", f"bulk-span-{i:04d}", "bulk", T0 + 100 + i * 0.5, T0 + 100.2 + i * 0.5,
             kind="llm", model="gpt-4o-mini", input_tokens=i, output_tokens=1, service="bulk",
             cost_usd=0.001 * (i % 7) if i % 5 else None)
        for i in range(600)
    ]  # fmt: skip


@pytest.fixture
def served(database_url: str) -> Iterator[Served]:
    with Store.open(database_url) as store:
        store.write(spans=_spans() + _many_traces())
        read, _ = generate_key(store, "cli reader", ["read"])
        admin, _ = generate_key(store, "cli admin", ["admin"])
        with serving(create_app(ServerSettings(), store=store)) as base:
            yield Served(database_url, store, base, read, admin)


def _same(served: Served, local: Any, remote: Any) -> None:
    """Both ran, and print the same once the source's name is set aside."""
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    for a, b in ((local.stdout, remote.stdout), (local.stderr, remote.stderr)):
        mine = a.replace(served.store.url, SOURCE)
        theirs = b.replace(served.base, SOURCE)
        assert mine == theirs


READS = [
    ["stats", "--until", UNTIL],
    ["stats", "--until", UNTIL, "--window", "2h", "--by", "prompt"],
    ["stats", "--until", UNTIL, "--by", "name", "--kind", "all"],
    ["stats", "--until", UNTIL, "--by", "service"],
    ["traces", "list", "--until", UNTIL],
    ["traces", "list", "--until", UNTIL, "--json", "--limit", "600"],
    ["traces", "list", "--until", UNTIL, "--status", "error", "--session", "s1"],
    ["traces", "list", "--until", UNTIL, "--model", "gpt-4o-mini", "--user", "u7", "--json"],
    ["traces", "show", "t1", "--content"],
    ["traces", "show", "t1", "--json"],
    ["export", "--until", UNTIL, "--page-size", "7"],
    ["export", "--until", UNTIL, "-f", "csv", "--service", "web"],
    ["export", "--until", UNTIL, "--trace", "t1", "--kind", "llm"],
]


class TestSameOutput:
    @pytest.mark.parametrize("args", READS, ids=lambda a: " ".join(a[:3]))
    def test_a_read_command_prints_the_same_through_the_server(
        self, served: Served, args: list[str]
    ) -> None:
        """Table, tree, JSON, CSV: byte for byte the same from the store and from the API."""
        _same(served, served.local(*args), served.remote(*args))

    def test_stats_json_differs_only_in_naming_its_source(self, served: Served) -> None:
        """--json names the database or the server; every number is the same."""
        args = ["stats", "--until", UNTIL, "--by", "service", "--json"]
        local = json.loads(served.local(*args).stdout)
        remote = json.loads(served.remote(*args).stdout)
        assert remote.pop("server") == served.base and "database" in local
        local.pop("database")
        assert local == remote and {r["service"] for r in remote["rows"]} == {
            "web",
            "batch",
            "bulk",
            None,
        }

    def test_export_pages_through_every_span(self, served: Served, tmp_path: Any) -> None:
        """An export longer than a page follows next_cursor to the end, in the store's order."""
        out = tmp_path / "spans.jsonl"
        result = served.remote("export", "--until", UNTIL, "--page-size", "250", "-o", str(out))
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        stored = list(served.store.iter_spans(T0 - 86400 + 3600, T0 + 3600))
        assert [r["span_id"] for r in rows] == [s.span_id for s in stored] and len(rows) == 606
        assert f"exported 606 span(s) from {served.base}" in result.stderr

    def test_the_progress_bar_counts_the_spans_through_the_server(
        self, served: Served, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On a terminal the bar's total is the server's count of matching spans."""
        monkeypatch.setenv("FORCE_COLOR", "1")  # rich draws the bar as on a terminal
        monkeypatch.setenv("NO_COLOR", "1")
        result = served.remote("export", "--until", UNTIL, "--service", "bulk", "-f", "csv")
        assert result.exit_code == 0, result.output
        assert "600/600" in result.stderr

    def test_models_list_add_update_agree(self, served: Served) -> None:
        """A model added through the server is listed the same by both; updates go through."""
        add = served.remote("models", "add", "my-ft", "--provider", "openai", "--input-price",
                            "3", "--output-price", "12", "--context-length", "128000",
                            key=served.admin)  # fmt: skip
        assert add.exit_code == 0, add.output
        assert "my-ft" in add.stdout and "12" in add.stdout
        [stored] = served.store.list_models()
        assert (stored.input_price_per_token, stored.context_length) == (3e-6, 128000)
        local_add = served.local("models", "add", "local-m", "--type", "embedding", "--inactive")
        assert local_add.exit_code == 0, local_add.output
        for args in (["models", "list"], ["models", "list", "--json"],
                     ["models", "list", "--active-only"]):  # fmt: skip
            _same(served, served.local(*args), served.remote(*args))
        assert [m["name"] for m in json.loads(served.remote("models", "list", "--json").stdout)] == [
            "local-m", "my-ft",
        ]  # fmt: skip
        update = served.remote("models", "update", "local-m", "--active", "--max-tokens", "8",
                               key=served.admin)  # fmt: skip
        assert update.exit_code == 0, update.output
        model = served.store.get_model("local-m")
        assert model is not None and (model.active, model.max_tokens, model.model_type) == (
            True, 8, "embedding",
        )  # fmt: skip

    def test_model_errors_read_the_same(self, served: Served) -> None:
        """A taken name and an unknown model: the same one-line error both ways."""
        served.local("models", "add", "dup")
        for args in (["models", "add", "dup"], ["models", "update", "ghost", "--active"]):
            local = served.local(*args)
            remote = served.remote(*args, key=served.admin)
            assert local.exit_code == remote.exit_code == 1
            assert local.output == remote.output and len(local.output.splitlines()) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestErrors:
    def _one_line(self, result: Any, *needles: str) -> None:
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
        for needle in needles:
            assert needle in result.output, result.output

    def test_no_key_says_how_to_get_one(self, served: Served) -> None:
        """401 without a key: pass --api-key or set LLMPULSE_API_KEY, and how to create one."""
        result = CliRunner().invoke(app, ["stats", "--server-url", served.base])
        self._one_line(result, "needs an API key", "--api-key", "LLMPULSE_API_KEY",
                       "llmpulse keys create")  # fmt: skip

    def test_a_wrong_or_revoked_key_is_refused(self, served: Served) -> None:
        """401 with a key: the key is unknown, malformed or revoked."""
        self._one_line(served.remote("traces", "list", key="lp_nope"), "refused the API key")
        key_id = served.read.split("_")[1]
        served.store.revoke_api_key(key_id, at=T0)
        self._one_line(served.remote("export"), "refused the API key", "revoked")

    def test_a_key_without_the_scope_names_the_scope(self, served: Served) -> None:
        """403: a read key cannot add a model; the message names the admin scope."""
        result = served.remote("models", "add", "x", "--input-price", "1")
        self._one_line(result, "may not do this", "'admin' scope", "--scope admin")
        assert served.store.list_models() == []

    def test_no_server_there(self) -> None:
        """Connection refused: is `llmpulse serve` running, check --server-url."""
        url = f"http://127.0.0.1:{_closed_port()}"
        for args in (["stats"], ["traces", "show", "t1"], ["export"], ["models", "list"]):
            result = CliRunner().invoke(app, [*args, "--server-url", url])
            self._one_line(result, f"cannot reach the llmpulse server at {url}",
                           "connection refused", "llmpulse serve")  # fmt: skip

    def test_https_to_a_plain_http_server_says_to_try_http(self, served: Served) -> None:
        """A TLS handshake answered in plain http: not a bare SSL error but the http:// URL."""
        https = "https://" + served.base.removeprefix("http://")
        for args in (["stats"], ["traces", "list"], ["models", "list"]):
            result = CliRunner().invoke(app, [*args, "--server-url", https])
            self._one_line(result, f"cannot reach the llmpulse server at {https}",
                           "may speak plain http", f"try {served.base} ")  # fmt: skip

    def test_an_address_that_is_not_the_server(self, served: Served) -> None:
        """404 on a path no route serves: the URL is not the server's base address."""
        wrong = CliRunner().invoke(
            app, ["stats", "--server-url", served.base + "/elsewhere", "--api-key", served.read]
        )
        self._one_line(wrong, "has no /api/v1/metrics/summary (404)", "address of `llmpulse serve`")

    def test_flags_that_do_not_go_together(self, served: Served) -> None:
        """Both sources, a key without a server, a URL that is not http: each named."""
        both = CliRunner().invoke(
            app, ["stats", "--database-url", served.url, "--server-url", served.base]
        )
        self._one_line(both, "--database-url or --server-url, not both")
        key = served.local("traces", "list", "--api-key", "lp_x")
        self._one_line(key, "--api-key goes with --server-url")
        bad = CliRunner().invoke(app, ["traces", "list", "--server-url", "127.0.0.1:8000"])
        self._one_line(bad, "is not a server address", "http://127.0.0.1:8000")

    def test_a_bad_kind_is_refused_both_ways(self, served: Served) -> None:
        """An unknown --kind is named with the choices, before any query."""
        for result in (
            served.local("export", "--kind", "lmm"),
            served.remote("export", "--kind", "lmm"),
        ):
            self._one_line(result, "--kind 'lmm' is not a span kind", "llm, chain")

    def test_without_httpx_the_command_names_the_client_extra(
        self, served: Served, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On an install without the client extra, --server-url says what to pip install."""
        real = metadata.distribution

        def distribution(name: str) -> Any:
            if name.lower() == "httpx":
                raise metadata.PackageNotFoundError(name)
            return real(name)

        monkeypatch.setattr(_extras.metadata, "distribution", distribution)
        result = served.remote("stats")
        assert result.exit_code == 1
        assert "pip install 'llmpulse[client]'" in result.output and "httpx" in result.output


class TestEnvironment:
    def test_server_and_key_from_the_environment(
        self, served: Served, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """LLMPULSE_SERVER_URL and LLMPULSE_API_KEY stand in for the flags; it beats
        LLMPULSE_DATABASE_URL, and a --database-url flag beats it."""
        monkeypatch.setenv("LLMPULSE_SERVER_URL", served.base)
        monkeypatch.setenv("LLMPULSE_API_KEY", served.read)
        monkeypatch.setenv("LLMPULSE_DATABASE_URL", "sqlite:///nowhere/missing.db")
        through = CliRunner().invoke(app, ["traces", "list", "--until", UNTIL, "--json"])
        assert through.exit_code == 0, through.output
        assert len(through.stdout.splitlines()) == 20  # the default --limit
        direct = served.local("traces", "list", "--until", UNTIL, "--json")
        assert direct.stdout == through.stdout
        monkeypatch.delenv("LLMPULSE_API_KEY")
        no_key = CliRunner().invoke(app, ["traces", "list"])
        assert no_key.exit_code == 1 and "needs an API key" in no_key.output


class TestEndToEnd:
    def test_an_application_sends_and_the_cli_reads_it_back(
        self, served: Served, tmp_path: Any
    ) -> None:
        """The README's path: an app's llmpulse.init(server_url=...) sends, `llmpulse stats
        --server-url` shows it, and the server's database holds the same rows."""
        import llmpulse

        ingest, _ = generate_key(served.store, "app", ["ingest"])
        llmpulse.init(server_url=served.base, api_key=ingest, instrument=(),
                      service_name="e2e-app", spool_dir=tmp_path / "spool")  # fmt: skip
        try:
            for i in range(7):
                llmpulse.record_llm_call("gpt-4o-mini", input_tokens=10 + i, output_tokens=2)
            assert llmpulse.flush(30)
        finally:
            llmpulse.shutdown()
        args = ["stats", "--by", "service", "--json", "--window", "1h"]
        remote = json.loads(served.remote(*args).stdout)
        [row] = [r for r in remote["rows"] if r["service"] == "e2e-app"]
        assert (row["calls"], row["input_tokens"]) == (7, sum(10 + i for i in range(7)))
        assert served.store.count_spans(0, 4e9, service="e2e-app") == 7
