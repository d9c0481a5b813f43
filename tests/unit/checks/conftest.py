"""Fixtures of the check tests: a store on a temp SQLite file, filled with synthetic traffic."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from llmpulse.store import Store
from tests.unit.checks.traffic import Traffic, make_spans

T0 = 1_700_000_000.0  # a Tuesday, 22:13 UTC: any fixed instant works, checks read no clock


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    """A fresh store on a temp SQLite file."""
    s = Store.open(sqlite_url)
    yield s
    s.close()


@pytest.fixture
def filled(store: Store) -> Callable[[Traffic], Traffic]:
    """Write a ``Traffic`` into the store and return it."""

    def fill(traffic: Traffic) -> Traffic:
        result = store.write(spans=make_spans(traffic))
        assert result.rejected == 0
        return traffic

    return fill
