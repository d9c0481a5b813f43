"""What a channel receives (a :class:`Notification` of :class:`AlertItem` s), what it raises
(:class:`DeliveryError`), and how a channel is built from its configuration.

The engine's outbox worker calls ``Channel.send`` once per delivery attempt and decides from
the ``DeliveryError`` whether and when to try again: ``retryable`` says whether the same
notification may succeed later (a 5xx, a timeout, a 429), ``retry_after`` is the receiver's own
wait in seconds when it gave one. A channel never retries by itself and never swallows a
failure: a notification is delivered when ``send`` returns.

Channels are built by kind (``spec["type"]``) from a :class:`ChannelRegistry`. The built-in
kinds are registered by module path and imported on first use, so importing this module loads
no HTTP or SMTP code; :func:`register_channel_type` adds a kind written in code.
"""

from __future__ import annotations

import importlib
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from llmpulse._config_file import FieldError
from llmpulse.errors import ConfigError, LlmpulseError

if TYPE_CHECKING:
    from llmpulse.alerting.channels._network import NetworkPolicy

__all__ = [
    "SEVERITIES",
    "STATUSES",
    "AlertItem",
    "Channel",
    "ChannelFactory",
    "ChannelRegistry",
    "DeliveryError",
    "FunctionChannel",
    "Notification",
    "build_channel",
    "default_registry",
    "register_channel_type",
]

SEVERITIES = ("info", "warning", "critical")
STATUSES = ("firing", "resolved")


@dataclass(frozen=True)
class AlertItem:
    """One alert inside a (grouped) notification, with the evidence that made it fire.

    ``value`` is what the rule measured over ``window_s`` seconds, ``threshold`` what it was
    compared with and ``baseline`` the normal level (detection rules); ``link`` points at the
    trace or dashboard view. Times are Unix seconds.
    """

    fingerprint: str
    rule: str
    severity: str
    status: str
    labels: Mapping[str, str]
    summary: str
    value: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    window_s: float | None = None
    starts_at: float = 0.0
    ends_at: float | None = None
    link: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"AlertItem.severity must be one of {SEVERITIES}: {self.severity!r}")
        if self.status not in STATUSES:
            raise ValueError(f"AlertItem.status must be one of {STATUSES}: {self.status!r}")
        if not self.fingerprint or not self.rule:
            raise ValueError("AlertItem needs a fingerprint and a rule name")


@dataclass(frozen=True)
class Notification:
    """What one outbox row delivers: alerts of one group, in one state.

    ``idempotency_key`` is the same on every attempt of the row, so a receiver can drop the
    resend that follows a crash between its answer and the engine recording it.
    """

    idempotency_key: str
    group_key: str
    status: str
    items: tuple[AlertItem, ...]
    escalation_level: int = 0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Notification.status must be one of {STATUSES}: {self.status!r}")
        if not self.idempotency_key:
            raise ValueError("Notification needs an idempotency_key")
        if not self.items:
            raise ValueError("Notification needs at least one AlertItem")

    @property
    def firing(self) -> tuple[AlertItem, ...]:
        """The items still firing."""
        return tuple(i for i in self.items if i.status == "firing")

    @property
    def resolved(self) -> tuple[AlertItem, ...]:
        """The items that resolved."""
        return tuple(i for i in self.items if i.status == "resolved")


class DeliveryError(LlmpulseError):
    """A channel could not deliver a notification.

    ``retryable``: the same notification may succeed later (5xx, 408, 429, timeout, connection
    refused); otherwise the receiver refused it for good (4xx, a blocked address, a redirect).
    ``retry_after``: seconds the receiver asked to wait (Retry-After), or ``None``. The message
    never contains a secret (webhook URLs, passwords): it is logged and stored.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        if retry_after is not None and (not math.isfinite(retry_after) or retry_after < 0):
            retry_after = None
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"DeliveryError({str(self)!r}, retryable={self.retryable}, "
            f"retry_after={self.retry_after})"
        )


@runtime_checkable
class Channel(Protocol):
    """Where notifications go. ``send`` is synchronous and raises :class:`DeliveryError`."""

    name: str
    kind: str

    def send(self, notification: Notification) -> None:
        """Deliver ``notification`` or raise ``DeliveryError``."""
        ...

    def describe(self) -> dict[str, Any]:
        """The channel's configuration with every secret masked (safe to log and to return)."""
        ...


