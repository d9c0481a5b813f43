"""Generic webhook: the notification as JSON, signed per Standard Webhooks 1.0.

Spec (YAML)::

    type: webhook
    url: https://hooks.example.com/llmpulse        # or url_env: VAR / url_file: PATH
    secret_env: LLMPULSE_WEBHOOK_SECRET            # whsec_<base64>, optional; space-separated to rotate
    timeout: 15s                                   # the default (Standard Webhooks: 15-30 s)

Headers on every request (https://www.standardwebhooks.com):

- ``webhook-id``: the notification's idempotency key, the same on every retry, so the receiver
  drops a resend;
- ``webhook-timestamp``: Unix seconds when this attempt was signed (receivers refuse stale ones);
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``, one per
  secret, space-separated (secret rotation), where ``key`` is the base64-decoded part of
  ``whsec_...``. The body is signed as the exact bytes sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from llmpulse._config_file import FieldError
from llmpulse.alerting.channels._base import Notification
from llmpulse.alerting.channels._format import notification_json
from llmpulse.alerting.channels._http import (
    authorization_header,
    post,
    raise_for_status,
    tls_context,
)
from llmpulse.alerting.channels._network import NetworkPolicy
from llmpulse.alerting.channels._spec import Secret, Spec

__all__ = ["WebhookChannel", "sign", "verify"]

_PREFIX = "whsec_"


def _secret_key(secret: Secret, field: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; 24 to 64 bytes, as the standard asks."""
    text = secret.reveal()
    if not text.startswith(_PREFIX):
        raise FieldError(f"{field}: must start with whsec_ (whsec_ + base64 of 24-64 random "
                         "bytes)", field, "must start with whsec_")  # fmt: skip
    try:
        key = base64.b64decode(text[len(_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise FieldError(f"{field}: the part after whsec_ is not base64", field,
                         "the part after whsec_ is not base64") from None  # fmt: skip
    if not 24 <= len(key) <= 64:
        raise FieldError(f"{field}: the key must be 24 to 64 bytes, got {len(key)}", field,
                         f"the key must be 24 to 64 bytes, got {len(key)}")  # fmt: skip
    return key


def _jsonable(value: Any) -> Any:
    """Evidence from numpy (``int64``, arrays) or datetimes: as numbers/lists, else as text."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def sign(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64>`` for each key, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode()
        for k in keys
    )


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, tolerance_s: float = 300.0,
           now: float | None = None) -> bool:  # fmt: skip
    """What a receiver checks: a ``v1`` signature by ``secret`` (``whsec_...``) over the exact
    ``body``, and a ``webhook-timestamp`` within ``tolerance_s`` of ``now`` (replays refused).

    Deduplicate on ``headers["webhook-id"]`` after this returns True.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp = lower.get("webhook-id"), lower.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        return False
    key = _secret_key(Secret(secret, "verify"), "secret")
    expected = sign([key], msg_id, int(stamp), body).split(",", 1)[1]
    return any(
        part.startswith("v1,") and hmac.compare_digest(part[3:], expected)
        for part in lower.get("webhook-signature", "").split()
    )


class WebhookChannel:
    """POSTs the notification JSON to a URL, signed per Standard Webhooks."""

    kind = "webhook"

    def __init__(
        self,
        name: str,
        spec: Mapping[str, Any],
        policy: NetworkPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        s = Spec(spec, {"timeout", "ca_file"}, {"url", "secret", "authorization"})
        url = s.secret("url", required=True)
        assert url is not None
        self.name = name
        self._policy = policy
        self._url_source = url.source
        self._target = policy.check_url(url.reveal(), field="url")
        self._keys: list[bytes] = []
        self._secret_sources: list[str] = []
        secret = s.secret("secret")
        if secret is not None:
            for i, part in enumerate(secret.reveal().split()):
                self._keys.append(_secret_key(Secret(part, secret.source), "secret"))
                self._secret_sources.append(f"{secret.source} #{i + 1}")
        self._authorization = authorization_header(s, self._target)
        # Standard Webhooks asks senders to wait 15-30 s before calling an attempt failed.
        self._timeout_s = s.seconds("timeout", 15.0, hi=120)
        self._ca_file = s.text("ca_file")
        self._tls = tls_context(self._ca_file) if self._target.scheme == "https" else None
        self._clock = clock

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any], policy: NetworkPolicy) -> WebhookChannel:
        """Build from a spec (the registry's factory)."""
        return cls(name, spec, policy)

    def payload(self, notification: Notification) -> bytes:
        """The exact bytes POSTed (and signed)."""
        return json.dumps(notification_json(notification), separators=(",", ":"),
                          ensure_ascii=False, default=_jsonable).encode("utf-8")  # fmt: skip

    def send(self, notification: Notification) -> None:
        """POST the signed JSON; raise ``DeliveryError`` unless the receiver answers 2xx."""
        body = self.payload(notification)
        timestamp = int(self._clock())
        headers = {"webhook-id": notification.idempotency_key,
                   "webhook-timestamp": str(timestamp)}  # fmt: skip
        if self._keys:
            headers["webhook-signature"] = sign(
                self._keys, notification.idempotency_key, timestamp, body
            )
        if self._authorization is not None:
            headers["Authorization"] = self._authorization.reveal()
        what = f"webhook {self.name!r} ({self._target.masked})"
        answer = post(self._policy, self._target, body, headers=headers,
                      timeout_s=self._timeout_s, tls=self._tls, what=what)  # fmt: skip
        # Standard Webhooks: 410 Gone means "stop sending here".
        gone = "the receiver asks to disable this endpoint" if answer.status == 410 else ""
        raise_for_status(answer, what=what, detail=gone)

    def describe(self) -> dict[str, Any]:
        """Type, masked URL, where the secrets come from; never their values."""
        return {
            "name": self.name,
            "type": self.kind,
            "url": self._target.masked,
            "url_source": self._url_source,
            "signed": bool(self._keys),
            "secret_sources": self._secret_sources,
            "authorization_source": self._authorization.source if self._authorization else None,
            "timeout_s": self._timeout_s,
            "ca_file": self._ca_file,
        }
