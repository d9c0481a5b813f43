"""The supported surface of ``llmpulse`` is exactly what ``__all__`` lists (pinned here)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import llmpulse

EXPECTED = [
    "Client",
    "__version__",
    "flush",
    "get_client",
    "get_current_span",
    "init",
    "instrument_anthropic",
    "instrument_langchain",
    "instrument_litellm",
    "instrument_openai",
    "langchain_handler",
    "metrics_asgi_app",
    "metrics_wsgi_app",
    "observe",
    "record_branch",
    "record_llm_call",
    "record_metric",
    "record_tool_call",
    "shutdown",
    "span",
    "start_metrics_server",
    "stats",
    "tool",
    "uninstrument_anthropic",
    "uninstrument_langchain",
    "uninstrument_litellm",
    "uninstrument_openai",
    "using",
]


class TestPublicApi:
    def test_all_is_pinned(self) -> None:
        """__all__ changes only on purpose, together with this list."""
        assert sorted(llmpulse.__all__) == sorted(EXPECTED)

    def test_every_name_exists_and_is_documented(self) -> None:
        """Every exported callable has a one-line docstring."""
        for name in llmpulse.__all__:
            obj = getattr(llmpulse, name)
            if callable(obj):
                assert inspect.getdoc(obj), f"{name} has no docstring"

    def test_testing_helpers(self) -> None:
        """llmpulse.testing exports the in-memory exporter, the fake clock and reset_sdk."""
        import llmpulse.testing

        assert sorted(llmpulse.testing.__all__) == ["FakeClock", "InMemoryExporter", "reset_sdk"]

    def test_init_signature(self) -> None:
        """init takes the database URL positionally and every setting by keyword."""
        params = inspect.signature(llmpulse.init).parameters
        assert next(iter(params)) == "database_url"
        for name in (
            "exporter",
            "sample_rate",
            "redact",
            "max_content_chars",
            "queue_size",
            "batch_size",
            "flush_interval",
            "shutdown_timeout",
            "service_name",
            "prices",
            "instrument",
            "enabled",
        ):
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name

    def test_import_and_stats_load_only_the_standard_library(self) -> None:
        """import llmpulse and llmpulse.stats() load no third-party module at all."""
        code = (
            "import sys, llmpulse; llmpulse.stats(); "
            "top = {m.split('.')[0] for m in sys.modules}; "
            "print(sorted(top - set(sys.stdlib_module_names) - {'llmpulse', '__main__', "
            "'_distutils_hack'}))"  # setuptools' hook, loaded by site in virtualenvs
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == "[]"

    def test_import_is_light(self) -> None:
        """import llmpulse loads neither the store (SQLAlchemy) nor a client library nor httpx."""
        code = (
            "import sys, llmpulse; heavy = [m for m in ('sqlalchemy', 'alembic', 'openai', 'anthropic', 'litellm', 'httpx', 'llmpulse.store') "
            "if m in sys.modules]; print(heavy)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == "[]"
