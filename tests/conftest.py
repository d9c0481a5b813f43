"""Shared fixtures: a clean environment, and databases for both backends.

The ``database_url`` fixture runs a test on SQLite (a temp file) and on PostgreSQL (a fresh
schema per test in the server named by LLMPULSE_TEST_POSTGRES_URL). When PostgreSQL is not
reachable the PostgreSQL half skips and says why, unless LLMPULSE_REQUIRE_SERVICES=1 (set by
.ci/run), which turns that skip into a failure.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from llmpulse.store import Store

POSTGRES_URL = os.environ.get(
    "LLMPULSE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("LLMPULSE_REQUIRE_SERVICES", "") in ("1", "true", "yes")

_KEEP_ENV = {"LLMPULSE_TEST_POSTGRES_URL", "LLMPULSE_REQUIRE_SERVICES", "LLMPULSE_TEST_REDIS_URL"}


# Test files that read one costly session fixture: under xdist they run on the same worker, so
# the fixture is made once (the full demo run of tests/e2e/conftest.py takes about a minute).
_SAME_WORKER = {
    "tests/e2e/test_demo_alerts.py": "full_demo",
    "tests/e2e/test_demo_findings.py": "full_demo",
}


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """With pytest-xdist off (`-p no:xdist`) or not installed, the xdist options of pyproject's
    addopts are accepted and ignored: the tests run in this one process."""
    if not pluginmanager.has_plugin("xdist"):
        group = parser.getgroup("xdist", "xdist is off: --numprocesses and --dist are ignored")
        group.addoption("--numprocesses", default=None)
        group.addoption("--dist", default="no")
        group.addoption("--no-loadscope-reorder", action="store_true")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` (pyproject's addopts): a test file runs whole on one worker, so its
    module fixtures (a server, a browser, a batch of scripts) are made once; the files of
    ``_SAME_WORKER`` also share their worker. (pytest-xdist's ``xdist_group`` marks would say
    this, but with pytest 9.2 its ``--dist loadgroup`` ignores them: pytest-xdist #1386.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class _FilesSharingAFixture(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return _SAME_WORKER.get(path, path)

    return _FilesSharingAFixture(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """No two tests share an id: pytest-xdist sends tests to its workers by id, so of tests that
    share one it would run only the first, and say nothing about the others."""
    counts = Counter(item.nodeid for item in items)
    shared = sorted(nodeid for nodeid, n in counts.items() if n > 1)
    if shared:
        raise pytest.UsageError(f"tests that share an id (xdist would run one): {shared[:5]}")


@pytest.fixture(autouse=True)
def _clean_llmpulse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without LLMPULSE_* settings from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("LLMPULSE_") and name not in _KEEP_ENV:
            monkeypatch.delenv(name, raising=False)


def service_missing(name: str, why: str) -> None:
    """Skip (or, under LLMPULSE_REQUIRE_SERVICES=1, fail) a test whose real service is absent."""
    message = f"{name} not available: {why}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (LLMPULSE_REQUIRE_SERVICES=1 makes this a failure)")
    pytest.skip(message)


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@cache
def _postgres_problem() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'llmpulse[postgres]')"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:  # any failure means "not here"
        return f"cannot connect to {POSTGRES_URL}: {exc}"
    return None


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A SQLite database in a fresh temp file."""
    return f"sqlite:///{tmp_path / 'llmpulse.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    problem = _postgres_problem()
    if problem:
        service_missing("PostgreSQL", problem)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'create schema "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The same test against SQLite and against PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated store on SQLite and on PostgreSQL, closed after the test (llmpulse.store is
    imported here, not at the top: the SDK-only job runs without its dependencies)."""
    from llmpulse.store import Store

    with Store.open(database_url) as s:
        yield s


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    """A migrated store on SQLite only (for tests whose subject is not the backend)."""
    from llmpulse.store import Store

    with Store.open(sqlite_url) as s:
        yield s


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """The seed of the module's LLM simulator; a test module or conftest overrides it."""
    return 0


@pytest.fixture(scope="module")
def _module_sim(sim_seed: int) -> Iterator[object]:
    """One simulator per test module (starting one costs ~0.1 s)."""
    from llmpulse.simulator import LLMSimulator, SimulatorConfig

    with LLMSimulator(SimulatorConfig(seed=sim_seed)) as sim:
        yield sim


@pytest.fixture
def sim(_module_sim):  # type: ignore[no-untyped-def]
    """The module's simulator with no faults, no queued failures and an empty request log."""
    _module_sim.reset()
    yield _module_sim
    _module_sim.reset()


@pytest.fixture
def client(sim):  # type: ignore[no-untyped-def]
    """The real openai client pointed at the module's simulator, its own retries off (openai
    is imported here, not at the top: the SDK-only job runs tests/unit/sdk without it)."""
    import openai

    with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
        yield c


@pytest.fixture
def claude(sim):  # type: ignore[no-untyped-def]
    """The real anthropic client pointed at the module's simulator, its own retries off."""
    import anthropic

    with anthropic.Anthropic(base_url=sim.url, api_key="sim", max_retries=0) as c:
        yield c
