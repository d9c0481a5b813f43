"""What ``init(instrument=...)`` switches on and off.

Each name's module imports its library only when switched on, so ``import llmpulse`` and an
``init`` without that name never load openai, anthropic, litellm or langchain. A name whose
library is not installed is not an error (the application may run where an optional client is
absent): one warning names the pip extra that brings it, and recording goes on without it.
"""

from __future__ import annotations

import importlib
import logging
import sys

__all__ = ["apply_instrumentation", "forget_init_switches"]

log = logging.getLogger("llmpulse.sdk")

_CLIENTS = ("openai", "anthropic", "litellm")  # patched client libraries: on or off per init
_by_init: set[str] = set()  # hooks init itself installed (LangChain's is also a manual switch)


def apply_instrumentation(
    names: tuple[str, ...], extras: dict[str, str], *, warn_missing: bool = True
) -> None:
    """Instrument each of ``names`` and uninstrument the clients not in it (never raises).

    ``warn_missing=False`` (init's default selection) says nothing of an absent library."""
    for name in _CLIENTS:
        try:
            if name in names:
                module = importlib.import_module(f"llmpulse.sdk.instrumentation.{name}")
                if not getattr(module, f"instrument_{name}")() and warn_missing:
                    _missing(name, extras[name])
            else:
                module = sys.modules.get(f"llmpulse.sdk.instrumentation.{name}")  # type: ignore[assignment]
                if module is None and name == "openai":
                    module = importlib.import_module("llmpulse.sdk.instrumentation.openai")
                if module is not None:
                    getattr(module, f"uninstrument_{name}")()
        except Exception:  # a library too old or too new to patch: say so, record the rest
            log.warning("Cannot instrument %s; its calls are not recorded.", name, exc_info=True)
    _langchain("langchain" in names, extras["langchain"])


def forget_init_switches() -> None:
    """Forget which hooks init installed (``llmpulse.testing.reset_sdk`` removes them all)."""
    _by_init.clear()


def _langchain(wanted: bool, extra: str) -> None:
    if wanted:
        try:
            from llmpulse.sdk.instrumentation import langchain
        except ImportError:
            _missing("langchain", extra, package="langchain-core")
            return
        langchain.instrument_langchain()
        _by_init.add("langchain")
    elif "langchain" in _by_init:
        _by_init.discard("langchain")
        module = sys.modules.get("llmpulse.sdk.instrumentation.langchain")
        if module is not None:
            module.uninstrument_langchain()


def _missing(name: str, extra: str, package: str | None = None) -> None:
    log.warning(
        "init(instrument=...) names %r, but the %s package is not installed, so those calls "
        "are not recorded. Install it with: pip install 'llmpulse[%s]'",
        name, package or name, extra,
    )  # fmt: skip
