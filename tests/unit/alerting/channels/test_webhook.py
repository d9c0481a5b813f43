"""The generic webhook against a real local HTTP receiver: Standard Webhooks signing, evidence
in the body, retry decisions, redirects, timeouts and the SSRF guard at send time."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest

from llmpulse._config_file import FieldError
from llmpulse.alerting.channels import DeliveryError, NetworkPolicy, build_channel
from tests.unit.alerting.channels.certs import self_signed, server_context
from tests.unit.alerting.channels.conftest import LOCAL, make_notification
from tests.unit.alerting.channels.receiver import Receiver, Reply, receiver
from tests.unit.alerting.channels.test_network import FakeDNS

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def verify(key: bytes, headers: dict[str, str], body: bytes) -> bool:
    """What a Standard Webhooks receiver does: any v1 signature over id.timestamp.body."""
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(sig.split(",", 1)[1], expected)
        for sig in headers["webhook-signature"].split()
    )


class TestDelivery:
    def test_signed_body_carries_the_evidence(self, recv: Receiver) -> None:
        """The receiver verifies the signature over the exact bytes; the body has the evidence."""
        ch = build_channel("hook", {"type": "webhook", "url": recv.url + "/in?x=1", "secret": SECRET},
                           allow=LOCAL)  # fmt: skip
        ch.send(make_notification(2))
        (req,) = recv.requests
        assert req.path == "/in?x=1" and req.headers["content-type"] == "application/json"
        assert req.headers["webhook-id"] == "nk-1"
        assert req.headers["webhook-signature"].startswith("v1,")
        assert verify(KEY, req.headers, req.body)
        assert not verify(bytes(32), req.headers, req.body)
        body = req.json()
        assert body["idempotency_key"] == "nk-1" and body["status"] == "firing"
        a = body["alerts"][0]
        assert (a["value"], a["threshold"], a["baseline"], a["window_s"]) == (6.1, 5.0, 1.25, 300.0)
        assert a["link"] == "http://dash.example/traces?model=gpt-4o-0"
        assert a["starts_at"] == "2025-12-02T22:45:00Z" and a["evidence"] == {"calls": 1200}

    def test_retry_keeps_the_id_and_resigns(self, recv: Receiver) -> None:
        """A retry carries the same webhook-id (the receiver's dedupe key), freshly signed."""
        clock = iter([1000.0, 1060.0])
        from llmpulse.alerting.channels.webhook import WebhookChannel

        ch = WebhookChannel("h", {"url": recv.url, "secret": SECRET}, LOCAL,
                            clock=lambda: next(clock))  # fmt: skip
        recv.script = [Reply(500, b"down")]
        with pytest.raises(DeliveryError) as exc:
            ch.send(make_notification())
        assert exc.value.retryable
        ch.send(make_notification())
        first, second = recv.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == "nk-1"
        assert (first.headers["webhook-timestamp"], second.headers["webhook-timestamp"]) == (
            "1000",
            "1060",
        )
        assert first.body == second.body and verify(KEY, second.headers, second.body)

    def test_rotation_sends_one_signature_per_secret(self, recv: Receiver) -> None:
        """Two secrets (rotation) give two v1 signatures; either one verifies."""
        new = bytes(range(1, 33))
        secrets = f"{SECRET} whsec_{base64.b64encode(new).decode()}"
        build_channel("h", {"type": "webhook", "url": recv.url, "secret": secrets},
                      allow=LOCAL).send(make_notification())  # fmt: skip
        (req,) = recv.requests
        assert len(req.headers["webhook-signature"].split()) == 2
        assert verify(KEY, req.headers, req.body) and verify(new, req.headers, req.body)

    def test_numpy_and_datetime_evidence_is_sent(self, recv: Receiver) -> None:
        """Evidence straight from detection (numpy scalars, arrays, datetimes) is serialised."""
        import datetime

        import numpy as np

        from llmpulse.alerting.channels import Notification
        from tests.unit.alerting.channels.conftest import make_item

        evidence = {"calls": np.int64(1200), "series": np.array([1.5, 2.0]),
                    "at": datetime.datetime(2026, 12, 2, tzinfo=datetime.timezone.utc)}  # fmt: skip
        item = make_item(0, evidence=evidence, value=np.float64(6.5))
        build_channel("h", {"type": "webhook", "url": recv.url}, allow=LOCAL).send(
            Notification("k", "g", "firing", (item,))
        )
        sent = recv.requests[0].json()["alerts"][0]
        assert sent["evidence"] == {"calls": 1200, "series": [1.5, 2.0],
                                    "at": "2026-12-02T00:00:00+00:00"}  # fmt: skip
        assert sent["value"] == 6.5

    def test_unsigned_when_no_secret(self, recv: Receiver) -> None:
        """Without a secret the id and timestamp are still sent, and no signature."""
        build_channel("h", {"type": "webhook", "url": recv.url}, allow=LOCAL).send(
            make_notification()
        )
        assert "webhook-signature" not in recv.requests[0].headers
        assert recv.requests[0].headers["webhook-id"] == "nk-1"

    @pytest.mark.parametrize(
        ("secret", "needle"),
        [("plain", "must start with whsec_"), ("whsec_***", "not base64"),
         ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes")],
    )  # fmt: skip
    def test_bad_secret_is_refused_on_build(self, secret: str, needle: str) -> None:
        """A secret that is not whsec_ + base64 of 24-64 bytes is refused, naming `secret`."""
        with pytest.raises(FieldError, match=needle) as exc:
            build_channel("h", {"type": "webhook", "url": "http://127.0.0.1:1/", "secret": secret},
                          allow=LOCAL)  # fmt: skip
        assert exc.value.field == "secret"


class TestAnswers:
    @pytest.mark.parametrize(
        ("reply", "retryable", "after"),
        [
            (Reply(500, b"boom"), True, None),
            (Reply(502), True, None),
            (Reply(503, headers={"Retry-After": "7"}), True, 7.0),
            (Reply(429, headers={"Retry-After": "2"}), True, 2.0),
            (Reply(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), True, 0.0),
            (Reply(408), True, None),
            (Reply(400), False, None),
            (Reply(401), False, None),
            (Reply(404), False, None),
            (Reply(410), False, None),
        ],
    )
    def test_status_decides_retry(self, recv: Receiver, reply: Reply, retryable: bool,
                                  after: float | None) -> None:  # fmt: skip
        """5xx/408/429 are retryable with the receiver's Retry-After; other 4xx are permanent."""
        recv.script = [reply]
        ch = build_channel("h", {"type": "webhook", "url": recv.url}, allow=LOCAL)
        with pytest.raises(DeliveryError) as exc:
            ch.send(make_notification())
        assert (exc.value.retryable, exc.value.retry_after) == (retryable, after)
        assert str(reply.status) in str(exc.value)

    def test_410_says_to_disable(self, recv: Receiver) -> None:
        """410 Gone is permanent and says the receiver wants the endpoint disabled."""
        recv.script = [Reply(410)]
        with pytest.raises(DeliveryError, match="disable this endpoint") as exc:
            build_channel("h", {"type": "webhook", "url": recv.url}, allow=LOCAL).send(
                make_notification()
            )
        assert not exc.value.retryable

    def test_redirect_to_internal_is_not_followed(self, recv: Receiver) -> None:
        """A 302 to another (internal) host is a permanent failure; that host gets nothing."""
        with receiver("127.0.0.2") as inner:
            recv.script = [Reply(302, headers={"Location": inner.url + "/admin"})]
            ch = build_channel("h", {"type": "webhook", "url": recv.url}, allow=LOCAL)
            with pytest.raises(DeliveryError, match="redirects are not followed") as exc:
                ch.send(make_notification())
            assert not exc.value.retryable and inner.requests == []

    def test_timeout_is_retryable(self, recv: Receiver) -> None:
        """A receiver slower than the timeout gives a retryable DeliveryError."""
        recv.script = [Reply(200, delay_s=1.5)]
        ch = build_channel("h", {"type": "webhook", "url": recv.url, "timeout": 0.3}, allow=LOCAL)
        with pytest.raises(DeliveryError, match="timed out") as exc:
            ch.send(make_notification())
        assert exc.value.retryable

    def test_connection_refused_is_retryable(self) -> None:
        """Nothing listening: retryable."""
        with receiver() as r:
            url = r.url
        ch = build_channel("h", {"type": "webhook", "url": url}, allow=LOCAL)
        with pytest.raises(DeliveryError, match="cannot connect") as exc:
            ch.send(make_notification())
        assert exc.value.retryable


class TestSsrfOnSend:
    def test_internal_url_refused_on_build_without_allow_list(self, recv: Receiver) -> None:
        """The receiver's own 127.0.0.1 URL is refused under the default policy."""
        with pytest.raises(FieldError, match="loopback") as exc:
            build_channel("h", {"type": "webhook", "url": recv.url}, allow=NetworkPolicy())
        assert exc.value.field == "url"

    def test_name_that_turns_internal_is_refused_on_send(self, recv: Receiver) -> None:
        """Public at save time, 127.0.0.1 at send time: refused, nothing reaches the receiver."""
        port = recv.url.rsplit(":", 1)[1]
        dns = FakeDNS({"hooks.example.com": ["93.184.216.34"]})
        ch = build_channel("h", {"type": "webhook", "url": f"http://hooks.example.com:{port}/x"},
                           allow=NetworkPolicy(resolver=dns))  # fmt: skip
        dns.answers["hooks.example.com"] = ["127.0.0.1"]
        with pytest.raises(DeliveryError, match="blocked: loopback") as exc:
            ch.send(make_notification())
        assert not exc.value.retryable and recv.requests == []

    def test_connects_to_the_checked_address_with_the_name_as_host(self, recv: Receiver) -> None:
        """One DNS answer per send; the socket goes to it, the Host header keeps the name."""
        port = recv.url.rsplit(":", 1)[1]
        dns = FakeDNS({"rebind.test": ["127.0.0.1"]})
        policy = NetworkPolicy(["127.0.0.1"], resolver=dns)
        ch = build_channel(
            "h", {"type": "webhook", "url": f"http://rebind.test:{port}/x"}, allow=policy
        )
        dns.calls.clear()
        ch.send(make_notification())
        assert dns.calls == ["rebind.test"]
        assert recv.requests[0].headers["host"] == f"rebind.test:{port}"

    def test_ipv6_literal_receiver(self) -> None:
        """An IPv6 literal URL reaches an allow-listed [::1], and only when allowed."""
        try:
            ctx = receiver("::1")
            r = ctx.__enter__()
        except OSError as exc:
            pytest.skip(f"no IPv6 loopback on this machine: {exc}")
        try:
            build_channel("h", {"type": "webhook", "url": r.url + "/v6"},
                          allow=NetworkPolicy(["::1"])).send(make_notification())  # fmt: skip
            assert r.requests[0].path == "/v6"
            with pytest.raises(FieldError, match="loopback"):
                build_channel("h", {"type": "webhook", "url": r.url}, allow=LOCAL)
        finally:
            ctx.__exit__(None, None, None)

    def test_allowed_name_through_the_system_resolver(self, recv: Receiver) -> None:
        """`localhost` allowed by name: resolved by the system, each answer tried in turn."""
        port = recv.url.rsplit(":", 1)[1]
        ch = build_channel("h", {"type": "webhook", "url": f"http://localhost:{port}/n"},
                           allow=NetworkPolicy(["localhost"]))  # fmt: skip
        ch.send(make_notification())
        assert recv.requests[0].headers["host"] == f"localhost:{port}"

    def test_https_verifies_the_name_through_the_pinned_address(self, tmp_path: Path) -> None:
        """HTTPS to a name pinned to 127.0.0.1: SNI and certificate check use the name."""
        cert, key = self_signed(tmp_path, ["hooks.test"])
        dns = FakeDNS({"hooks.test": ["127.0.0.1"]})
        policy = NetworkPolicy(["127.0.0.1"], resolver=dns)
        with receiver(tls=server_context(cert, key)) as r:
            port = r.url.rsplit(":", 1)[1]
            spec = {"type": "webhook", "url": f"https://hooks.test:{port}/x", "ca_file": str(cert)}
            build_channel("h", spec, allow=policy).send(make_notification())
            assert r.requests[0].headers["host"] == f"hooks.test:{port}"
            other = FakeDNS({"other.test": ["127.0.0.1"]})
            spec["url"] = f"https://other.test:{port}/x"
            ch = build_channel("h", spec, allow=NetworkPolicy(["127.0.0.1"], resolver=other))
            with pytest.raises(DeliveryError, match=r"certificate is not valid for 'other.test'"):
                ch.send(make_notification())
            assert len(r.requests) == 1


class TestVerify:
    def test_receiver_side_check(self, recv: Receiver) -> None:
        """verify() accepts what the channel sent and refuses a changed body, another secret,
        and a timestamp outside the tolerance (a replay)."""
        from llmpulse.alerting.channels.webhook import verify

        build_channel("h", {"type": "webhook", "url": recv.url, "secret": SECRET},
                      allow=LOCAL).send(make_notification())  # fmt: skip
        (req,) = recv.requests
        stamp = int(req.headers["webhook-timestamp"])
        assert verify(SECRET, req.headers, req.body, now=stamp + 10)
        assert not verify(SECRET, req.headers, req.body + b" ", now=stamp)
        other = "whsec_" + base64.b64encode(bytes(32)).decode()
        assert not verify(other, req.headers, req.body, now=stamp)
        assert not verify(SECRET, req.headers, req.body, now=stamp + 301)
        assert not verify(SECRET, {**req.headers, "webhook-timestamp": "x"}, req.body)


class TestAuthorization:
    def test_header_sent_and_masked(self, recv: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
        """authorization_env is sent as the Authorization header and never described."""
        monkeypatch.setenv("HOOK_AUTH", "Bearer tok-123456")
        ch = build_channel("h", {"type": "webhook", "url": recv.url, "authorization_env": "HOOK_AUTH"},
                           allow=LOCAL)  # fmt: skip
        ch.send(make_notification())
        assert recv.requests[0].headers["authorization"] == "Bearer tok-123456"
        assert "tok-123456" not in str(ch.describe())
        assert ch.describe()["authorization_source"] == "env HOOK_AUTH"

    def test_needs_https_to_a_public_host(self) -> None:
        """Over plain http to a host outside the allow-list the header would leak: refused."""
        dns = FakeDNS({"hooks.example.com": ["93.184.216.34"]})
        with pytest.raises(FieldError, match="authorization: needs an https URL"):
            build_channel("h", {"type": "webhook", "url": "http://hooks.example.com/x",
                                "authorization": "Bearer x"}, allow=NetworkPolicy(resolver=dns))  # fmt: skip


class TestDefaults:
    def test_timeout_follows_standard_webhooks(self) -> None:
        """The default timeout is 15 s, the lower end Standard Webhooks asks for."""
        ch = build_channel("h", {"type": "webhook", "url": "http://127.0.0.1:9/"}, allow=LOCAL)
        assert ch.describe()["timeout_s"] == 15.0
