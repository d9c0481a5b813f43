"""The channel contract: notifications, delivery errors, the registry and custom handlers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest

from llmpulse._config_file import FieldError
from llmpulse.alerting.channels import (
    AlertItem,
    Channel,
    ChannelRegistry,
    DeliveryError,
    FunctionChannel,
    NetworkPolicy,
    Notification,
    build_channel,
)
from llmpulse.errors import ConfigError


def item(status: str = "firing", **kw: Any) -> AlertItem:
    base: dict[str, Any] = dict(
        fingerprint="fp1", rule="high_latency", severity="critical", status=status,
        labels={"model": "gpt-4o"}, summary="p95 latency 6.1 s > 5 s", value=6.1,
        threshold=5.0, baseline=1.2, window_s=300.0, starts_at=1_700_000_000.0,
        link="http://dash.example/traces?model=gpt-4o",
    )  # fmt: skip
    base.update(kw)
    return AlertItem(**base)


class Recorder:
    """A custom channel written in code, as a user would."""

    kind = "recorder"

    def __init__(self, name: str, spec: Mapping[str, Any]) -> None:
        self.name = name
        self.spec = spec
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.kind}


class TestRecords:
    def test_notification_status_follows_items(self) -> None:
        """A notification lists its firing and resolved items apart."""
        n = Notification("k1", "g", "firing", (item(), item("resolved", fingerprint="fp2")))
        assert [i.fingerprint for i in n.firing] == ["fp1"]
        assert [i.fingerprint for i in n.resolved] == ["fp2"]

    @pytest.mark.parametrize(
        ("kw", "needle"),
        [
            ({"severity": "urgent"}, "severity"),
            ({"status": "pending"}, "status"),
            ({"rule": ""}, "rule"),
        ],
    )
    def test_bad_item_is_refused(self, kw: dict[str, Any], needle: str) -> None:
        """An AlertItem with an unknown severity or status, or no rule, is refused by name."""
        with pytest.raises(ValueError, match=needle):
            item(**kw)

    def test_empty_notification_is_refused(self) -> None:
        """A notification without items or key cannot be built."""
        with pytest.raises(ValueError, match="AlertItem"):
            Notification("k", "g", "firing", ())
        with pytest.raises(ValueError, match="idempotency_key"):
            Notification("", "g", "firing", (item(),))


class TestDeliveryError:
    def test_carries_retry_decision(self) -> None:
        """retryable and retry_after are kept; a negative or infinite wait is dropped."""
        e = DeliveryError("429", retryable=True, retry_after=2.5)
        assert (e.retryable, e.retry_after) == (True, 2.5)
        assert DeliveryError("x", retryable=True, retry_after=-1).retry_after is None
        assert DeliveryError("x", retryable=True, retry_after=float("inf")).retry_after is None
        assert not DeliveryError("404", retryable=False).retryable


class TestRegistry:
    def test_builtin_kinds(self) -> None:
        """The five built-in kinds and the function kind are known without importing them."""
        assert set(ChannelRegistry().kinds()) >= {
            "webhook", "slack", "discord", "email", "alertmanager", "function"
        }  # fmt: skip

    def test_import_loads_no_http_or_smtp(self) -> None:
        """Importing the channels package loads neither httpx nor smtplib."""
        code = (
            "import sys, llmpulse.alerting.channels\n"
            "bad = [m for m in ('httpx', 'smtplib', 'httpcore') if m in sys.modules]\n"
            "assert not bad, bad\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)

    def test_register_and_build_custom_kind(self) -> None:
        """A kind registered in code is built from its spec and satisfies Channel."""
        registry = ChannelRegistry()
        registry.register("recorder", lambda name, spec, policy: Recorder(name, spec))
        ch = build_channel(
            "rec", {"type": "recorder", "x": 1}, allow=NetworkPolicy(), registry=registry
        )
        assert isinstance(ch, Channel) and isinstance(ch, Recorder)
        n = Notification("k", "g", "firing", (item(),))
        ch.send(n)
        assert ch.sent == [n] and ch.spec == {"type": "recorder", "x": 1}

    def test_kind_taken_needs_replace(self) -> None:
        """Registering over a kind (built-in or custom) needs replace=True."""
        registry = ChannelRegistry()
        with pytest.raises(ConfigError, match="already registered"):
            registry.register("slack", lambda n, s, p: Recorder(n, s))
        registry.register("slack", lambda n, s, p: Recorder(n, s), replace=True)
        assert isinstance(registry.build("x", {"type": "slack"}, allow=NetworkPolicy()), Recorder)

    def test_unknown_type_names_the_field(self) -> None:
        """An unknown or missing type is a FieldError on `type` listing the known kinds."""
        with pytest.raises(FieldError, match="unknown channel type 'pagerduty'") as exc:
            build_channel("p", {"type": "pagerduty"}, allow=NetworkPolicy())
        assert exc.value.field == "type" and "webhook" in str(exc.value)
        with pytest.raises(FieldError, match="type: required"):
            build_channel("p", {"url": "x"}, allow=NetworkPolicy())

    def test_factory_errors_name_the_channel(self) -> None:
        """A factory's ValueError becomes a ConfigError naming the channel."""
        registry = ChannelRegistry()

        def factory(name: str, spec: Mapping[str, Any], policy: NetworkPolicy) -> Channel:
            raise ValueError("port must be a number")

        registry.register("broken", factory)
        with pytest.raises(ConfigError, match="channel 'b' \\(broken\\): port must be a number"):
            registry.build("b", {"type": "broken"}, allow=NetworkPolicy())

    def test_factory_must_return_a_channel(self) -> None:
        """A factory returning something without send/describe is refused at build."""
        registry = ChannelRegistry()
        registry.register("nothing", lambda n, s, p: object())  # type: ignore[arg-type,return-value]
        with pytest.raises(ConfigError, match="no send/describe"):
            registry.build("n", {"type": "nothing"}, allow=NetworkPolicy())

    def test_bad_spec_shapes(self) -> None:
        """A spec that is not a mapping, or a blank name, is refused."""
        with pytest.raises(ConfigError, match="mapping"):
            build_channel("x", ["webhook"], allow=NetworkPolicy())  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="name"):
            build_channel(" ", {"type": "function", "handler": print}, allow=NetworkPolicy())


