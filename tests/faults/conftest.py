"""Fault-probe fixtures: a fresh SDK around every test (the ``store`` on both backends is in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmpulse.testing import reset_sdk


@pytest.fixture(autouse=True)
def _fresh_sdk() -> Iterator[None]:
    """Every probe starts and ends with no active client."""
    reset_sdk()
    yield
    reset_sdk()
