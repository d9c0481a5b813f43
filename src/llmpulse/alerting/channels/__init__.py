"""Notification channels: email (SMTP), Slack, Discord, signed webhooks, Alertmanager, custom.

The contract with the alerting engine (``/work/coord/ALERTING.md``): the engine's outbox worker
hands a :class:`Notification` to ``Channel.send``, which delivers it or raises
:class:`DeliveryError` saying whether a retry can help and after how long. Channels are built
from their spec by :func:`build_channel` under a :class:`NetworkPolicy` (the SSRF guard); a bad
spec or a blocked URL raises ``ConfigError`` naming the field, when the channel is saved.

    >>> from llmpulse.alerting.channels import NetworkPolicy, build_channel
    >>> ch = build_channel("audit", {"type": "function", "handler": print}, allow=NetworkPolicy())
    >>> ch.kind
    'function'

Importing this package loads no HTTP or SMTP code; each built-in kind is imported when first
built.
"""

from __future__ import annotations

from llmpulse.alerting.channels._base import (
    AlertItem,
    Channel,
    ChannelFactory,
    ChannelRegistry,
    DeliveryError,
    FunctionChannel,
    Notification,
    build_channel,
    default_registry,
    register_channel_type,
)
from llmpulse.alerting.channels._network import NetworkPolicy
from llmpulse.alerting.channels._spec import Secret, Spec

__all__ = [
    "AlertItem",
    "Channel",
    "ChannelFactory",
    "ChannelRegistry",
    "DeliveryError",
    "FunctionChannel",
    "NetworkPolicy",
    "Notification",
    "Secret",
    "Spec",
    "build_channel",
    "default_registry",
    "register_channel_type",
]
