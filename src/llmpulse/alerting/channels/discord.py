"""Discord webhook: one embed per alert, within Discord's limits, obeying its rate-limit headers.

Spec (YAML)::

    type: discord
    url_env: DISCORD_WEBHOOK_URL    # the webhook URL is a secret: url / url_env / url_file
    username: llmpulse              # optional display name
    max_messages: 5

Limits kept (discord-api-docs ``message.mdx``): ``content`` ≤ 2000 characters; ≤ 10 embeds per
message; per embed a title of 256, a description of 4096, ≤ 25 fields of 256/1024, a footer of
2048; and ≤ 6000 characters summed over a message's embeds. ``allowed_mentions`` is empty, so
an alert's text cannot ping ``@everyone``. The URL gets ``?wait=true``: without it Discord
answers 204 even when it drops the message.

Rate limits are read, not assumed (``topics/rate-limits.mdx``): after a message that leaves
``X-RateLimit-Remaining: 0``, the next one waits ``X-RateLimit-Reset-After``; a 429 is retried
after the longest of its ``Retry-After`` header, its body's ``retry_after`` and the bucket's
reset, and the channel itself refuses to call Discord again before then (10,000 refused
requests in 10 minutes get the server's address banned). A 404 (unknown webhook, 10015), 401
and 403 are permanent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmpulse.alerting.channels._base import AlertItem, DeliveryError, Notification
from llmpulse.alerting.channels._format import facts, iso, title, truncate
from llmpulse.alerting.channels._http import (
    Answer,
    Pacer,
    PartPoster,
    chunks,
    raise_for_status,
    retry_after,
    tls_context,
)
from llmpulse.alerting.channels._network import NetworkPolicy, Target
from llmpulse.alerting.channels._spec import Spec

__all__ = ["DiscordChannel", "discord_messages", "embed_size"]

CONTENT_CHARS = 2000
EMBEDS = 10
TITLE_CHARS = 256
DESCRIPTION_CHARS = 4096
FIELDS = 25
FIELD_NAME_CHARS = 256
FIELD_VALUE_CHARS = 1024
FOOTER_CHARS = 2048
MESSAGE_EMBED_CHARS = 6000
#: One alert's embed is kept well under the message total, so any alert fits alone.
EMBED_CHARS = 4000

_COLORS = {"critical": 0xE01E5A, "warning": 0xECB22E, "info": 0x439FE0, "resolved": 0x2EB67D}


def embed_size(embed: Mapping[str, Any]) -> int:
    """Characters Discord counts toward the 6000 of a message for this embed."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += len(embed.get("footer", {}).get("text", "")) + len(
        embed.get("author", {}).get("name", "")
    )
    return size + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


def _embed(item: AlertItem) -> dict[str, Any]:
    description = item.summary
    if item.link:
        description += f"\n[Open in llmpulse]({item.link})"
    embed: dict[str, Any] = {
        "title": truncate(f"{item.status.upper()} [{item.severity}] {item.rule}", TITLE_CHARS),
        "description": truncate(description, 1500),
        "color": _COLORS["resolved" if item.status == "resolved" else item.severity],
        "fields": [],
        "footer": {"text": truncate(f"llmpulse · {item.fingerprint}", 200)},
        "timestamp": iso(item.starts_at),
    }
    if item.link and item.link.startswith(("http://", "https://")):
        embed["url"] = item.link
    for name, value in facts(item)[:FIELDS]:
        field: dict[str, Any] = {"name": truncate(name, FIELD_NAME_CHARS),
                 "value": truncate(value or "-", FIELD_VALUE_CHARS), "inline": True}  # fmt: skip
        if embed_size(embed) + len(field["name"]) + len(field["value"]) > EMBED_CHARS:
            break
        embed["fields"].append(field)
    return embed


