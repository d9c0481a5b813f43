"""Entry points: a wrapper around an (instrumented) OpenAI client, and a decorator."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

from llmpulse.recovery._engine import Keys, Recoverer
from llmpulse.recovery._policy import RecoveryPolicy

__all__ = ["RecoveringClient", "with_recovery"]

F = TypeVar("F", bound=Callable[..., Any])


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    read = getattr(value, "read", None)  # an httpx.Timeout: the read timeout is the one that fires
    return float(read) if isinstance(read, (int, float)) and not isinstance(read, bool) else None


def _provider(client: Any) -> str:
    host = getattr(getattr(client, "base_url", None), "host", None)
    return str(host) if host else "openai"


class _Completions:
    def __init__(self, owner: RecoveringClient) -> None:
        self._owner = owner

    def create(self, **kwargs: Any) -> Any:
        """``client.chat.completions.create(**kwargs)`` with recovery (a coroutine for async clients)."""
        owner = self._owner
        create = owner._client.chat.completions.create
        base_timeout = _number(getattr(owner._client, "timeout", None))
        if owner.is_async:
            return owner.recoverer.arun(
                lambda request: create(**request), kwargs, Keys(), base_timeout
            )
        return owner.recoverer.run(lambda request: create(**request), kwargs, Keys(), base_timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner._client.chat.completions, name)


class _Chat:
    def __init__(self, owner: RecoveringClient) -> None:
        self.completions = _Completions(owner)
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner._client.chat, name)


class RecoveringClient:
    """An OpenAI client (sync or async) whose chat completions recover from provider failures.

    Everything but ``chat.completions.create`` passes through to the wrapped client::

        client = RecoveringClient(openai.OpenAI(), RecoveryPolicy(fallback_models=("gpt-4o-mini",)))
        client.chat.completions.create(model="gpt-4o", messages=[...])

    Give several wrappers one ``recoverer=`` to share breakers and rate limits.
    """

    def __init__(self, client: Any, policy: RecoveryPolicy | None = None, *, recoverer: Recoverer | None = None,
                 **recoverer_options: Any) -> None:  # fmt: skip
        self._client = client
        if recoverer is None:
            recoverer_options.setdefault("provider", _provider(client))
            recoverer = Recoverer(policy, **recoverer_options)
        self.recoverer = recoverer
        completions = client.chat.completions
        self.is_async = inspect.iscoroutinefunction(completions.create) or type(
            completions
        ).__name__.startswith("Async")
        self.chat = _Chat(self)

    @property
    def policy(self) -> RecoveryPolicy:
        """The policy in force."""
        return self.recoverer.policy

    @property
    def wrapped(self) -> Any:
        """The client underneath."""
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _decorate(
    fn: F, recoverer: Recoverer, model_arg: str, messages_arg: str, timeout_arg: str
) -> F:
    signature = inspect.signature(fn)
    params = signature.parameters
    keys = Keys(
        model=model_arg if model_arg in params else None,
        messages=messages_arg if messages_arg in params else None,
        timeout=timeout_arg if timeout_arg in params else None,
    )

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def invoke(request: dict[str, Any]) -> Any:
        bound = inspect.BoundArguments(signature, request)  # type: ignore[arg-type,unused-ignore]
        return fn(*bound.args, **bound.kwargs)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await recoverer.arun(invoke, bind(args, kwargs), keys)

        async_wrapper.recoverer = recoverer  # type: ignore[attr-defined]
        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return recoverer.run(invoke, bind(args, kwargs), keys)

    wrapper.recoverer = recoverer  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


@overload
def with_recovery(policy: F) -> F: ...
@overload
def with_recovery(policy: RecoveryPolicy | None = None, *, recoverer: Recoverer | None = None,
                  model_arg: str = "model", messages_arg: str = "messages", timeout_arg: str = "timeout",
                  **recoverer_options: Any) -> Callable[[F], F]: ...  # fmt: skip
def with_recovery(
    policy: Any = None,
    *,
    recoverer: Recoverer | None = None,
    model_arg: str = "model",
    messages_arg: str = "messages",
    timeout_arg: str = "timeout",
    **recoverer_options: Any,
) -> Any:
    """Decorate a sync or async function so its failures are recovered under ``policy``.

    A parameter named ``model`` enables fallbacks, ``messages`` context reduction and
    ``timeout`` longer timeouts (rename with ``model_arg=`` etc.); without them, only retries.
    The wrapper's ``.recoverer`` holds its breakers and limiter.
    """
    if callable(policy) and not isinstance(policy, RecoveryPolicy):
        return with_recovery()(policy)
    shared = recoverer or Recoverer(policy, **recoverer_options)

    def decorate(fn: F) -> F:
        return _decorate(fn, shared, model_arg, messages_arg, timeout_arg)

    return decorate
