"""Email over SMTP: STARTTLS or implicit TLS, AUTH, a plain-text and an HTML part.

Spec (YAML)::

    type: email
    host: smtp.example.com
    port: 587                      # default: 587 starttls, 465 tls, 25 none
    security: starttls             # starttls (default) | tls (implicit, port 465) | none
    username: alerts@example.com
    password_env: SMTP_PASSWORD    # or password / password_file
    from: llmpulse <alerts@example.com>
    to: [oncall@example.com]
    subject_prefix: "[llmpulse] "
    ca_file: /etc/ssl/corp-ca.pem  # trust a private CA; certificates are always verified

Refusals that protect the password (Alertmanager's own pitfalls, AM#1358, #2688, #980):
``starttls`` never falls back to plain text when the server does not offer STARTTLS (a
permanent failure instead); a username with ``security: none`` is refused when the channel is
built unless ``allow_plaintext_auth: true`` says the path is trusted; port 465 needs
``security: tls`` (implicit TLS), since STARTTLS there would hang.

The SMTP host is checked by the :class:`NetworkPolicy` like a webhook URL (an internal relay
needs an allow-list entry), and the connection goes to the checked address while TLS verifies
the certificate against the host's name.

The ``Message-ID`` is derived from the notification's idempotency key, so a resend after a
crash is the same message to mail clients and archives. SMTP 4xx answers, timeouts and dropped
connections are retryable; 5xx answers (bad address, refused AUTH) are permanent.
"""

from __future__ import annotations

import html
import logging
import re
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from typing import Any

from llmpulse._config_file import FieldError
from llmpulse.alerting.channels._base import DeliveryError, Notification
from llmpulse.alerting.channels._format import facts, plain_text, title
from llmpulse.alerting.channels._network import NetworkPolicy
from llmpulse.alerting.channels._spec import Spec

__all__ = ["EmailChannel", "render_email"]

log = logging.getLogger("llmpulse.alerting.channels")

_SECURITY = ("starttls", "tls", "none")
_DEFAULT_PORT = {"starttls": 587, "tls": 465, "none": 25}
_COLORS = {"critical": "#b00020", "warning": "#b26a00", "info": "#1565c0", "resolved": "#2e7d32"}


def _addresses(values: list[str], field: str) -> list[str]:
    out = []
    for value in values:
        parsed = getaddresses([value])
        if (
            any(c in value for c in "\r\n\0")
            or len(parsed) != 1
            or not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", parsed[0][1])
        ):
            raise FieldError(f"{field}: {value!r} is not an email address", field,
                             f"{value!r} is not an email address")  # fmt: skip
        out.append(value)
    return out


def _html(notification: Notification) -> str:
    parts = [f"<h2>{html.escape(title(notification))}</h2>"]
    for item in notification.items:
        color = _COLORS["resolved" if item.status == "resolved" else item.severity]
        parts.append(
            f'<h3 style="color:{color}">{item.status.upper()} [{html.escape(item.severity)}] '
            f"{html.escape(item.rule)}</h3><p>{html.escape(item.summary)}</p>"
        )
        rows = "".join(
            f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in facts(item)
        )
        parts.append(f"<table>{rows}</table>")
        if item.link and item.link.startswith(("http://", "https://")):
            parts.append(
                f'<p><a href="{html.escape(item.link, quote=True)}">Open in llmpulse</a></p>'
            )
    parts.append(f"<p><small>Group {html.escape(notification.group_key)} · notification "
                 f"{html.escape(notification.idempotency_key)}</small></p>")  # fmt: skip
    return "<html><body>" + "".join(parts) + "</body></html>"


def render_email(notification: Notification, *, sender: str, to: list[str],
                 subject_prefix: str = "") -> EmailMessage:  # fmt: skip
    """The message: subject from the title, a text part and an HTML part with the evidence."""
    msg = EmailMessage()
    # One line: a rule name or label with a newline must not break (or inject) a header.
    msg["Subject"] = " ".join((subject_prefix + title(notification)).split())
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(usegmt=True)
    key = re.sub(r"[^A-Za-z0-9._-]", "-", notification.idempotency_key)[:200]
    msg["Message-ID"] = f"<{key}@llmpulse.alerting>"
    msg["X-Llmpulse-Idempotency-Key"] = notification.idempotency_key
    msg.set_content(plain_text(notification))
    msg.add_alternative(_html(notification), subtype="html")
    return msg


