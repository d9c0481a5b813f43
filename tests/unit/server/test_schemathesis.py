"""schemathesis against the OpenAPI document: generated requests (valid and invalid) for every
operation never get a 500, and every answer matches the document (status, content type, body
schema). Bounded: a few examples per operation, so it runs in seconds."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.generation.hypothesis.builder import ApiOperationMark

from llmpulse.server.app import create_app
from llmpulse.server.auth import generate_key
from llmpulse.server.settings import ServerSettings

_DIR = Path(tempfile.mkdtemp(prefix="llmpulse-schemathesis-"))
# Every xdist worker imports this module (and makes a _DIR); one of them runs it.
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
APP = create_app(ServerSettings(database_url=f"sqlite:///{_DIR / 'st.db'}"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
_KEY: dict[str, str] = {}


@schemathesis.serializer("application/x-protobuf")
def _protobuf(_context: Any, value: Any) -> bytes:
    """OTLP protobuf bodies: the generated binary string as bytes (mostly not valid protobuf,
    which must be a 400, never a 500)."""
    return value if isinstance(value, bytes) else str(value).encode()


@pytest.fixture(scope="module", autouse=True)
def _running() -> Iterator[None]:
    """The app started (its lifespan opens the store) with an admin key, for the whole module."""
    try:
        with TestClient(APP):
            _KEY["admin"], _ = generate_key(APP.state.llmpulse.store, "schemathesis", ["admin"])
            yield
    finally:
        shutil.rmtree(_DIR, ignore_errors=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each operation's test is parametrized with the operation's label, so its pytest id names
    the operation: since pytest 9.2 an item schemathesis makes is named by its function alone
    (all 52 were ``test_api_conforms``), and pytest-xdist, which sends tests to its workers by
    id, ran one of them."""
    operation = ApiOperationMark.get(metafunc.function)
    if operation is not None:
        metafunc.parametrize("operation", [operation.label], ids=[operation.label])


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,
)
def test_api_conforms(case: Any, operation: str) -> None:
    """No 500, and status, content type, headers and body conform to the document; data the
    document forbids is refused.

    Left out: ``positive_data_acceptance``, which expects every schema-valid request to
    succeed. Some valid-looking values are refused on purpose, with 400/422 naming them, for
    rules a JSON schema cannot state: a cursor must be one this server issued, ``end`` must be
    after ``start``, a series may not ask for more than 5,000 buckets.

    Derandomized, so CI runs the same examples every time: a random draw once sent a query
    value that breaks the schema only before it is serialised (any value of a text query
    parameter is text on the wire), and the Authorization header this test adds back to
    cases that had dropped it; both were reported as "schema-violating request accepted".
    Run with ``derandomize=False`` and more examples to look for new failures.
    """
    case.call_and_validate(
        headers={"Authorization": f"Bearer {_KEY['admin']}"},
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