#: Builds a channel of one kind: ``factory(name, spec, policy)``. Raises ``ConfigError``
#: (preferably a ``FieldError`` naming the field of ``spec``) for a bad spec.
ChannelFactory: TypeAlias = Callable[[str, Mapping[str, Any], "NetworkPolicy"], Channel]

_BUILTIN: dict[str, str] = {
    "webhook": "llmpulse.alerting.channels.webhook:WebhookChannel.from_spec",
    "slack": "llmpulse.alerting.channels.slack:SlackChannel.from_spec",
    "discord": "llmpulse.alerting.channels.discord:DiscordChannel.from_spec",
    "email": "llmpulse.alerting.channels.email:EmailChannel.from_spec",
    "alertmanager": "llmpulse.alerting.channels.alertmanager:AlertmanagerChannel.from_spec",
    "function": "llmpulse.alerting.channels._base:FunctionChannel.from_spec",
}


def _load(kind: str, path: str) -> ChannelFactory:
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        # The HTTP channels need httpx, which only the `alerting` extra installs.
        raise ConfigError(
            f"channel type {kind!r} cannot be loaded ({exc}); "
            "install it with: pip install 'llmpulse[alerting]'"
        ) from exc
    for part in attr.split("."):
        obj = getattr(obj, part)
    factory: ChannelFactory = obj
    return factory


class ChannelRegistry:
    """Channel kinds by name: the built-in ones, plus those registered in code.

    >>> registry = ChannelRegistry()
    >>> registry.register("log", lambda name, spec, policy: FunctionChannel(name, print))
    >>> sorted(registry.kinds())[:3]
    ['alertmanager', 'discord', 'email']
    """

    def __init__(self, *, builtins: bool = True) -> None:
        self._lock = threading.Lock()
        self._paths: dict[str, str] = dict(_BUILTIN) if builtins else {}
        self._factories: dict[str, ChannelFactory] = {}

    def kinds(self) -> list[str]:
        """Every kind this registry can build."""
        with self._lock:
            return sorted({*self._paths, *self._factories})

    def register(self, kind: str, factory: ChannelFactory, *, replace: bool = False) -> None:
        """Make ``spec["type"] == kind`` build with ``factory``; a taken kind needs ``replace``."""
        if not isinstance(kind, str) or not kind.strip():
            raise ConfigError(f"a channel type must be a non-empty string, got {kind!r}")
        if not callable(factory):
            raise ConfigError(f"channel type {kind!r}: the factory must be callable")
        with self._lock:
            if not replace and (kind in self._paths or kind in self._factories):
                raise ConfigError(
                    f"channel type {kind!r} is already registered; pass replace=True to override it"
                )
            self._paths.pop(kind, None)
            self._factories[kind] = factory

    def factory(self, kind: str) -> ChannelFactory:
        """The factory of ``kind``; ``FieldError`` on field ``type`` when unknown."""
        with self._lock:
            found = self._factories.get(kind)
            path = self._paths.get(kind)
        if found is not None:
            return found
        if path is not None:
            return _load(kind, path)
        raise FieldError(
            f"type: unknown channel type {kind!r} (known: {', '.join(self.kinds())})",
            "type",
            f"unknown channel type {kind!r} (known: {', '.join(self.kinds())})",
        )

    def build(self, name: str, spec: Mapping[str, Any], *, allow: NetworkPolicy) -> Channel:
        """A channel named ``name`` from ``spec``; ``ConfigError`` naming the field when bad."""
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"a channel needs a non-empty name, got {name!r}")
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"channel {name!r}: the spec must be a mapping, got {type(spec).__name__}"
            )
        kind = spec.get("type")
        if not isinstance(kind, str):
            raise FieldError(
                f"channel {name!r}: type: required, one of {', '.join(self.kinds())}",
                "type",
                f"required, one of {', '.join(self.kinds())}",
            )
        factory = self.factory(kind)
        try:
            channel = factory(name, spec, allow)
        except FieldError as exc:
            raise FieldError(f"channel {name!r}: {exc}", exc.field, exc.detail) from exc
        except ConfigError as exc:
            raise ConfigError(f"channel {name!r}: {exc}") from exc
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"channel {name!r} ({kind}): {exc}") from exc
        if not isinstance(channel, Channel):
            raise ConfigError(
                f"channel type {kind!r}: the factory returned {type(channel).__name__}, "
                "which has no send/describe"
            )
        return channel


