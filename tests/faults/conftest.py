"""Fault-probe fixtures: a fresh SDK around every test, a store opened on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmpulse.store import Store
from llmpulse.testing import reset_sdk


@pytest.fixture(autouse=True)
def _fresh_sdk() -> Iterator[None]:
    """Every probe starts and ends with no active client."""
    reset_sdk()
    yield
    reset_sdk()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """The store behind ``database_url`` (SQLite and PostgreSQL), migrated, for reading back."""
    opened = Store.open(database_url)
    yield opened
    opened.close()
