"""Synthetic LLM traffic for the check tests, written straight into a store.

Stationary by default: Poisson arrivals, log-normal latencies, log-normal completion lengths,
a small random error rate and a routing branch, for a fast and a large model. ``Incident``
degrades one model during a window, the way a provider incident does.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmpulse.schema import BRANCH_ATTRIBUTE, Span

__all__ = ["Incident", "Traffic", "make_spans"]


@dataclass(frozen=True)
class Incident:
    """What changes for ``model`` in ``[start, end)`` (Unix seconds)."""

    start: float
    end: float
    model: str = "gpt-4o"
    latency_x: float = 1.0
    tokens_x: float = 1.0
    input_x: float = 1.0
    error_rate: float | None = None
    human_review: float | None = None  # share of routing decisions that go to a human


@dataclass(frozen=True)
class Model:
    """One model's normal behaviour."""

    name: str
    calls_per_minute: float
    latency_ms: float
    output_tokens: float
    input_tokens: float
    prompt_version: str | None = None
    price_in: float = 2.5e-6
    price_out: float = 1e-5


DEFAULT_MODELS = (
    Model("gpt-4o", 6.0, 900.0, 220.0, 650.0, prompt_version="answer-v2"),
    Model("gpt-4o-mini", 8.0, 350.0, 60.0, 300.0, price_in=1.5e-7, price_out=6e-7),
)


@dataclass(frozen=True)
class Traffic:
    """``minutes`` of traffic from ``start``."""

    start: float
    minutes: int
    seed: int = 0
    models: tuple[Model, ...] = DEFAULT_MODELS
    error_rate: float = 0.01
    human_review: float = 0.25
    incidents: tuple[Incident, ...] = field(default=())
    daily_swing: float = 0.0  # busy days: volume and latency swing by this share over 24 h

    @property
    def end(self) -> float:
        """When the traffic stops."""
        return self.start + self.minutes * 60.0


def _active(traffic: Traffic, model: str, t: float) -> Incident | None:
    for inc in traffic.incidents:
        if inc.model == model and inc.start <= t < inc.end:
            return inc
    return None


def _llm_call(rng: np.random.Generator, m: Model, t: float, traffic: Traffic) -> list[Span]:
    inc = _active(traffic, m.name, t)
    trace = uuid.uuid4().hex
    load = 1.0 + 0.5 * traffic.daily_swing * _daily(t)  # a busy provider is a slower one
    latency = m.latency_ms * load * math.exp(rng.normal(0.0, 0.3)) * (inc.latency_x if inc else 1.0)
    error_rate = inc.error_rate if inc and inc.error_rate is not None else traffic.error_rate
    failed = rng.random() < error_rate
    llm = Span(
        trace,
        uuid.uuid4().hex[:16],
        f"chat {m.name}",
        t,
        t + latency / 1000.0,
        kind="llm",
        model=m.name,
        provider="openai",
        prompt_version=m.prompt_version,
    )
    if failed:
        llm.status, llm.error_type = "error", "InternalServerError"
    else:
        llm.input_tokens = int(
            m.input_tokens * math.exp(rng.normal(0.0, 0.2)) * (inc.input_x if inc else 1.0)
        )
        llm.output_tokens = int(
            m.output_tokens * math.exp(rng.normal(0.0, 0.4)) * (inc.tokens_x if inc else 1.0)
        )
        llm.cost_usd = llm.input_tokens * m.price_in + llm.output_tokens * m.price_out
    spans = [llm]
    if m.prompt_version is not None:  # the large model answers tickets: a step and a routing branch
        share = inc.human_review if inc and inc.human_review is not None else traffic.human_review
        way = "human_review" if rng.random() < share else "auto_reply"
        spans.append(
            Span(trace, uuid.uuid4().hex[:16], "answer", t, llm.end_time + 0.002, kind="chain")
        )
        spans.append(
            Span(
                trace,
                uuid.uuid4().hex[:16],
                "route",
                llm.end_time,
                llm.end_time + 0.001,
                kind="branch",
                attributes={BRANCH_ATTRIBUTE: way},
            )
        )
    return spans


def make_spans(traffic: Traffic) -> list[Span]:
    """Every span of the traffic, in time order per model."""
    rng = np.random.default_rng(traffic.seed)
    spans: list[Span] = []
    duration = traffic.minutes * 60.0
    for m in traffic.models:
        peak = 1.0 + traffic.daily_swing
        n = rng.poisson(m.calls_per_minute * peak * traffic.minutes)
        times = np.sort(rng.uniform(traffic.start, traffic.start + duration, n))
        # Thinning: keep each arrival with the share of the peak rate that hour has.
        keep = rng.random(n) < (1.0 + traffic.daily_swing * _daily(times)) / peak
        for t in times[keep]:
            spans.extend(_llm_call(rng, m, float(t), traffic))
    return spans


def _daily(t: Any) -> Any:
    """-1 at 03:00 UTC, +1 at 15:00 UTC."""
    return np.sin(2.0 * np.pi * ((np.asarray(t) / 3600.0 - 9.0) % 24.0) / 24.0)
