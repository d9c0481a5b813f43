"""Secrets (Slack and Discord URLs, webhook URL and signing secret, SMTP password) come from the
environment or a file and never appear in describe(), in any log line, or in a delivery error,
whether the send succeeds, fails, times out or is blocked."""

from __future__ import annotations

import base64
import json
import logging
import traceback
from pathlib import Path

import pytest

from llmpulse.alerting.channels import Channel, DeliveryError, build_channel
from llmpulse.alerting.channels._http import Pacer
from llmpulse.alerting.channels.slack import SlackChannel
from tests.unit.alerting.channels.conftest import LOCAL, FakeTime, make_notification
from tests.unit.alerting.channels.receiver import Receiver, Reply

SLACK_TOKEN = "T0SLACK/B0SLACK/slacksecrettoken123"
DISCORD_TOKEN = "987654/discordsecrettoken456"
HOOK_TOKEN = "hookquerysecret789"
SIGNING_KEY = base64.b64encode(b"k" * 32).decode()
SMTP_PASSWORD = "smtp-password-000"
SECRETS = [SLACK_TOKEN, "slacksecrettoken123", "discordsecrettoken456", HOOK_TOKEN, SIGNING_KEY,
           SMTP_PASSWORD]  # fmt: skip


def clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret {secret[:6]}... leaked: {text[:300]}"


@pytest.fixture
def channels(recv: Receiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Channel]:
    monkeypatch.setenv("SLACK_URL", f"{recv.url}/services/{SLACK_TOKEN}")
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    (tmp_path / "discord").write_text(f"{recv.url}/api/webhooks/{DISCORD_TOKEN}\n")
    (tmp_path / "whsec").write_text(f"whsec_{SIGNING_KEY}")
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
    specs = {
        "slack": {"type": "slack", "url_env": "SLACK_URL"},
        "discord": {"type": "discord", "url_file": str(tmp_path / "discord")},
        "hook": {"type": "webhook", "url": f"{recv.url}/in?token=${{HOOK_TOKEN}}",
                 "secret_file": str(tmp_path / "whsec"), "timeout": 0.3},
        "mail": {"type": "email", "host": "127.0.0.1", "port": 1, "username": "u",
                 "password_env": "SMTP_PASSWORD", "from": "a@example.com", "to": "b@example.com"},
    }  # fmt: skip
    built = [build_channel(name, spec, allow=LOCAL) for name, spec in specs.items()]
    # Slack's pacing (one message a second) on a fake clock, as in test_slack.py: with the real
    # one every send here slept ~0.8 s, which says nothing about secrets. The channel is built
    # from the same spec, so its URL still comes from SLACK_URL.
    t = FakeTime()
    built[0] = SlackChannel("slack", specs["slack"], LOCAL,
                            pacer=Pacer(1.0, clock=t.clock, sleep=t.sleep))  # fmt: skip
    return built


class TestMasking:
    def test_describe_masks_every_secret(self, channels: list[Channel]) -> None:
        """describe() shows where each secret comes from, never the secret."""
        described = {c.name: c.describe() for c in channels}
        clean(json.dumps(described))
        clean(repr(vars(channels[0])))
        assert described["slack"]["url"].endswith("/***")
        assert described["slack"]["url_source"] == "env SLACK_URL"
        assert described["discord"]["url_source"].startswith("file ")
        assert described["hook"]["url_source"] == "env HOOK_TOKEN"
        assert described["mail"]["password"] == "***"

    def test_logs_and_errors_never_show_secrets(
        self, channels: list[Channel], recv: Receiver, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Every log record (llmpulse, httpx, httpcore at DEBUG) and every error is clean."""
        caplog.set_level(logging.DEBUG)
        replies = [Reply(200), Reply(500, b"server_error"), Reply(429, headers={"Retry-After": "0"}),
                   Reply(302, headers={"Location": "http://127.0.0.1:9/"}), Reply(200, delay_s=0.6)]  # fmt: skip
        errors: list[DeliveryError] = []
        for i, reply in enumerate(replies):
            for ch in channels:
                recv.script = [reply]
                try:
                    ch.send(make_notification(key=f"k{i}-{ch.name}"))
                except DeliveryError as exc:
                    errors.append(exc)
        assert len(recv.requests) >= 12 and len(errors) >= 10
        for exc in errors:
            clean("".join(traceback.format_exception(exc)))
        assert caplog.records, "nothing was logged: the test would prove nothing"
        for record in caplog.records:
            if record.name.startswith("mail.log"):
                continue  # the test SMTP server's own log, not llmpulse's
            clean(record.getMessage())
            if record.exc_info:
                clean("".join(traceback.format_exception(*record.exc_info)))