class TestFunctionChannel:
    def test_handler_receives_notification(self) -> None:
        """A callable spec handler gets each notification."""
        got: list[Notification] = []
        ch = build_channel("fn", {"type": "function", "handler": got.append}, allow=NetworkPolicy())
        n = Notification("k", "g", "resolved", (item("resolved", ends_at=1_700_000_600.0),))
        ch.send(n)
        assert got == [n]
        assert ch.describe() == {"name": "fn", "type": "function", "handler": "list.append"}

    def test_handler_failure_is_retryable(self) -> None:
        """A handler's exception is a retryable DeliveryError; its own DeliveryError passes."""

        def boom(n: Notification) -> None:
            raise RuntimeError("secret-token-in-message")

        with pytest.raises(DeliveryError) as exc:
            FunctionChannel("f", boom).send(Notification("k", "g", "firing", (item(),)))
        assert exc.value.retryable and "secret-token" not in str(exc.value)

        def refuse(n: Notification) -> None:
            raise DeliveryError("no", retryable=False)

        with pytest.raises(DeliveryError) as exc2:
            FunctionChannel("f", refuse).send(Notification("k", "g", "firing", (item(),)))
        assert not exc2.value.retryable

    def test_function_spec_needs_a_callable(self) -> None:
        """`handler` must be callable, and no other field is accepted."""
        with pytest.raises(FieldError, match="handler: required"):
            build_channel("f", {"type": "function", "handler": "mod:fn"}, allow=NetworkPolicy())
        with pytest.raises(FieldError, match="url: unknown field"):
            build_channel(
                "f", {"type": "function", "handler": print, "url": "x"}, allow=NetworkPolicy()
            )


class TestMissingModule:
    def test_unloadable_kind_says_what_to_install(self) -> None:
        """A kind whose module cannot be imported is a ConfigError naming the extra."""
        from llmpulse.alerting.channels import _base

        registry = ChannelRegistry(builtins=False)
        registry._paths["ghost"] = "llmpulse.alerting.channels.no_such_module:X"
        with pytest.raises(ConfigError, match=r"pip install 'llmpulse\[alerting\]'"):
            registry.build("g", {"type": "ghost"}, allow=NetworkPolicy())
        assert "ghost" not in _base._BUILTIN
