"""Fixtures for the server: a store on both backends and the real app over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from llmpulse.server.app import create_app
from llmpulse.server.auth import generate_key
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """Build a started app over a store: ``make_client(store, **settings)``; stopped after."""
    clients: list[TestClient] = []

    def make(store: Store, **settings: Any) -> TestClient:
        client = TestClient(create_app(ServerSettings(**settings), store=store))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(store: Store, make_client: Callable[..., TestClient]) -> TestClient:
    """The app over ``store`` (no keys yet: open on loopback)."""
    return make_client(store)


@pytest.fixture
def admin_key(store: Store) -> str:
    """An admin key in ``store`` (from now on every request needs a key)."""
    key, _ = generate_key(store, "test admin", ["admin"])
    return key


def bearer(key: str) -> dict[str, str]:
    """The header that authenticates with ``key``."""
    return {"Authorization": f"Bearer {key}"}
