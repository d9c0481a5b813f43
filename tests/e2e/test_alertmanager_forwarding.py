"""Forwarding to the real Prometheus Alertmanager (Debian's prometheus-alertmanager), started by
the test: its own API lists the forwarded alert with the evidence, then shows it gone once the
resolved notice is forwarded."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmpulse.alerting.channels import NetworkPolicy, Notification, build_channel
from tests.conftest import free_port, service_missing
from tests.unit.alerting.channels.conftest import make_item

BINARIES = ("prometheus-alertmanager", "alertmanager")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on a free port, clustering off, temp config and storage."""
    binary = next((b for b in map(shutil.which, BINARIES) if b), None)
    if binary is None:
        service_missing(
            "Alertmanager",
            "the prometheus-alertmanager binary is not installed "
            "(apt-get install prometheus-alertmanager)",
        )
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route: {receiver: blackhole, group_wait: 1h}\nreceivers: [{name: blackhole}]\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "alertmanager.log").open("w") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"alertmanager did not start: {(tmp_path / 'alertmanager.log').read_text()[-2000:]}"
                    )
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def listed(am: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{am}/api/v2/alerts", params={"filter": 'alertname="high_latency"'}, timeout=5)
    r.raise_for_status()
    alerts: list[dict[str, Any]] = r.json()
    return alerts


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class TestAlertmanagerForwarding:
    def test_alert_is_listed_then_resolved(self, alertmanager: str) -> None:
        """Firing: Alertmanager lists it with labels, evidence and a far endsAt; resolved: gone."""
        ch = build_channel(
            "am", {"type": "alertmanager", "url": alertmanager, "labels": {"source": "llmpulse"},
                   "resend_interval": "5m"},
            allow=NetworkPolicy(["127.0.0.1"]),
        )  # fmt: skip
        started = time.time() - 60
        firing = make_item(0, starts_at=started, labels={"model": "gpt-4o", "env": "prod"})
        before = time.time()
        ch.send(Notification("k1", "g", "firing", (firing,)))
        (alert,) = listed(alertmanager)
        assert alert["labels"] == {"alertname": "high_latency", "severity": "critical",
                                   "model": "gpt-4o", "env": "prod", "source": "llmpulse"}  # fmt: skip
        ann = alert["annotations"]
        assert (ann["value"], ann["threshold"], ann["baseline"], ann["window"]) == (
            "6.1",
            "5",
            "1.25",
            "5m",
        )
        assert ann["summary"] == firing.summary and "Baseline: 1.25" in ann["description"]
        assert alert["generatorURL"] == firing.link
        assert alert["status"]["state"] == "active"
        assert abs(ts(alert["startsAt"]) - started) < 1
        # One missed resend must not resolve it: endsAt is 4 resend intervals away.
        assert ts(alert["endsAt"]) - before >= 3 * 300

        # A resend (same labels) updates the one alert, keeping the earliest startsAt.
        ch.send(Notification("k2", "g", "firing", (firing,)))
        (again,) = listed(alertmanager)
        assert again["fingerprint"] == alert["fingerprint"]
        assert abs(ts(again["startsAt"]) - started) < 1

        resolved = make_item(0, status="resolved", starts_at=started, ends_at=time.time() - 1,
                             labels={"model": "gpt-4o", "env": "prod"})  # fmt: skip
        ch.send(Notification("k3", "g", "resolved", (resolved,)))
        deadline = time.monotonic() + 10
        while listed(alertmanager) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert listed(alertmanager) == []

    def test_one_ha_instance_down_still_delivers(self, alertmanager: str) -> None:
        """Two instances, one unreachable: delivered (the live one lists the alert)."""
        dead = f"http://127.0.0.1:{free_port()}"
        ch = build_channel("am", {"type": "alertmanager", "url": [dead, alertmanager]},
                           allow=NetworkPolicy(["127.0.0.1"]))  # fmt: skip
        ch.send(Notification("k1", "g", "firing", (make_item(0, starts_at=time.time()),)))
        assert len(listed(alertmanager)) == 1
