"""Fixtures for channel tests: notifications with evidence, and a real local HTTP receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llmpulse.alerting.channels import AlertItem, NetworkPolicy, Notification
from tests.unit.alerting.channels.receiver import Receiver, receiver

LOCAL = NetworkPolicy(["127.0.0.1"])


def make_item(i: int = 0, status: str = "firing", **kw: Any) -> AlertItem:
    base: dict[str, Any] = dict(
        fingerprint=f"fp{i}", rule="high_latency", severity="critical", status=status,
        labels={"model": f"gpt-4o-{i}", "env": "prod"}, summary=f"p95 latency 6.1 s > 5 s ({i})",
        value=6.1, threshold=5.0, baseline=1.25, window_s=300.0, starts_at=1_764_715_500.0,
        ends_at=1_764_716_100.0 if status == "resolved" else None,
        link=f"http://dash.example/traces?model=gpt-4o-{i}", evidence={"calls": 1200},
    )  # fmt: skip
    base.update(kw)
    return AlertItem(**base)


def make_notification(n: int = 1, status: str = "firing", key: str = "nk-1") -> Notification:
    return Notification(
        key, "high_latency/prod", status, tuple(make_item(i, status) for i in range(n))
    )


@pytest.fixture
def recv() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


class FakeTime:
    """A monotonic clock whose sleep advances it (no real waiting), recording each sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
