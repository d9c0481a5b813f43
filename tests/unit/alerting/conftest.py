"""Helpers for the alerting tests: spans and metric points written to a real store, and the
engine under a clock the test moves with conditions it switches on and off."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from llmpulse.alerting import AlertEngine, AlertRunner, EvalContext, Rule, RuleSet, Sample
from llmpulse.alerting._rules import DEFAULT_INHIBIT
from llmpulse.alerting.channels import FunctionChannel
from llmpulse.schema import MetricPoint, Span
from llmpulse.store import Store

_ids = itertools.count()


def llm(start: float, *, model: str = "gpt-4o", latency_ms: float = 100.0, error: bool = False,
        tokens: int = 100, cost: float = 0.001) -> Span:  # fmt: skip
    """One llm span."""
    n = next(_ids)
    return Span(
        trace_id=f"t{n}", span_id=f"s{n}", name="chat", start_time=start,
        end_time=start + latency_ms / 1000.0, kind="llm", status="error" if error else "ok",
        error_type="RateLimitError" if error else None, model=model, provider="openai",
        input_tokens=tokens // 2, output_tokens=tokens - tokens // 2, total_tokens=tokens,
        cost_usd=cost,
    )  # fmt: skip


def point(name: str, value: float, at: float, **labels: str) -> MetricPoint:
    """One metric point."""
    return MetricPoint(name=name, value=value, timestamp=at, labels=dict(labels))


T0 = 1_800_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class Switch:
    """A condition the test turns on and off, per label set and severity."""

    def __init__(self) -> None:
        self.on: dict[tuple[tuple[str, str], ...], str] = {}
        self.broken = False

    def set(self, severity: str | None = "warning", **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        if severity is None:
            self.on.pop(key, None)
        else:
            self.on[key] = severity

    def __call__(self, ctx: EvalContext) -> list[Sample]:
        if self.broken:
            raise RuntimeError("query failed")
        return [Sample(dict(k), 1.0, sev) for k, sev in self.on.items()]


def _channels(*names: str) -> dict[str, FunctionChannel]:
    return {n: FunctionChannel(n, lambda note: None) for n in names}


def _engine(store, clock, *rules: Rule, inhibit=(DEFAULT_INHIBIT,), owner="e1") -> AlertEngine:
    rs = RuleSet(channels=_channels("ops", "pager"), inhibit_rules=tuple(inhibit))
    return AlertEngine(store, rs, rules=rules, clock=clock, owner=owner)


def _rule(switch: Switch, **kw) -> Rule:
    kw.setdefault("channels", ("ops",))
    return Rule(kw.pop("name", "r"), type="callable", condition=switch, **kw)


def _sent(store) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(channel, status, [(model, item status)]) of every outbox row, oldest first."""
    return [
        (row.channel, row.payload["status"],
         sorted((i["labels"].get("model", ""), i["status"]) for i in row.payload["items"]))
        for row in store.outbox()
    ]  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    """A clock at T0 that the test moves by hand."""
    return Clock()


@pytest.fixture
def switched(store: Store, clock: Clock) -> Callable[..., tuple[Switch, AlertEngine]]:
    """The engine most engine tests start from: one callable rule driven by a ``Switch``,
    over ``store`` and ``clock``; the rule's options as keywords (``sw, engine =
    switched(for_s=120)``)."""

    def make(**rule: Any) -> tuple[Switch, AlertEngine]:
        sw = Switch()
        return sw, _engine(store, clock, _rule(sw, **rule))

    return make


def signal_refreshes(engine: AlertEngine) -> threading.Event:
    """An event set whenever ``engine.refresh_checks`` renewed a pair (it is wrapped)."""
    renewed = threading.Event()
    refresh = engine.refresh_checks

    def counted() -> int:
        ran = refresh()
        if ran:
            renewed.set()
        return ran

    engine.refresh_checks = counted  # type: ignore[method-assign]
    return renewed


def wait_for_first_report(runner: AlertRunner, timeout_s: float) -> None:
    """Wait (at most ``timeout_s``) until ``runner``'s first tick has reported."""
    until = time.monotonic() + timeout_s
    while runner.last_report is None and time.monotonic() < until:
        threading.Event().wait(0.05)
