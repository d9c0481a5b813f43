"""Slack incoming webhook against a real local receiver: Block Kit limits, splitting, 429."""

from __future__ import annotations

import json

import pytest

from llmpulse._config_file import FieldError
from llmpulse.alerting.channels import DeliveryError, NetworkPolicy, Notification, build_channel
from llmpulse.alerting.channels._http import Pacer
from llmpulse.alerting.channels.slack import SlackChannel, slack_messages
from tests.unit.alerting.channels.conftest import (
    LOCAL,
    FakeTime,
    make_item,
    make_notification,
)
from tests.unit.alerting.channels.receiver import Receiver, Reply


def slack(recv: Receiver, t: FakeTime, **spec: object) -> SlackChannel:
    pacer = Pacer(1.0, clock=t.clock, sleep=t.sleep)
    return SlackChannel(
        "ops", {"url": recv.url + "/services/T0/B0/XYZ", **spec}, LOCAL, pacer=pacer
    )


def assert_within_limits(message: dict) -> None:  # type: ignore[type-arg]
    blocks = message["blocks"]
    assert len(blocks) <= 50
    assert len(json.dumps(blocks, ensure_ascii=False)) <= 12_000
    assert len(message["text"]) <= 3000
    for b in blocks:
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000
            assert len(b["fields"]) <= 10
            assert all(len(f["text"]) <= 2000 for f in b["fields"])


class TestMessage:
    def test_one_alert_carries_the_evidence(self, recv: Receiver) -> None:
        """Header, the alert's summary, value/threshold/baseline/window fields and the link."""
        t = FakeTime()
        slack(recv, t).send(make_notification())
        (req,) = recv.requests
        assert req.path == "/services/T0/B0/XYZ"
        msg = req.json()
        assert_within_limits(msg)
        header, section = msg["blocks"]
        assert header["text"]["text"] == "[FIRING:1] high_latency (critical)"
        assert "p95 latency 6.1 s &gt; 5 s" in section["text"]["text"]
        assert (
            "<http://dash.example/traces?model=gpt-4o-0|Open in llmpulse>"
            in section["text"]["text"]
        )
        fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in section["fields"]}
        assert fields["*Value*"] == "6.1" and fields["*Threshold*"] == "5"
        assert fields["*Baseline*"] == "1.25" and fields["*Window*"] == "5m"
        assert msg["text"].startswith("[FIRING:1] high_latency (critical)")

    def test_user_text_cannot_mention_or_link(self) -> None:
        """`<!channel>` and `<http://x|y>` in a summary are escaped, not interpreted."""
        n = Notification(
            "k", "g", "firing", (make_item(summary="<!channel> see <http://evil|here>"),)
        )
        text = slack_messages(n)[0]["blocks"][1]["text"]["text"]
        assert "<!channel>" not in text and "&lt;!channel&gt;" in text

    def test_oversized_text_is_cut_to_the_limits(self) -> None:
        """A 10,000-character summary and long label values stay within Slack's limits."""
        item = make_item(summary="x" * 10_000, labels={"k": "v" * 5000}, rule="r" * 400)
        for msg in slack_messages(Notification("k", "g", "firing", (item,))):
            assert_within_limits(msg)

    def test_sixty_alerts_split_into_messages_spaced_a_second(self, recv: Receiver) -> None:
        """60 alerts: every message ≤ 50 blocks, sections ≤ 3000; all 60 arrive, 1 s apart."""
        t = FakeTime()
        slack(recv, t).send(make_notification(60))
        assert len(recv.requests) >= 2
        sections = []
        for req in recv.requests:
            msg = req.json()
            assert_within_limits(msg)
            sections += [b for b in msg["blocks"] if b["type"] == "section"]
        assert len(sections) == 60
        assert t.sleeps == [1.0] * (len(recv.requests) - 1)

    def test_a_huge_group_is_cut_with_a_count(self, recv: Receiver) -> None:
        """Past max_messages, the last message says how many alerts were left out."""
        slack(recv, FakeTime(), max_messages=2).send(make_notification(200))
        assert len(recv.requests) == 2
        last = recv.requests[-1].json()["blocks"][-1]
        shown = sum(1 for r in recv.requests for b in r.json()["blocks"] if b["type"] == "section")
        assert (
            last["type"] == "context"
            and f"{200 - shown} more alerts" in last["elements"][0]["text"]
        )


class TestAnswers:
    def test_429_is_retryable_after_retry_after(self, recv: Receiver) -> None:
        """A 429 with Retry-After: 2 is retryable after 2 s; the next attempt waits it out."""
        t = FakeTime()
        ch = slack(recv, t)
        recv.script = [Reply(429, b"rate_limited", {"Retry-After": "2"})]
        with pytest.raises(DeliveryError) as exc:
            ch.send(make_notification())
        assert exc.value.retryable and exc.value.retry_after == 2.0
        ch.send(make_notification())
        assert t.sleeps == [2.0] and len(recv.requests) == 2

    def test_long_rate_limit_defers_without_calling_slack(self, recv: Receiver) -> None:
        """Inside a 60 s Retry-After, a send raises retryable at once and Slack is not called."""
        t = FakeTime()
        ch = slack(recv, t)
        recv.script = [Reply(429, b"rate_limited", {"Retry-After": "60"})]
        with pytest.raises(DeliveryError):
            ch.send(make_notification())
        t.now += 10
        with pytest.raises(DeliveryError, match="rate limited") as exc:
            ch.send(make_notification())
        assert exc.value.retry_after == pytest.approx(50.0) and len(recv.requests) == 1

    def test_retry_resumes_at_the_failed_message(self, recv: Receiver) -> None:
        """Second message fails with 500: the retry posts it, not the first one again."""
        t = FakeTime()
        ch = slack(recv, t)
        recv.script = [Reply(200), Reply(500, b"rollup_error")]
        with pytest.raises(DeliveryError, match="500: rollup_error") as exc:
            ch.send(make_notification(60))
        assert exc.value.retryable
        ch.send(make_notification(60))
        parts = [r.json()["blocks"][0]["text"]["text"].rsplit("(", 1)[1] for r in recv.requests]
        total = int(parts[0].split("/")[1].rstrip(")"))
        expected = [f"{i}/{total})" for i in (1, 2, *range(2, total + 1))]
        assert total >= 2 and parts == expected

    @pytest.mark.parametrize(
        ("status", "body"),
        [(400, b"invalid_blocks"), (403, b"action_prohibited"), (404, b"channel_not_found"),
         (410, b"channel_is_archived")],
    )  # fmt: skip
    def test_slack_refusals_are_permanent(self, recv: Receiver, status: int, body: bytes) -> None:
        """Slack's 4xx answers are permanent and name Slack's error."""
        recv.script = [Reply(status, body)]
        with pytest.raises(DeliveryError, match=body.decode()) as exc:
            slack(recv, FakeTime()).send(make_notification())
        assert not exc.value.retryable


class TestConfig:
    def test_https_required_for_public_hosts(self) -> None:
        """http://hooks.slack.com is refused; https is needed unless the host is allow-listed."""
        with pytest.raises(FieldError, match="must be https"):
            build_channel("s", {"type": "slack", "url": "http://hooks.slack.com/services/x"},
                          allow=NetworkPolicy(resolver=lambda h, p: ["93.184.216.34"]))  # fmt: skip

    def test_internal_url_refused(self) -> None:
        """A Slack URL pointing at 169.254.169.254 is refused on build."""
        with pytest.raises(FieldError, match="link-local"):
            build_channel("s", {"type": "slack", "url": "https://169.254.169.254/services/x"},
                          allow=NetworkPolicy())  # fmt: skip
