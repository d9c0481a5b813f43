"""Discord webhook against a real local receiver: embed limits, mentions, rate-limit buckets."""

from __future__ import annotations

import json

import pytest

from llmpulse.alerting.channels import DeliveryError, Notification
from llmpulse.alerting.channels._http import Pacer
from llmpulse.alerting.channels.discord import DiscordChannel, discord_messages, embed_size
from tests.unit.alerting.channels.conftest import LOCAL, FakeTime, make_item, make_notification
from tests.unit.alerting.channels.receiver import Receiver, Reply


def discord(recv: Receiver, t: FakeTime, **spec: object) -> DiscordChannel:
    pacer = Pacer(0.0, clock=t.clock, sleep=t.sleep)
    url = recv.url + "/api/webhooks/123/TOKEN"
    return DiscordChannel("dc", {"url": url, **spec}, LOCAL, pacer=pacer)


def assert_within_limits(msg: dict) -> None:  # type: ignore[type-arg]
    assert len(msg["content"]) <= 2000 and len(msg["embeds"]) <= 10
    assert sum(embed_size(e) for e in msg["embeds"]) <= 6000
    assert msg["allowed_mentions"] == {"parse": []}
    for e in msg["embeds"]:
        assert len(e["title"]) <= 256 and len(e["description"]) <= 4096
        assert len(e["fields"]) <= 25 and len(e["footer"]["text"]) <= 2048
        assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in e["fields"])


class TestMessage:
    def test_embed_carries_the_evidence(self, recv: Receiver) -> None:
        """One embed per alert with value, threshold, baseline, window, link; wait=true."""
        discord(recv, FakeTime(), username="llmpulse").send(make_notification())
        (req,) = recv.requests
        assert req.path == "/api/webhooks/123/TOKEN?wait=true"
        msg = req.json()
        assert_within_limits(msg)
        assert msg["username"] == "llmpulse"
        (embed,) = msg["embeds"]
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert (fields["Value"], fields["Threshold"], fields["Baseline"], fields["Window"]) == (
            "6.1", "5", "1.25", "5m"
        )  # fmt: skip
        assert embed["url"] == "http://dash.example/traces?model=gpt-4o-0"
        assert embed["timestamp"] == "2025-12-02T22:45:00Z"

    def test_many_large_alerts_split_within_limits(self, recv: Receiver) -> None:
        """25 alerts with huge text: every message ≤ 10 embeds and ≤ 6000 characters; all sent."""
        items = tuple(
            make_item(i, summary="s" * 5000, labels={f"l{j}": "v" * 2000 for j in range(30)})
            for i in range(25)
        )
        discord(recv, FakeTime(), max_messages=30).send(Notification("k", "g", "firing", items))
        msgs = [r.json() for r in recv.requests]
        for m in msgs:
            assert_within_limits(m)
        assert sum(len(m["embeds"]) for m in msgs) == 25 and len(msgs) >= 3

    def test_content_with_everyone_does_not_ping(self) -> None:
        """A rule named @everyone cannot mention: allowed_mentions parses nothing."""
        msg = discord_messages(Notification("k", "g", "firing", (make_item(rule="@everyone"),)))[0]
        assert "@everyone" in msg["content"] and msg["allowed_mentions"] == {"parse": []}


class TestRateLimits:
    def test_429_waits_the_longest_named_time(self, recv: Receiver) -> None:
        """A 429 is retried after max(Retry-After, body retry_after, bucket reset)."""
        t = FakeTime()
        ch = discord(recv, t)
        body = json.dumps({"message": "You are being rate limited.", "retry_after": 1.5,
                           "global": False}).encode()  # fmt: skip
        recv.script = [Reply(429, body, {"Retry-After": "1", "X-RateLimit-Reset-After": "1.2",
                                         "X-RateLimit-Scope": "user"})]  # fmt: skip
        with pytest.raises(DeliveryError, match="429") as exc:
            ch.send(make_notification())
        assert exc.value.retryable and exc.value.retry_after == 1.5
        ch.send(make_notification())
        assert t.sleeps == [1.5] and len(recv.requests) == 2

    def test_empty_bucket_waits_before_the_next_message(self, recv: Receiver) -> None:
        """After X-RateLimit-Remaining: 0, the next message waits X-RateLimit-Reset-After."""
        t = FakeTime()
        recv.script = [Reply(200, b"{}", {"X-RateLimit-Remaining": "0",
                                          "X-RateLimit-Reset-After": "2.5"})]  # fmt: skip
        discord(recv, t).send(make_notification(12))  # two messages
        assert len(recv.requests) == 2 and t.sleeps == [2.5]

    def test_long_reset_defers_without_calling_discord(self, recv: Receiver) -> None:
        """A 30 s bucket reset: the next send raises retryable with the wait, Discord untouched."""
        t = FakeTime()
        ch = discord(recv, t)
        recv.script = [Reply(200, b"{}", {"X-RateLimit-Remaining": "0",
                                          "X-RateLimit-Reset-After": "30"})]  # fmt: skip
        ch.send(make_notification(key="first"))
        with pytest.raises(DeliveryError) as exc:
            ch.send(make_notification(key="second"))
        assert exc.value.retryable and exc.value.retry_after == 30.0 and len(recv.requests) == 1

    def test_a_delivered_notification_is_not_posted_again(self, recv: Receiver) -> None:
        """The same idempotency key again (a resend after a lost acknowledgement) posts nothing."""
        ch = discord(recv, FakeTime())
        ch.send(make_notification(key="k1"))
        ch.send(make_notification(key="k1"))
        assert len(recv.requests) == 1

    def test_unknown_webhook_is_permanent(self, recv: Receiver) -> None:
        """404 (10015 unknown webhook): permanent, saying to fix the channel."""
        recv.script = [Reply(404, b'{"message": "Unknown Webhook", "code": 10015}')]
        with pytest.raises(DeliveryError, match="unknown webhook") as exc:
            discord(recv, FakeTime()).send(make_notification())
        assert not exc.value.retryable

    def test_invalid_form_body_names_the_code(self, recv: Receiver) -> None:
        """400 with code 50035 is permanent and names the code."""
        recv.script = [Reply(400, b'{"message": "Invalid Form Body", "code": 50035}')]
        with pytest.raises(DeliveryError, match="50035") as exc:
            discord(recv, FakeTime()).send(make_notification())
        assert not exc.value.retryable
