"""init(instrument=...): which libraries get recorded, and what a missing one does."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network: the bundled map

import llmpulse  # noqa: E402
from llmpulse.errors import ConfigError  # noqa: E402
from llmpulse.testing import InMemoryExporter  # noqa: E402

anthropic_messages = pytest.importorskip("anthropic.resources.messages")
litellm = pytest.importorskip("litellm")
langchain = pytest.importorskip("llmpulse.sdk.instrumentation.langchain")
openai_completions = pytest.importorskip("openai.resources.chat.completions")

_MARK = "__llmpulse_wrapped__"


def _on() -> dict[str, bool]:
    return {
        "openai": hasattr(openai_completions.Completions.create, _MARK),
        "anthropic": hasattr(anthropic_messages.Messages.create, _MARK)
        and hasattr(anthropic_messages.AsyncMessages.stream, _MARK),
        "litellm": hasattr(litellm.completion, _MARK) and hasattr(litellm.acompletion, _MARK),
        "langchain": langchain._process.handler is not None,
    }


class TestInstrument:
    def test_every_name_switches_its_library_on_and_a_new_init_off(self) -> None:
        """All four names instrument their library; a later init without them undoes it."""
        llmpulse.init(exporter=InMemoryExporter(),
                      instrument=("openai", "anthropic", "litellm", "langchain"))  # fmt: skip
        assert _on() == dict.fromkeys(("openai", "anthropic", "litellm", "langchain"), True)
        llmpulse.init(exporter=InMemoryExporter(), instrument="anthropic")
        assert _on() == {"openai": False, "anthropic": True, "litellm": False, "langchain": False}
        llmpulse.init(exporter=InMemoryExporter())  # the default: openai only
        assert _on() == {"openai": True, "anthropic": False, "litellm": False, "langchain": False}

    def test_a_manual_langchain_switch_survives_init(self) -> None:
        """instrument_langchain() called by hand is not undone by an init that does not name it."""
        llmpulse.instrument_langchain()
        llmpulse.init(exporter=InMemoryExporter(), instrument=())
        assert _on()["langchain"] is True

    def test_disabled_client_instruments_nothing(self) -> None:
        """With recording disabled no library is patched, whatever instrument says."""
        llmpulse.init(
            exporter=InMemoryExporter(), instrument=("anthropic", "litellm"), enabled=False
        )
        assert not any(_on().values())

    @pytest.mark.parametrize("names", [("cohere",), ("openai", 3)])
    def test_unknown_name_is_a_config_error(self, names: tuple) -> None:
        """An unknown name is refused, and the error lists what is available."""
        with pytest.raises(
            ConfigError,
            match=r"unknown instrumentation.*available: \['openai', 'anthropic', 'litellm', 'langchain'\]",
        ):
            llmpulse.init(exporter=InMemoryExporter(), instrument=names)

    def test_the_default_says_nothing_when_openai_is_absent(self) -> None:
        """init() without instrument= asks for openai only where it is installed: no warning
        where it is not (an application without openai makes no openai calls to record)."""
        code = textwrap.dedent(
            """
            import logging, sys
            sys.modules["openai"] = None  # as if not installed: importing it fails
            logging.basicConfig(level=logging.WARNING, format="%(message)s")
            import llmpulse
            from llmpulse.testing import InMemoryExporter
            llmpulse.init(exporter=InMemoryExporter())
            llmpulse.init(exporter=InMemoryExporter(), instrument="openai")
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        warning = "init(instrument=...) names 'openai', but the openai package is not installed"
        assert proc.stderr.count(warning) == 1, proc.stderr  # the explicit one only

    def test_missing_packages_warn_with_their_extra(self) -> None:
        """A named library that is not installed gives one warning naming the pip extra; init
        still returns a working client and the user's code goes on."""
        code = textwrap.dedent(
            """
            import logging, sys
            for name in ("anthropic", "litellm", "langchain_core"):
                sys.modules[name] = None  # as if not installed: importing it fails
            logging.basicConfig(level=logging.WARNING, format="%(message)s")
            import llmpulse
            from llmpulse.testing import InMemoryExporter
            exporter = InMemoryExporter()
            llmpulse.init(exporter=exporter, instrument=("anthropic", "litellm", "langchain"))
            llmpulse.record_llm_call("gpt-4o-mini", input_tokens=1, output_tokens=1)
            assert llmpulse.flush(5) and len(exporter.spans) == 1
            print("user code went on")
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "user code went on"
        for name, package in (
            ("anthropic", "anthropic"),
            ("litellm", "litellm"),
            ("langchain", "langchain-core"),
        ):
            assert (
                f"init(instrument=...) names {name!r}, but the {package} package is not installed, "
                f"so those calls are not recorded. Install it with: pip install 'llmpulse[{name}]'"
            ) in proc.stderr
        assert "Traceback" not in proc.stderr
