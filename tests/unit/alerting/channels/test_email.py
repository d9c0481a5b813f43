"""Email against a real aiosmtpd server: STARTTLS with AUTH, implicit TLS, refusals that
protect the password, SMTP answers mapped to retry decisions, text and HTML parts."""

from __future__ import annotations

import email
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from llmpulse._config_file import FieldError
from llmpulse.alerting.channels import DeliveryError, NetworkPolicy, build_channel
from tests.conftest import free_port
from tests.unit.alerting.channels.certs import self_signed
from tests.unit.alerting.channels.conftest import LOCAL, make_notification

PASSWORD = "s3cret-smtp-pass"


class Inbox:
    """The aiosmtpd handler: keeps each message; answers DATA with ``reply``."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        self.reply = "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply.startswith("250"):
            self.messages.append(
                (
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    email.message_from_bytes(envelope.content),
                )
            )
        return self.reply


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"alerts"
        and (auth_data.password == PASSWORD.encode())
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("smtp-cert"), ["localhost"], ["127.0.0.1"])


def server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    return ctx


@contextmanager
def smtp_server(inbox: Inbox, **kw: Any) -> Iterator[int]:
    """A real aiosmtpd server on a free port of 127.0.0.1."""
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kw)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def spec(port: int, cert: tuple[Path, Path], **kw: Any) -> dict[str, Any]:
    base = {"type": "email", "host": "127.0.0.1", "port": port, "security": "starttls",
            "username": "alerts", "password": PASSWORD, "from": "llmpulse <alerts@example.com>",
            "to": ["oncall@example.com", "Team <team@example.com>"], "ca_file": str(cert[0]),
            "subject_prefix": "[llmpulse] ", "timeout": 5}  # fmt: skip
    base.update(kw)
    return base


@pytest.fixture
def starttls_server(cert: tuple[Path, Path]) -> Iterator[tuple[Inbox, int]]:
    """STARTTLS required before AUTH and mail, as a submission server (port 587) does."""
    inbox = Inbox()
    with smtp_server(inbox, tls_context=server_tls(cert), require_starttls=True,
                     authenticator=authenticator, auth_require_tls=True) as port:  # fmt: skip
        yield inbox, port


def parts(msg: Message) -> dict[str, str]:
    return {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk()
            if not p.is_multipart()}  # fmt: skip


class TestDelivery:
    def test_starttls_auth_and_both_parts(self, starttls_server: tuple[Inbox, int],
                                          cert: tuple[Path, Path]) -> None:  # fmt: skip
        """Over STARTTLS with AUTH: one message to both recipients, text and HTML evidence."""
        inbox, port = starttls_server
        ch = build_channel("mail", spec(port, cert), allow=LOCAL)
        ch.send(make_notification(2))
        ((sender, rcpts, msg),) = inbox.messages
        assert sender == "alerts@example.com"
        assert rcpts == ["oncall@example.com", "team@example.com"]
        assert msg["Subject"] == "[llmpulse] [FIRING:2] high_latency (critical)"
        assert msg["Message-ID"] == "<nk-1@llmpulse.alerting>"
        body = parts(msg)
        text, page = body["text/plain"], body["text/html"]
        for needle in ("Value: 6.1", "Threshold: 5", "Baseline: 1.25", "Window: 5m",
                       "Link: http://dash.example/traces?model=gpt-4o-1"):  # fmt: skip
            assert needle in text
        assert "p95 latency 6.1 s &gt; 5 s" in page
        assert '<a href="http://dash.example/traces?model=gpt-4o-0">' in page

    def test_newlines_cannot_inject_headers(self, starttls_server: tuple[Inbox, int],
                                            cert: tuple[Path, Path]) -> None:  # fmt: skip
        """A rule name with a newline gives a one-line subject, not a new header."""
        from llmpulse.alerting.channels import Notification
        from tests.unit.alerting.channels.conftest import make_item

        inbox, port = starttls_server
        item = make_item(0, rule="latency\r\nBcc: evil@example.com")
        build_channel("mail", spec(port, cert), allow=LOCAL).send(
            Notification("k", "g", "firing", (item,))
        )
        ((_, rcpts, msg),) = inbox.messages
        assert msg["Bcc"] is None and "evil@example.com" not in rcpts
        assert msg["Subject"] == "[llmpulse] [FIRING:1] latency Bcc: evil@example.com (critical)"
        with pytest.raises(FieldError, match="not an email address"):
            build_channel("mail", spec(port, cert, to=["a@example.com\nBcc: x@example.com"]),
                          allow=LOCAL)  # fmt: skip

    def test_implicit_tls(self, cert: tuple[Path, Path]) -> None:
        """security: tls speaks TLS from the first byte (what port 465 expects)."""
        inbox = Inbox()
        with smtp_server(inbox, ssl_context=server_tls(cert), authenticator=authenticator,
                         auth_require_tls=False, server_hostname="localhost") as port:  # fmt: skip
            build_channel("mail", spec(port, cert, security="tls"), allow=LOCAL).send(
                make_notification(status="resolved")
            )
        ((_, _, msg),) = inbox.messages
        assert msg["Subject"] == "[llmpulse] [RESOLVED:1] high_latency (critical)"
        assert "Ended: 2025-12-02T22:55:00Z" in parts(msg)["text/plain"]


class TestRefusals:
    def test_password_never_sent_in_the_clear(self, cert: tuple[Path, Path]) -> None:
        """A username with security: none is refused on build; the server never sees it."""
        with pytest.raises(FieldError, match="refusing to send the SMTP password unencrypted"):
            build_channel("mail", spec(25, cert, security="none"), allow=LOCAL)

    def test_server_refuses_auth_on_plaintext(self, cert: tuple[Path, Path]) -> None:
        """Forced through (allow_plaintext_auth), a server requiring TLS refuses AUTH: permanent."""
        inbox = Inbox()
        with smtp_server(inbox, authenticator=authenticator, auth_require_tls=True) as port:
            ch = build_channel("mail", spec(port, cert, security="none", allow_plaintext_auth=True),
                               allow=LOCAL)  # fmt: skip
            with pytest.raises(DeliveryError) as exc:
                ch.send(make_notification())
        assert not exc.value.retryable and inbox.messages == []

    def test_no_starttls_offered_is_permanent(self, cert: tuple[Path, Path]) -> None:
        """A server that does not offer STARTTLS gets nothing: no fallback to plain text."""
        inbox = Inbox()
        with smtp_server(inbox, authenticator=authenticator, auth_require_tls=False) as port:
            ch = build_channel("mail", spec(port, cert), allow=LOCAL)
            with pytest.raises(DeliveryError, match="does not offer STARTTLS") as exc:
                ch.send(make_notification())
        assert not exc.value.retryable and inbox.messages == []

    def test_untrusted_certificate_is_permanent(self, starttls_server: tuple[Inbox, int],
                                                cert: tuple[Path, Path]) -> None:  # fmt: skip
        """Without ca_file the self-signed certificate is not trusted: no message, permanent."""
        inbox, port = starttls_server
        s = spec(port, cert)
        del s["ca_file"]
        with pytest.raises(DeliveryError, match="certificate not trusted") as exc:
            build_channel("mail", s, allow=LOCAL).send(make_notification())
        assert not exc.value.retryable and inbox.messages == []

    def test_wrong_password_is_permanent(self, starttls_server: tuple[Inbox, int],
                                         cert: tuple[Path, Path]) -> None:  # fmt: skip
        """AUTH refused (535): permanent, and the message does not contain the password."""
        inbox, port = starttls_server
        ch = build_channel("mail", spec(port, cert, password="wrong-pass-xyz"), allow=LOCAL)
        with pytest.raises(DeliveryError, match="535") as exc:
            ch.send(make_notification())
        assert not exc.value.retryable and "wrong-pass-xyz" not in str(exc.value)
        assert inbox.messages == []

    @pytest.mark.parametrize(
        ("reply", "retryable"), [("451 4.3.0 try again later", True), ("554 5.7.1 rejected", False)]
    )
    def test_smtp_answers_decide_retry(self, starttls_server: tuple[Inbox, int],
                                       cert: tuple[Path, Path], reply: str, retryable: bool) -> None:  # fmt: skip
        """4xx to DATA is retryable, 5xx permanent."""
        inbox, port = starttls_server
        inbox.reply = reply
        with pytest.raises(DeliveryError, match=reply.split()[0]) as exc:
            build_channel("mail", spec(port, cert), allow=LOCAL).send(make_notification())
        assert exc.value.retryable is retryable

    def test_server_down_is_retryable(self, cert: tuple[Path, Path]) -> None:
        """Nothing listening on the port: retryable."""
        ch = build_channel("mail", spec(free_port(), cert), allow=LOCAL)
        with pytest.raises(DeliveryError) as exc:
            ch.send(make_notification())
        assert exc.value.retryable

    def test_internal_smtp_host_needs_the_allow_list(self, cert: tuple[Path, Path]) -> None:
        """The SMTP host is checked like a webhook URL: internal addresses need an entry."""
        for host in ("127.0.0.1", "169.254.169.254", "10.0.0.5", "localhost"):
            with pytest.raises(FieldError, match=r"host: .* is not allowed") as exc:
                build_channel("mail", spec(587, cert, host=host), allow=NetworkPolicy())
            assert exc.value.field == "host"

    def test_name_is_used_for_the_certificate(self, starttls_server: tuple[Inbox, int],
                                              cert: tuple[Path, Path]) -> None:  # fmt: skip
        """Connecting by name (localhost, allowed) verifies the certificate against the name."""
        inbox, port = starttls_server
        policy = NetworkPolicy(["localhost"], resolver=lambda h, p: ["127.0.0.1"])
        build_channel("mail", spec(port, cert, host="localhost"), allow=policy).send(
            make_notification()
        )
        assert len(inbox.messages) == 1
        wrong = NetworkPolicy(["mail.test"], resolver=lambda h, p: ["127.0.0.1"])
        with pytest.raises(DeliveryError, match="certificate not trusted"):
            build_channel("mail", spec(port, cert, host="mail.test"), allow=wrong).send(
                make_notification()
            )

    @pytest.mark.parametrize(
        ("kw", "field"),
        [({"security": "ssl"}, "security"), ({"port": 465}, "port"), ({"to": ["not-an-address"]}, "to"),
         ({"password": None}, "password"), ({"from": None}, "from"), ({"port": 0}, "port"),
         ({"ca_file": "/nonexistent/corp-ca.pem"}, "ca_file")],
    )  # fmt: skip
    def test_bad_spec_names_the_field(self, cert: tuple[Path, Path], kw: dict[str, Any],
                                      field: str) -> None:  # fmt: skip
        """Each bad setting is a FieldError on its own field."""
        with pytest.raises(FieldError) as exc:
            build_channel("mail", {**spec(587, cert), **kw}, allow=LOCAL)
        assert exc.value.field == field

    def test_a_ca_file_that_is_not_certificates_names_the_field(
        self, cert: tuple[Path, Path], tmp_path: Path
    ) -> None:
        """A ca_file that exists but holds no PEM certificate is the field's error too (it was
        an ssl traceback out of `llmpulse alerts validate`)."""
        junk = tmp_path / "ca.pem"
        junk.write_text("not a certificate\n")
        with pytest.raises(FieldError, match=r"cannot load .*ca\.pem as CA certificates") as exc:
            build_channel("mail", spec(587, cert, ca_file=str(junk)), allow=LOCAL)
        assert exc.value.field == "ca_file"
