"""A port already taken stops `llmpulse serve` and `llmpulse demo --serve` with one line.

Before, uvicorn started the app, logged `[Errno 98] ... address already in use` and exited 3,
and `demo --serve` ran the whole demo first; now the bind is tried up front and the error says
what to do.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmpulse.cli.main import app

pytest.importorskip("uvicorn", reason="uvicorn is not installed (extra: server)")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_on_a_busy_port(busy_port: int, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    out = CliRunner().invoke(app, ["serve", "--port", str(busy_port), "--database-url", url])
    assert out.exit_code == 2, out.output
    assert f"cannot serve on 127.0.0.1:{busy_port}" in out.output
    assert "pick another --port" in out.output and "Traceback" not in out.output


def test_demo_serve_on_a_busy_port_stops_before_the_run(busy_port: int, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    args = ["demo", "-n", "20", "--serve", "--port", str(busy_port), "--database-url", url]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 1, out.output
    assert f"cannot serve on 127.0.0.1:{busy_port}" in out.output
    assert "answering tickets" not in out.output  # the demo did not run first


def test_a_free_port_passes() -> None:
    from llmpulse.cli.serve import check_port

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    check_port("127.0.0.1", port)  # nothing listens there any more
