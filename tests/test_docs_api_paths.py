"""Every server endpoint that README.md and docs/*.md name (`GET /traces/{trace_id}`) exists.

The pages name endpoints by method and path, in full (`/api/v1/...`) or relative to `/api/v1`
as the tables of server.md and dashboard.md do; each must be an operation of the server's
OpenAPI document with that method, so a renamed or removed route fails here before a user's
curl or dashboard reading does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="fastapi is not installed (extra: server)")

ROOT = Path(__file__).resolve().parents[1]
_REFERENCE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/[A-Za-z0-9_./{}\-]*)")
# Endpoints of other servers the pages describe: Alertmanager's, which the alertmanager channel
# posts to; simulator.md is about the LLM simulator's OpenAI and Anthropic API, not llmpulse's.
_NOT_OURS = {"alerting.md": {"/api/v2/alerts"}}
PAGES = sorted(
    p for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")] if p.name != "simulator.md"
)


def _normal(path: str) -> str:
    """Parameters as `{}` however they are written: `{trace_id}`, `<id>`, `NAME`."""
    path = re.sub(r"\{[^}/]*\}", "{}", path)
    return re.sub(r"(?<=/)[A-Z][A-Z_]*(?=/|$)", "{}", path)


@pytest.fixture(scope="module")
def operations(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    from llmpulse.server.app import create_app
    from llmpulse.server.settings import ServerSettings
    from llmpulse.store import Store

    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'api.db'}"
    with Store.open(url) as store:
        spec = create_app(ServerSettings(database_url=url), store=store).openapi()
    return {
        (method.upper(), _normal(path)) for path, ops in spec["paths"].items() for method in ops
    }


def _references(page: Path) -> list[tuple[int, str, str]]:
    text = re.sub(r"<([^>\n]+)>", r"{\1}", page.read_text(encoding="utf-8"))  # <id> -> {id}
    found = []
    for m in _REFERENCE.finditer(text):
        path = m[2].rstrip(".,")
        found.append((text[: m.start()].count("\n") + 1, m[1], path))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_endpoints_exist(page: Path, operations: set[tuple[str, str]]) -> None:
    skip = _NOT_OURS.get(page.name, set())
    missing = [
        f"{page.name}:{line}: {method} {path}"
        for line, method, path in _references(page)
        if path not in skip
        and not any((method, _normal(p)) in operations for p in (path, "/api/v1" + path))
    ]
    assert not missing, "no such endpoint:\n" + "\n".join(missing)


def test_a_wrong_endpoint_is_caught(operations: set[tuple[str, str]]) -> None:
    """The matching above is not so loose that anything passes."""
    assert ("GET", _normal("/api/v1/traces/{trace_id}")) in operations
    assert ("GET", _normal("/api/v1/trace/{trace_id}")) not in operations
    assert ("DELETE", _normal("/api/v1/traces/{trace_id}")) not in operations
    assert _normal("/workflows/NAME/flow") == _normal("/workflows/{name}/flow")