_DEFAULT = ChannelRegistry()


def default_registry() -> ChannelRegistry:
    """The process-wide registry that :func:`build_channel` uses when given none."""
    return _DEFAULT


def register_channel_type(
    kind: str,
    factory: ChannelFactory,
    *,
    replace: bool = False,
    registry: ChannelRegistry | None = None,
) -> None:
    """Register a custom channel kind: ``factory(name, spec, policy)`` returns a Channel."""
    (registry or _DEFAULT).register(kind, factory, replace=replace)


def build_channel(
    name: str,
    spec: Mapping[str, Any],
    *,
    allow: NetworkPolicy,
    registry: ChannelRegistry | None = None,
) -> Channel:
    """Build channel ``name`` from ``spec`` (``{"type": ..., ...}``) under network policy ``allow``.

    Raises ``ConfigError`` (a ``FieldError`` with ``.field`` when one field is at fault) for a
    bad spec or a URL the policy blocks, so a bad channel is refused when it is saved.
    """
    return (registry or _DEFAULT).build(name, spec, allow=allow)


class FunctionChannel:
    """A channel made of a plain callable ``handler(notification)`` (custom handlers in code).

    An exception from the handler becomes a retryable ``DeliveryError`` (its own
    ``DeliveryError`` passes through unchanged), so the outbox retries it like any receiver.

    >>> sent = []
    >>> ch = FunctionChannel("audit", sent.append)
    >>> ch.describe()["type"]
    'function'
    """

    kind = "function"

    def __init__(self, name: str, handler: Callable[[Notification], object]) -> None:
        if not callable(handler):
            raise ConfigError(f"channel {name!r}: handler must be callable")
        self.name = name
        self._handler = handler

    @classmethod
    def from_spec(
        cls, name: str, spec: Mapping[str, Any], policy: NetworkPolicy
    ) -> FunctionChannel:
        """``{"type": "function", "handler": callable}`` (a spec built in code, not YAML)."""
        unknown = set(spec) - {"type", "handler"}
        if unknown:
            field_name = sorted(unknown)[0]
            raise FieldError(f"{field_name}: unknown field", field_name, "unknown field")
        handler = spec.get("handler")
        if not callable(handler):
            raise FieldError(
                "handler: required, a callable taking a Notification",
                "handler",
                "required, a callable taking a Notification",
            )
        return cls(name, handler)

    def send(self, notification: Notification) -> None:
        """Call the handler; its failure is a retryable ``DeliveryError``."""
        try:
            self._handler(notification)
        except DeliveryError:
            raise
        except Exception as exc:
            raise DeliveryError(
                f"channel {self.name!r}: handler raised {type(exc).__name__}", retryable=True
            ) from exc

    def describe(self) -> dict[str, Any]:
        """Name, type and the handler's qualified name."""
        handler = getattr(self._handler, "__qualname__", type(self._handler).__name__)
        return {"name": self.name, "type": self.kind, "handler": handler}
