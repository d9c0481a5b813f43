"""Alertmanager payloads and answers against a local receiver (the real Alertmanager is in
tests/e2e/test_alertmanager_forwarding.py)."""

from __future__ import annotations

import pytest

from llmpulse._config_file import FieldError
from llmpulse.alerting.channels import DeliveryError, NetworkPolicy, Notification, build_channel
from llmpulse.alerting.channels.alertmanager import AlertmanagerChannel, alertmanager_alerts
from tests.unit.alerting.channels.conftest import LOCAL, make_item, make_notification
from tests.unit.alerting.channels.receiver import Receiver, Reply, receiver


class TestPayload:
    def test_firing_ends_four_resends_away(self) -> None:
        """A firing alert's endsAt is now + 4 × resend_interval; startsAt is when it began."""
        (a,) = alertmanager_alerts(make_notification(), now=1_764_716_000.0, resend_interval_s=600)
        assert a["startsAt"] == "2025-12-02T22:45:00Z"
        assert a["endsAt"] == "2025-12-02T23:33:20Z"  # 1_764_716_000 + 2400
        assert a["labels"]["alertname"] == "high_latency" and a["labels"]["severity"] == "critical"
        assert a["generatorURL"] == "http://dash.example/traces?model=gpt-4o-0"

    def test_resolved_carries_its_end(self) -> None:
        """A resolved alert is sent with its own end time."""
        (a,) = alertmanager_alerts(make_notification(status="resolved"), now=1_764_800_000.0)
        assert a["endsAt"] == "2025-12-02T22:55:00Z"

    def test_label_names_are_made_valid(self) -> None:
        """Label names become [a-zA-Z_][a-zA-Z0-9_]*; empty values are dropped."""
        item = make_item(labels={"gen_ai.model": "x", "9lives": "y", "empty": ""})
        (a,) = alertmanager_alerts(Notification("k", "g", "firing", (item,)), now=0.0,
                                   labels={"team-name": "ml"})  # fmt: skip
        assert a["labels"] == {"gen_ai_model": "x", "_9lives": "y", "team_name": "ml",
                               "alertname": "high_latency", "severity": "critical"}  # fmt: skip


class TestAnswers:
    def test_posts_to_the_v2_path(self, recv: Receiver) -> None:
        """The base URL gets /api/v2/alerts; the body is the JSON array of alerts."""
        ch = AlertmanagerChannel("am", {"url": recv.url + "/am/"}, LOCAL, clock=lambda: 0.0)
        ch.send(make_notification(3))
        (req,) = recv.requests
        assert req.path == "/am/api/v2/alerts" and len(req.json()) == 3

    def test_400_is_permanent_with_the_reason(self, recv: Receiver) -> None:
        """A 400 names Alertmanager's explanation and is not retried."""
        recv.script = [Reply(400, b'{"code":400,"message":"start time must be before end time"}')]
        with pytest.raises(DeliveryError, match="start time must be before end time") as exc:
            build_channel("am", {"type": "alertmanager", "url": recv.url}, allow=LOCAL).send(
                make_notification()
            )
        assert not exc.value.retryable

    def test_every_instance_down_is_retryable(self) -> None:
        """When no instance accepts, the failure is retryable (with the longest Retry-After)."""
        with receiver() as a, receiver() as b:
            a.default = Reply(503, headers={"Retry-After": "3"})
            b.default = Reply(500)
            ch = build_channel("am", {"type": "alertmanager", "url": [a.url, b.url]}, allow=LOCAL)
            with pytest.raises(DeliveryError) as exc:
                ch.send(make_notification())
            assert exc.value.retryable and exc.value.retry_after == 3.0
            assert len(a.requests) == len(b.requests) == 1

    def test_internal_url_and_query_refused(self) -> None:
        """An internal Alertmanager needs the allow-list; a query in the base URL is refused."""
        with pytest.raises(FieldError, match="private"):
            build_channel("am", {"type": "alertmanager", "url": "http://10.0.0.9:9093"},
                          allow=NetworkPolicy())  # fmt: skip
        with pytest.raises(FieldError, match=r"url\[1\]: .*loopback"):
            build_channel("am", {"type": "alertmanager",
                                 "url": ["http://93.184.216.34:9093", "http://127.0.0.1:9093"]},
                          allow=NetworkPolicy())  # fmt: skip
        with pytest.raises(FieldError, match="takes no query"):
            build_channel("am", {"type": "alertmanager", "url": "http://127.0.0.1:9093/?x=1"},
                          allow=LOCAL)  # fmt: skip


class TestAuthorization:
    def test_bearer_sent_to_every_instance(self, recv: Receiver) -> None:
        """An Alertmanager behind an auth proxy gets the Authorization header."""
        ch = build_channel("am", {"type": "alertmanager", "url": recv.url,
                                  "authorization": "Basic YWxlcnRzOnB3"}, allow=LOCAL)  # fmt: skip
        ch.send(make_notification())
        assert recv.requests[0].headers["authorization"] == "Basic YWxlcnRzOnB3"
        assert "YWxlcnRzOnB3" not in str(ch.describe())
