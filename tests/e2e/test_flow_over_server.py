"""``llmpulse flow`` through a real server prints what it prints from the store: Mermaid, SVG
and JSON of the same view, byte for byte, on SQLite and PostgreSQL; an unknown workflow is the
same one-line error either way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from llmpulse.cli.main import app
from llmpulse.server.app import create_app
from llmpulse.server.auth import generate_key
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store
from tests.e2e.live_server import serving
from tests.unit.store.conftest import T0
from tests.unit.store.test_store_workflows import graph_run, plain_run

UNTIL = str(T0 + 3600)


@pytest.fixture
def both(database_url: str) -> Iterator[tuple[list[str], list[str]]]:
    """The options that read the store directly, and those that ask a live server over it."""
    with Store.open(database_url) as store:
        spans = plain_run("ta", T0 + 100, "refund", True, 0.02)
        spans += plain_run("tb", T0 + 200, "answer", False, 0.001) + graph_run("tc", T0 + 300)
        store.write(spans=spans)
        key, _ = generate_key(store, "reader", ["read"])
        with serving(create_app(ServerSettings(), store=store)) as base:
            yield ["--database-url", database_url], ["--server-url", base, "--api-key", key]


def _flow(*args: str) -> Any:
    return CliRunner().invoke(app, ["flow", *args, "--until", UNTIL, "--window", "1h"])


class TestFlowOverServer:
    @pytest.mark.parametrize("fmt", ["mermaid", "svg", "json"])
    def test_same_output_from_the_store_and_the_server(
        self, both: tuple[list[str], list[str]], fmt: str
    ) -> None:
        """The server's flow, drawn by the CLI, is the store's, byte for byte."""
        local, remote = (_flow("support", "--format", fmt, *opts) for opts in both)
        assert local.exit_code == 0, local.output
        assert remote.exit_code == 0, remote.output
        assert local.stdout == remote.stdout
        assert "refund" in local.stdout

    def test_unknown_workflow_is_one_line_either_way(
        self, both: tuple[list[str], list[str]]
    ) -> None:
        """No decision in the window: exit 1 and the same line naming the workflow."""
        local, remote = (_flow("billing", *opts) for opts in both)
        assert local.exit_code == remote.exit_code == 1
        assert local.stderr == remote.stderr
        assert "'billing'" in remote.stderr and "Traceback" not in remote.output