class EmailChannel:
    """Sends each notification as one email through an SMTP server."""

    kind = "email"

    def __init__(self, name: str, spec: Mapping[str, Any], policy: NetworkPolicy) -> None:
        s = Spec(spec, {"host", "port", "security", "username", "from", "to", "subject_prefix",
                        "timeout", "ca_file", "allow_plaintext_auth"}, {"password"})  # fmt: skip
        self.name = name
        host = s.required_text("host")
        security = s.text("security", "starttls")
        if security not in _SECURITY:
            raise FieldError(f"security: one of {', '.join(_SECURITY)}, got {security!r}",
                             "security", f"one of {', '.join(_SECURITY)}")  # fmt: skip
        self._security: str = security
        self._port = s.integer("port", _DEFAULT_PORT[security], lo=1, hi=65535)
        # The SMTP host goes through the same guard as webhook URLs: an editor could otherwise
        # make the server speak SMTP to any internal service (cross-protocol SSRF).
        self._policy = policy
        self._target = policy.check_host(host, self._port, field="host")
        self._host = self._target.host
        if self._port == 465 and security != "tls":
            raise FieldError("port: 465 is implicit TLS; set security: tls", "port",
                             "465 is implicit TLS; set security: tls")  # fmt: skip
        self._username = s.text("username")
        self._password = s.secret("password", required=self._username is not None)
        if self._password is not None and self._username is None:
            raise FieldError(
                "username: required with a password", "username", "required with a password"
            )
        if (self._username and security == "none"
                and not s.flag("allow_plaintext_auth", False)):  # fmt: skip
            raise FieldError(
                "security: refusing to send the SMTP password unencrypted; use starttls or tls "
                "(or allow_plaintext_auth: true on a trusted path)",
                "security", "refusing to send the SMTP password unencrypted",
            )  # fmt: skip
        self._sender = _addresses([s.required_text("from")], "from")[0]
        self._to = _addresses(s.text_list("to", required=True), "to")
        self._prefix = s.text("subject_prefix") or ""
        self._timeout_s = s.seconds("timeout", 10.0, hi=120)
        self._ca_file = s.text("ca_file")
        try:
            self._tls = (ssl.create_default_context(cafile=self._ca_file) if self._ca_file
                         else ssl.create_default_context())  # fmt: skip
        except OSError as exc:  # a missing, unreadable or non-PEM file (ssl.SSLError is one)
            detail = f"cannot load {self._ca_file} as CA certificates: {type(exc).__name__}"
            raise FieldError(f"ca_file: {detail}", "ca_file", detail) from None

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any], policy: NetworkPolicy) -> EmailChannel:
        """Build from a spec (the registry's factory)."""
        return cls(name, spec, policy)

    @property
    def _where(self) -> str:
        return f"email {self.name!r} (smtp {self._host}:{self._port}, {self._security})"

    def send(self, notification: Notification) -> None:
        """Deliver one message to every recipient, or raise ``DeliveryError``."""
        msg = render_email(notification, sender=self._sender, to=self._to,
                           subject_prefix=self._prefix)  # fmt: skip
        try:
            self._deliver(msg)
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(f"{self._where}: every recipient refused ({codes})",
                                retryable=all(400 <= c < 500 for c in codes)) from None  # fmt: skip
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            raise DeliveryError(f"{self._where}: {type(exc).__name__} {exc.smtp_code} {text[:200]}",
                                retryable=400 <= exc.smtp_code < 500) from None  # fmt: skip
        except smtplib.SMTPNotSupportedError as exc:
            # e.g. no AUTH offered before TLS: the server's policy, not a passing fault.
            raise DeliveryError(f"{self._where}: the server does not support this: {exc}",
                                retryable=False) from None  # fmt: skip
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"{self._where}: TLS certificate not trusted ({exc.verify_message}); "
                                "set ca_file for a private CA", retryable=False) from None  # fmt: skip
        except (smtplib.SMTPException, OSError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise DeliveryError(f"{self._where}: {reason}", retryable=True) from None
        log.debug("%s: delivered %s to %d recipients", self._where, notification.idempotency_key,
                  len(self._to))  # fmt: skip

    def _connect(self) -> smtplib.SMTP:
        """Connected to a checked address of the host; TLS verifies the certificate against the
        host's name (smtplib takes the name from ``_host``, set before connecting)."""
        addresses = self._policy.addresses(self._target)
        for index, address in enumerate(addresses):
            smtp: smtplib.SMTP
            if self._security == "tls":
                smtp = smtplib.SMTP_SSL(timeout=self._timeout_s, context=self._tls)
            else:
                smtp = smtplib.SMTP(timeout=self._timeout_s)
            # smtplib verifies (and sends SNI for) the name in `_host`, set before connecting.
            smtp._host = self._host  # type: ignore[attr-defined]
            try:
                smtp.connect(address, self._port)
            except ConnectionRefusedError:
                smtp.close()
                if index + 1 < len(addresses):
                    continue
                raise
            return smtp
        raise DeliveryError(f"{self._where}: no address to connect to", retryable=True)

    def _deliver(self, msg: EmailMessage) -> None:
        with self._connect() as smtp:
            smtp.ehlo()
            if self._security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(f"{self._where}: the server does not offer STARTTLS; not "
                                        "sending in the clear", retryable=False)  # fmt: skip
                smtp.starttls(context=self._tls)
                smtp.ehlo()
            if self._username is not None and self._password is not None:
                smtp.login(self._username, self._password.reveal())
            refused = smtp.send_message(msg, from_addr=getaddresses([self._sender])[0][1],
                                        to_addrs=[getaddresses([t])[0][1] for t in self._to])  # fmt: skip
            if refused:
                log.warning("%s: %d of %d recipients refused: %s", self._where, len(refused),
                            len(self._to), sorted(refused))  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """Server, security, addresses; the password only as where it comes from."""
        return {
            "name": self.name, "type": self.kind, "host": self._host, "port": self._port,
            "security": self._security, "username": self._username,
            "password": "***" if self._password is not None else None,
            "password_source": self._password.source if self._password is not None else None,
            "from": self._sender, "to": list(self._to), "timeout_s": self._timeout_s,
            "ca_file": self._ca_file,
        }  # fmt: skip
