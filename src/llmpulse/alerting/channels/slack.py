"""Slack incoming webhook: Block Kit messages within Slack's limits.

Spec (YAML)::

    type: slack
    url_env: SLACK_WEBHOOK_URL      # the webhook URL is a secret: url / url_env / url_file
    max_messages: 5                 # a huge group is cut, with a count of what was left out
    timeout: 10s

Limits kept (Slack's Block Kit reference and changelog): at most 50 blocks per message, a
header of 150 characters, section text of 3000, 10 fields of 2000 each, and about 12,000
characters of blocks per message (Slack rejects messages near 13k with ``msg_blocks_too_long``,
bolt-js#2509). One alert is one section block, so a group of 60 alerts goes out as two
messages; a retry after a failed second message resumes at that message.

Slack allows about one message a second per webhook: messages of one notification are spaced a
second apart, and a 429's ``Retry-After`` is honoured (the outbox retries no sooner). Answers:
200 ``ok``; 400 ``invalid_payload``/``invalid_blocks``, 403, 404 ``channel_not_found`` and 410
``channel_is_archived`` are permanent; 429 and 5xx are retried.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from llmpulse.alerting.channels._base import AlertItem, Notification
from llmpulse.alerting.channels._format import facts, title, truncate
from llmpulse.alerting.channels._http import (
    Answer,
    Pacer,
    PartPoster,
    chunks,
    raise_for_status,
    retry_after,
    tls_context,
)
from llmpulse.alerting.channels._network import NetworkPolicy
from llmpulse.alerting.channels._spec import Spec

__all__ = ["SlackChannel", "slack_messages"]

MAX_BLOCKS = 50
HEADER_CHARS = 150
SECTION_CHARS = 3000
FIELDS = 10
FIELD_CHARS = 2000
#: Below the ~13k characters of blocks where Slack answers msg_blocks_too_long.
MESSAGE_CHARS = 12_000
_TOKEN = re.compile(r"^[a-z_]{1,64}$")


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) as entities, so user text cannot link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    if not url.startswith(("http://", "https://")):
        return _escape(url)
    safe = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{safe}|{label}>"


def _section(item: AlertItem) -> dict[str, Any]:
    head = (
        f"*{item.status.upper()}* `{item.severity}` *{_escape(item.rule)}*: {_escape(item.summary)}"
    )
    if item.link:
        head += "\n" + _link(item.link, "Open in llmpulse")
    fields = [
        {"type": "mrkdwn", "text": truncate(f"*{_escape(name)}*\n{_escape(value)}", FIELD_CHARS)}
        for name, value in facts(item)[:FIELDS]
    ]
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(head, SECTION_CHARS)},
            "fields": fields}  # fmt: skip


def _size(block: dict[str, Any]) -> int:
    return len(json.dumps(block, ensure_ascii=False))


def slack_messages(notification: Notification, *, max_messages: int = 5) -> list[dict[str, Any]]:
    """The Slack payloads for ``notification``: ≤ 50 blocks and ≤ 12k characters each."""
    sections = [_section(i) for i in notification.items]
    runs = chunks([_size(b) for b in sections], max_count=MAX_BLOCKS - 2, max_total=MESSAGE_CHARS)
    left_out = 0
    if len(runs) > max_messages:
        left_out = len(sections) - runs[max_messages - 1][1]
        runs = runs[:max_messages]
    head = title(notification)
    messages = []
    for n, (start, stop) in enumerate(runs, 1):
        part = f" ({n}/{len(runs)})" if len(runs) > 1 else ""
        blocks: list[dict[str, Any]] = [
            {"type": "header",
             "text": {"type": "plain_text", "text": truncate(head + part, HEADER_CHARS)}},
            *sections[start:stop],
        ]  # fmt: skip
        if left_out and n == len(runs):
            more = f"…and {left_out} more alerts in this group, not shown here."
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
        summaries = "; ".join(i.summary for i in notification.items[start:stop])
        messages.append(
            {"text": truncate(f"{head}{part}: {summaries}", SECTION_CHARS), "blocks": blocks}
        )
    return messages


class SlackChannel:
    """Posts a notification to a Slack incoming webhook as Block Kit messages."""

    kind = "slack"

    def __init__(self, name: str, spec: Mapping[str, Any], policy: NetworkPolicy,
                 *, pacer: Pacer | None = None) -> None:  # fmt: skip
        s = Spec(spec, {"timeout", "max_messages", "ca_file"}, {"url"})
        url = s.secret("url", required=True)
        assert url is not None
        self.name = name
        self._url_source = url.source
        self._target = policy.check_url(url.reveal(), field="url", require_https=True)
        self._timeout_s = s.seconds("timeout", 10.0, hi=120)
        self._max_messages = s.integer("max_messages", 5, lo=1, hi=50)
        tls = tls_context(s.text("ca_file")) if self._target.scheme == "https" else None
        self._poster = PartPoster(policy, self._target, timeout_s=self._timeout_s, tls=tls,
                                  pacer=pacer or Pacer(1.0))  # fmt: skip

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any], policy: NetworkPolicy) -> SlackChannel:
        """Build from a spec (the registry's factory)."""
        return cls(name, spec, policy)

    def send(self, notification: Notification) -> None:
        """Post every message of the notification not yet delivered, spaced by Slack's limit."""
        what = f"slack {self.name!r} ({self._target.masked})"
        messages = slack_messages(notification, max_messages=self._max_messages)
        self._poster.send(notification.idempotency_key, messages, what, self._check)

    def _check(self, answer: Answer, what: str) -> None:
        if answer.status == 429:
            self._poster.pacer.hold(retry_after(answer.headers) or 1.0)
        text = answer.body.decode("utf-8", "replace").strip()
        raise_for_status(answer, what=what, detail=text if _TOKEN.match(text) else "")

    def describe(self) -> dict[str, Any]:
        """Type and the masked webhook URL (the URL is a secret)."""
        return {"name": self.name, "type": self.kind, "url": self._target.masked,
                "url_source": self._url_source, "timeout_s": self._timeout_s,
                "max_messages": self._max_messages}  # fmt: skip
