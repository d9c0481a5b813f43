"""One guarded HTTP POST for the HTTP channels, and what its answer means for a retry.

:func:`post` resolves the destination once through the :class:`NetworkPolicy`, connects to the
checked address itself (``Host`` and TLS SNI carry the name, and the certificate is verified
against the name), never follows a redirect, and reads at most 64 KiB of the answer. It goes
through the transport directly, not ``httpx.Client``, because the client logs every request
URL at INFO, and a Slack or Discord URL is a secret.

:func:`raise_for_status` turns the answer into the :class:`DeliveryError` the outbox acts on:
2xx delivered; 3xx refused (a redirect could lead anywhere; Standard Webhooks counts it as a
failure); 408, 429 and 5xx retryable, with the receiver's ``Retry-After``; other 4xx permanent.

:class:`Pacer` keeps a channel under its receiver's rate limit (Slack: about one message a
second) and remembers a 429's wait, so the next attempt waits or defers instead of hammering a
receiver that already said no (Discord bans an address after 10,000 such answers in 10 min).
:class:`PartPoster` sends a notification split into several messages with both, resuming after
the parts a receiver already took.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from llmpulse import __version__
from llmpulse._config_file import FieldError
from llmpulse.alerting.channels._base import DeliveryError
from llmpulse.alerting.channels._network import NetworkPolicy, Target
from llmpulse.alerting.channels._spec import Secret, Spec

__all__ = [
    "Answer",
    "Pacer",
    "PartLedger",
    "PartPoster",
    "chunks",
    "post",
    "raise_for_status",
    "retry_after",
    "tls_context",
]

log = logging.getLogger("llmpulse.alerting.channels")

USER_AGENT = f"llmpulse/{__version__} (alerting)"
#: An error answer is read this far: enough for Slack's and Discord's error bodies, and a
#: receiver cannot make the worker read a gigabyte.
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """A receiver's answer: status, headers (lowercase names) and up to 64 KiB of body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """The system's verifying context, built once: building one costs milliseconds, and
    ``verify=False`` would build a fresh one per transport (for plain http it is not used)."""
    return ssl.create_default_context()


def authorization_header(spec: Spec, target: Target) -> Secret | None:
    """The ``authorization`` secret (``Bearer ...``, ``Basic ...``), if given; plain http only
    to an allow-listed host, since the header would cross the network readable."""
    secret = spec.secret("authorization")
    if secret is not None and target.scheme == "http" and not target.allowed:
        raise FieldError(
            "authorization: needs an https URL (or a host in the allow-list)",
            "authorization", "needs an https URL (or a host in the allow-list)",
        )  # fmt: skip
    if secret is not None and any(c in secret.reveal() for c in "\r\n"):
        raise FieldError("authorization: must be one line", "authorization", "must be one line")
    return secret


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Certificate-verifying TLS; ``ca_file`` trusts a private CA (or a self-signed receiver)."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else _default_tls()


def _request(target: Target, address: str, body: bytes, headers: Mapping[str, str],
             timeout_s: float) -> httpx.Request:  # fmt: skip
    url = httpx.URL(scheme=target.scheme, host=address, port=target.port,
                    raw_path=target.path.encode("utf-8"))  # fmt: skip
    extensions: dict[str, Any] = {
        "timeout": {"connect": timeout_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}
    }
    if target.scheme == "https" and target.ip is None:
        extensions["sni_hostname"] = target.host
    all_headers = {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        **headers,
    }
    return httpx.Request("POST", url, headers=all_headers, content=body, extensions=extensions)


def post(
    policy: NetworkPolicy,
    target: Target,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    tls: ssl.SSLContext | None = None,
    what: str = "receiver",
) -> Answer:
    """POST ``body`` to ``target`` through the SSRF guard; raises ``DeliveryError`` when no answer.

    The addresses the name resolved to (all checked) are tried in order until one connects.
    """
    addresses = policy.addresses(target)
    for index, address in enumerate(addresses):
        request = _request(target, address, body, headers or {}, timeout_s)
        try:
            with httpx.HTTPTransport(verify=tls or _default_tls(), retries=0) as transport:
                response = transport.handle_request(request)
                try:
                    data = bytearray()
                    for chunk in response.iter_raw():
                        data += chunk
                        if len(data) >= MAX_ANSWER_BYTES:
                            break
                finally:
                    response.close()
        except httpx.ConnectError as exc:
            if index + 1 < len(addresses):
                continue  # the next checked address of the same name
            raise DeliveryError(f"{what}: cannot connect ({_reason(exc)})",
                                retryable=True) from exc  # fmt: skip
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"{what}: timed out after {timeout_s:g} s",
                                retryable=True) from exc  # fmt: skip
        except httpx.TransportError as exc:
            raise DeliveryError(f"{what}: {type(exc).__name__} ({_reason(exc)})",
                                retryable=True) from exc  # fmt: skip
        answer = Answer(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            bytes(data[:MAX_ANSWER_BYTES]),
        )
        log.debug("%s %s answered %d", what, target.masked, answer.status)
        return answer
    raise DeliveryError(f"{what}: no address to connect to", retryable=True)


def _reason(exc: Exception) -> str:
    """The cause of a transport error without any URL in it (the URL may hold a token)."""
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    if isinstance(cause, ssl.SSLError):
        return f"TLS: {cause.reason or 'handshake failed'}"
    return type(cause).__name__


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), or ``None``."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = datetime.now(timezone.utc).timestamp() if now is None else now
    return max(when.timestamp() - current, 0.0)


def raise_for_status(answer: Answer, *, what: str, detail: str = "",
                     wait: float | None = None) -> None:  # fmt: skip
    """Return on 2xx; otherwise raise the ``DeliveryError`` the status means.

    ``wait`` overrides the ``Retry-After`` header (a receiver that says it in its body).
    """
    status = answer.status
    if 200 <= status < 300:
        return
    suffix = f": {detail}" if detail else ""
    after = wait if wait is not None else retry_after(answer.headers)
    if 300 <= status < 400:
        raise DeliveryError(
            f"{what} answered {status} (a redirect; redirects are not followed){suffix}",
            retryable=False,
        )
    if status in (408, 429) or status >= 500 or status < 200:
        raise DeliveryError(f"{what} answered {status}{suffix}", retryable=True, retry_after=after)
    raise DeliveryError(f"{what} answered {status}{suffix}", retryable=False)


class Pacer:
    """Spacing between messages to one receiver, and the wait a 429 imposed.

    ``before_send`` sleeps when the wait is short (up to ``max_sleep_s``), and otherwise raises
    a retryable ``DeliveryError`` with ``retry_after`` so the outbox comes back later.
    """

    def __init__(
        self,
        min_interval_s: float,
        *,
        max_sleep_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.min_interval_s = min_interval_s
        self.max_sleep_s = max_sleep_s
        self._clock = clock
        self._sleep = sleep
        self._not_before = 0.0

    def before_send(self, what: str) -> None:
        """Wait until the receiver may be called again, or raise when that is too long."""
        remaining = self._not_before - self._clock()
        if remaining <= 0:
            return
        if remaining > self.max_sleep_s:
            raise DeliveryError(
                f"{what} is rate limited for {remaining:.1f} s more",
                retryable=True,
                retry_after=remaining,
            )
        self._sleep(remaining)

    def sent(self) -> None:
        """A message went out: the next one waits ``min_interval_s``."""
        self._not_before = max(self._not_before, self._clock() + self.min_interval_s)

    def hold(self, seconds: float) -> None:
        """The receiver asked for ``seconds`` of quiet (a 429, or its bucket is empty)."""
        self._not_before = max(self._not_before, self._clock() + seconds)


class PartLedger:
    """Which parts of a split notification a receiver already took, per idempotency key.

    Slack and Discord cannot deduplicate, and a notification too big for one message goes out
    as several: when part 2 of 3 fails, the retry must start at part 2, or part 1 is posted
    twice. Kept in memory for the last ``size`` keys (a restart may resend a part: at least
    once, like every channel).
    """

    def __init__(self, size: int = 1024) -> None:
        self._done: OrderedDict[str, int] = OrderedDict()
        self._size = size

    def delivered(self, key: str) -> int:
        """How many leading parts of ``key`` were delivered."""
        return self._done.get(key, 0)

    def record(self, key: str, parts: int) -> None:
        """``parts`` leading parts of ``key`` are delivered."""
        self._done[key] = parts
        self._done.move_to_end(key)
        while len(self._done) > self._size:
            self._done.popitem(last=False)


class PartPoster:
    """Posts a notification's messages to one webhook one after another, paced, starting after
    the parts the receiver already took (``PartLedger``): Slack's and Discord's sender.

    ``check`` reads each answer (the receiver's own 429 and error rules) and raises to stop;
    only a message it let through counts as delivered. Pacing and the ledger are per
    receiver, so concurrent sends take turns.
    """

    def __init__(self, policy: NetworkPolicy, target: Target, *, timeout_s: float,
                 tls: ssl.SSLContext | None, pacer: Pacer) -> None:  # fmt: skip
        self.policy = policy
        self.target = target
        self.timeout_s = timeout_s
        self.tls = tls
        self.pacer = pacer
        self._ledger = PartLedger()
        self._lock = threading.Lock()

    def send(self, key: str, messages: list[dict[str, Any]], what: str,
             check: Callable[[Answer, str], None]) -> None:  # fmt: skip
        """Post the messages of ``key`` not yet delivered, in order."""
        with self._lock:
            for index in range(self._ledger.delivered(key), len(messages)):
                self.pacer.before_send(what)
                body = json.dumps(messages[index], ensure_ascii=False).encode("utf-8")
                answer = post(self.policy, self.target, body, timeout_s=self.timeout_s,
                              tls=self.tls, what=what)  # fmt: skip
                self.pacer.sent()
                check(answer, what)
                self._ledger.record(key, index + 1)


def chunks(sizes: list[int], *, max_count: int, max_total: int) -> list[tuple[int, int]]:
    """Split items of ``sizes`` into consecutive ``[start, stop)`` runs of at most ``max_count``
    items and ``max_total`` summed size (an item bigger than ``max_total`` goes alone)."""
    out: list[tuple[int, int]] = []
    start, total = 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_count or total + size > max_total):
            out.append((start, i))
            start, total = i, 0
        total += size
    if start < len(sizes):
        out.append((start, len(sizes)))
    return out
