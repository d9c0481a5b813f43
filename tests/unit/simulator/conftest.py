"""One simulator per test module (starting one costs ~0.1 s); each test gets it reset. The
``sim``, ``client`` (openai) and ``claude`` (anthropic) fixtures are in tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed (the shared simulator fixture is in tests/conftest.py)."""
    return 7