def discord_messages(notification: Notification, *, max_messages: int = 5,
                     username: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The Discord payloads: ≤ 10 embeds and ≤ 6000 embed characters each."""
    embeds = [_embed(i) for i in notification.items]
    runs = chunks([embed_size(e) for e in embeds], max_count=EMBEDS, max_total=MESSAGE_EMBED_CHARS)
    left_out = 0
    if len(runs) > max_messages:
        left_out = len(embeds) - runs[max_messages - 1][1]
        runs = runs[:max_messages]
    head = title(notification)
    messages = []
    for n, (start, stop) in enumerate(runs, 1):
        content = head + (f" ({n}/{len(runs)})" if len(runs) > 1 else "")
        if left_out and n == len(runs):
            content += f"\n…and {left_out} more alerts in this group, not shown here."
        message: dict[str, Any] = {
            "content": truncate(content, CONTENT_CHARS),
            "embeds": embeds[start:stop],
            "allowed_mentions": {"parse": []},
        }
        if username:
            message["username"] = username
        messages.append(message)
    return messages


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out >= 0 else None


def _rate_limit_wait(answer: Answer) -> float | None:
    """The longest wait a 429 answer names (header, body, bucket reset)."""
    waits = [retry_after(answer.headers), _float(answer.headers.get("x-ratelimit-reset-after"))]
    try:
        body = json.loads(answer.body)
    except ValueError:
        body = None
    if isinstance(body, dict):
        waits.append(_float(body.get("retry_after")))
    known = [w for w in waits if w is not None]
    return max(known) if known else None


class DiscordChannel:
    """Posts a notification to a Discord webhook as embeds."""

    kind = "discord"

    def __init__(self, name: str, spec: Mapping[str, Any], policy: NetworkPolicy,
                 *, pacer: Pacer | None = None) -> None:  # fmt: skip
        s = Spec(spec, {"timeout", "max_messages", "username", "ca_file"}, {"url"})
        url = s.secret("url", required=True)
        assert url is not None
        self.name = name
        self._url_source = url.source
        target = policy.check_url(url.reveal(), field="url", require_https=True)
        sep = "&" if "?" in target.path else "?"
        path = target.path if "wait=" in target.path else f"{target.path}{sep}wait=true"
        self._target = Target(
            target.scheme, target.host, target.port, path, target.ip, target.allowed
        )
        self._timeout_s = s.seconds("timeout", 10.0, hi=120)
        self._max_messages = s.integer("max_messages", 5, lo=1, hi=50)
        username = s.text("username")
        self._username = truncate(username, 80) if username else None
        tls = tls_context(s.text("ca_file")) if self._target.scheme == "https" else None
        self._poster = PartPoster(policy, self._target, timeout_s=self._timeout_s, tls=tls,
                                  pacer=pacer or Pacer(0.0))  # fmt: skip

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any], policy: NetworkPolicy) -> DiscordChannel:
        """Build from a spec (the registry's factory)."""
        return cls(name, spec, policy)

    def send(self, notification: Notification) -> None:
        """Post every message not yet delivered, waiting out Discord's bucket between them."""
        what = f"discord {self.name!r} ({self._target.masked})"
        messages = discord_messages(notification, max_messages=self._max_messages,
                                    username=self._username)  # fmt: skip
        self._poster.send(notification.idempotency_key, messages, what, self._check)

    def _check(self, answer: Answer, what: str) -> None:
        if answer.status == 429:
            wait = _rate_limit_wait(answer) or 1.0
            self._poster.pacer.hold(wait)
            scope = answer.headers.get("x-ratelimit-scope", "")
            raise DeliveryError(f"{what} answered 429 (rate limited{', ' + scope if scope else ''})",
                                retryable=True, retry_after=wait)  # fmt: skip
        if answer.headers.get("x-ratelimit-remaining") == "0":
            self._poster.pacer.hold(_float(answer.headers.get("x-ratelimit-reset-after")) or 0.0)
        if answer.status == 404:
            raise DeliveryError(f"{what} answered 404: unknown webhook; fix or remove this channel",
                                retryable=False)  # fmt: skip
        detail = ""
        try:
            body = json.loads(answer.body) if answer.status >= 400 else None
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), int):
            detail = f"Discord error code {body['code']}"
        raise_for_status(answer, what=what, detail=detail)

    def describe(self) -> dict[str, Any]:
        """Type and the masked webhook URL (the URL is a secret)."""
        return {"name": self.name, "type": self.kind, "url": self._target.masked,
                "url_source": self._url_source, "username": self._username,
                "timeout_s": self._timeout_s, "max_messages": self._max_messages}  # fmt: skip
