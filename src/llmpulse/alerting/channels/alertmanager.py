"""Forwarding to a Prometheus Alertmanager through its v2 API (``POST /api/v2/alerts``).

Spec (YAML)::

    type: alertmanager
    url: http://alertmanager.internal:9093     # or a list: every HA instance gets each alert
    labels: {source: llmpulse}                 # added to every alert
    resend_interval: 1h                        # how often the engine re-sends a firing alert

Each alert becomes one Alertmanager alert: ``labels`` = the alert's labels plus ``alertname``
(the rule) and ``severity``; ``annotations`` = summary, description and the evidence (value,
threshold, baseline, window, link); ``startsAt``; ``generatorURL`` = the link. Alertmanager
identifies an alert by its labels alone, so a resend updates the same alert.

``endsAt`` is what resolves an alert in Alertmanager (``docs/alerts_api.md``). A firing alert
is sent with ``endsAt`` = now + 4 × ``resend_interval`` (Prometheus's own rule), so one missed
resend does not resolve it early (PR#5277, uptrace#241); without ``endsAt`` Alertmanager would
resolve it after its ``resolve_timeout`` (5 min). A resolved alert is sent with its real end
time, and Alertmanager then shows it resolved and sends its resolved notices.

With several URLs (an HA cluster: post to every instance, not through a load balancer) the
notification is delivered when at least one instance accepted it; the instances gossip it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from llmpulse._config_file import FieldError
from llmpulse._duration import format_duration
from llmpulse.alerting.channels._base import AlertItem, DeliveryError, Notification
from llmpulse.alerting.channels._format import facts, iso, number
from llmpulse.alerting.channels._http import (
    authorization_header,
    post,
    raise_for_status,
    tls_context,
)
from llmpulse.alerting.channels._network import NetworkPolicy, Target
from llmpulse.alerting.channels._spec import Spec

__all__ = ["AlertmanagerChannel", "alertmanager_alerts"]

#: Prometheus sends endsAt = now + 4 × max(evaluation interval, resend delay).
ENDS_AT_RESENDS = 4
_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def _label_name(name: str) -> str:
    """A Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*."""
    clean = _LABEL.sub("_", name)
    return f"_{clean}" if not clean or clean[0].isdigit() else clean


def _alert(item: AlertItem, extra: Mapping[str, str], now: float, ttl_s: float) -> dict[str, Any]:
    labels = {_label_name(k): v for k, v in extra.items() if v}
    labels.update({_label_name(k): v for k, v in item.labels.items() if v})
    labels["alertname"] = item.rule
    labels["severity"] = item.severity
    annotations = {
        "summary": item.summary,
        "description": "\n".join(f"{k}: {v}" for k, v in facts(item)),
        "llmpulse_fingerprint": item.fingerprint,
    }
    for key, value in (("value", item.value), ("threshold", item.threshold),
                       ("baseline", item.baseline)):  # fmt: skip
        if value is not None:
            annotations[key] = number(value)
    if item.window_s:
        annotations["window"] = format_duration(item.window_s)
    alert: dict[str, Any] = {"labels": labels, "annotations": annotations,
                             "startsAt": iso(item.starts_at)}  # fmt: skip
    if item.link:
        annotations["link"] = item.link
        if item.link.startswith(("http://", "https://")):
            alert["generatorURL"] = item.link
    if item.status == "resolved":
        alert["endsAt"] = iso(item.ends_at if item.ends_at is not None else now)
    else:
        alert["endsAt"] = iso(now + ttl_s)
    return alert


def alertmanager_alerts(notification: Notification, *, labels: Mapping[str, str] | None = None,
                        now: float, resend_interval_s: float = 3600.0) -> list[dict[str, Any]]:  # fmt: skip
    """The v2 API body: one alert per item; firing ones end 4 resend intervals from ``now``."""
    ttl = ENDS_AT_RESENDS * resend_interval_s
    return [_alert(i, labels or {}, now, ttl) for i in notification.items]


class AlertmanagerChannel:
    """Posts alerts to one Alertmanager, or to every instance of an HA cluster."""

    kind = "alertmanager"

    def __init__(self, name: str, spec: Mapping[str, Any], policy: NetworkPolicy,
                 *, clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        s = Spec(
            spec, {"url", "labels", "resend_interval", "timeout", "ca_file"}, {"authorization"}
        )
        self.name = name
        self._policy = policy
        self._targets: list[Target] = []
        for i, url in enumerate(s.text_list("url", required=True)):
            field = "url" if isinstance(spec.get("url"), str) else f"url[{i}]"
            base = policy.check_url(url, field=field)
            if "?" in base.path:
                raise FieldError(f"{field}: the Alertmanager base URL takes no query", field,
                                 "the Alertmanager base URL takes no query")  # fmt: skip
            path = base.path.rstrip("/") + "/api/v2/alerts"
            self._targets.append(
                Target(base.scheme, base.host, base.port, path, base.ip, base.allowed)
            )
        auth = [authorization_header(s, t) for t in self._targets]
        self._authorization = auth[0] if auth else None
        self._labels = s.labels("labels")
        self._resend_s = s.seconds("resend_interval", 3600.0, hi=7 * 86400)
        self._timeout_s = s.seconds("timeout", 10.0, hi=120)
        ca_file = s.text("ca_file")
        self._tls = (
            tls_context(ca_file) if any(t.scheme == "https" for t in self._targets) else None
        )
        self._clock = clock

    @classmethod
    def from_spec(
        cls, name: str, spec: Mapping[str, Any], policy: NetworkPolicy
    ) -> AlertmanagerChannel:
        """Build from a spec (the registry's factory)."""
        return cls(name, spec, policy)

    def send(self, notification: Notification) -> None:
        """POST the alerts to every instance; delivered when at least one accepted them."""
        body = json.dumps(alertmanager_alerts(notification, labels=self._labels,
                                              now=self._clock(),
                                              resend_interval_s=self._resend_s)).encode()  # fmt: skip
        errors: list[DeliveryError] = []
        for target in self._targets:
            what = f"alertmanager {self.name!r} ({target.scheme}://{target.host_header})"
            try:
                headers = ({"Authorization": self._authorization.reveal()}
                           if self._authorization is not None else {})  # fmt: skip
                answer = post(self._policy, target, body, headers=headers,
                              timeout_s=self._timeout_s, tls=self._tls, what=what)  # fmt: skip
                raise_for_status(
                    answer, what=what, detail=_message(answer.body) if answer.status == 400 else ""
                )
            except DeliveryError as exc:
                errors.append(exc)
        if len(errors) < len(self._targets):
            return
        retryable = [e for e in errors if e.retryable]
        if retryable:
            waits = [e.retry_after for e in retryable if e.retry_after is not None]
            raise DeliveryError("; ".join(str(e) for e in errors), retryable=True,
                                retry_after=max(waits) if waits else None)  # fmt: skip
        raise DeliveryError("; ".join(str(e) for e in errors), retryable=False)

    def describe(self) -> dict[str, Any]:
        """Instances (scheme, host and port), labels and the resend interval."""
        return {"name": self.name, "type": self.kind,
                "url": [f"{t.scheme}://{t.host_header}" for t in self._targets],
                "labels": dict(self._labels), "resend_interval_s": self._resend_s,
                "timeout_s": self._timeout_s,
                "authorization_source": self._authorization.source if self._authorization else None}  # fmt: skip


def _message(body: bytes) -> str:
    """Alertmanager's 400 explanation (which label or field is invalid), shortened."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    message = data.get("message") if isinstance(data, dict) else data
    return message[:200] if isinstance(message, str) else ""
