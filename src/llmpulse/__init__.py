"""llmpulse: monitoring and maintenance for LLM pipelines.

Record what your LLM application does::

    import llmpulse

    llmpulse.init("sqlite:///./llmpulse.db")      # or LLMPULSE_DATABASE_URL

    @llmpulse.observe()
    def answer(question: str) -> str:
        ...                                        # openai calls inside are recorded too

Recording never raises into your code and never blocks it: records go to a bounded in-memory
queue that a background thread exports in batches.
"""

from __future__ import annotations

from typing import Any

from llmpulse.sdk import (
    Client,
    flush,
    get_client,
    get_current_span,
    init,
    observe,
    record_llm_call,
    record_metric,
    shutdown,
    span,
    stats,
    using,
)
from llmpulse.sdk._workflow import record_branch, record_tool_call, tool

__version__ = "0.1.0"

__all__ = [
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


def instrument_openai() -> bool:
    """Record every OpenAI chat completion; ``False`` if the openai package is not installed."""
    from llmpulse.sdk.instrumentation.openai import instrument_openai as _instrument

    return _instrument()


def uninstrument_openai() -> None:
    """Stop recording OpenAI chat completions."""
    from llmpulse.sdk.instrumentation.openai import uninstrument_openai as _uninstrument

    _uninstrument()


def instrument_anthropic() -> bool:
    """Record every Anthropic message; ``False`` if the anthropic package is not installed."""
    from llmpulse.sdk.instrumentation.anthropic import instrument_anthropic as _instrument

    return _instrument()


def uninstrument_anthropic() -> None:
    """Stop recording Anthropic messages."""
    from llmpulse.sdk.instrumentation.anthropic import uninstrument_anthropic as _uninstrument

    _uninstrument()


def instrument_litellm() -> bool:
    """Record every ``litellm.completion`` / ``acompletion``; ``False`` without litellm."""
    from llmpulse.sdk.instrumentation.litellm import instrument_litellm as _instrument

    return _instrument()


def uninstrument_litellm() -> None:
    """Stop recording LiteLLM completions."""
    from llmpulse.sdk.instrumentation.litellm import uninstrument_litellm as _uninstrument

    _uninstrument()


def langchain_handler(**options: Any) -> Any:
    """A LangChain callback handler recording runs as spans, for ``config={"callbacks": [...]}``.

    Options: ``capture_io``, ``capture_state`` (LangGraph state values), ``max_open_runs``.
    Needs langchain-core (``pip install "llmpulse[langchain]"``): ``ImportError`` without it.
    """
    from llmpulse.sdk.instrumentation.langchain import CallbackHandler

    return CallbackHandler(**options)


def instrument_langchain(**options: Any) -> Any:
    """Record every LangChain and LangGraph run of the process; the handler, or ``None``
    if langchain-core is not installed (options as for ``langchain_handler``)."""
    try:
        from llmpulse.sdk.instrumentation.langchain import instrument_langchain as _instrument
    except ImportError:
        return None
    return _instrument(**options)


def uninstrument_langchain() -> None:
    """Stop recording the runs that ``instrument_langchain`` recorded."""
    import sys

    module = sys.modules.get("llmpulse.sdk.instrumentation.langchain")
    if module is not None:
        module.uninstrument_langchain()


def start_metrics_server(port: int = 9464, addr: str = "127.0.0.1") -> Any:
    """Serve this process's ``llm_*`` Prometheus metrics on ``addr:port`` (a ``MetricsServer``).

    ``port=0`` picks a free port (``.port``); ``.close()`` stops serving. Needs
    prometheus_client: ``ConfigError`` without it, or when the port is taken.
    """
    from llmpulse.sdk._metrics import start_metrics_server as _start

    return _start(port, addr)


def metrics_asgi_app() -> Any:
    """An ASGI app serving this process's ``llm_*`` Prometheus metrics, to mount at /metrics."""
    from llmpulse.sdk._metrics import metrics_asgi_app as _app

    return _app()


def metrics_wsgi_app() -> Any:
    """A WSGI app serving this process's ``llm_*`` Prometheus metrics, to mount at /metrics."""
    from llmpulse.sdk._metrics import metrics_wsgi_app as _app

    return _app()


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str) -> Any:
    raise AttributeError(f"module 'llmpulse' has no attribute {name!r}")
