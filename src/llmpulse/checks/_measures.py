"""What the live checks measure per bucket or window, read off the store's ``SpanStats``.

Failed calls carry no tokens and no price, so tokens are averaged over successful calls and
cost over priced calls: a burst of errors must not look like a drop in tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmpulse.checks._config import LiveConfig

__all__ = [
    "LLM_MEASURES", "WORKFLOW_MEASURES", "Measure", "fmt_value", "span_scopes", "subject_label",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Measure:
    """One continuous metric: which check owns it, how to read it and how many calls back it.

    ``min_share`` scales ``min_calls_per_bucket`` for this metric: a p95 needs the full
    count, a mean per call settles with half of it (which matters when an incident fails
    many calls and leaves only a few successful ones per bucket to average tokens over).
    """

    check: str
    metric: str
    label: str
    unit: str
    value: Callable[[Any], float | None]
    weight: Callable[[Any], int]
    min_share: float = 1.0

    def min_calls(self, per_bucket: int) -> int:
        """Calls a bucket needs for this metric to have a value."""
        return max(2, math.ceil(per_bucket * self.min_share))


def _ok(r: Any) -> int:
    return int(r.calls - r.errors)


def _per_ok(attr: str) -> Callable[[Any], float | None]:
    def read(r: Any) -> float | None:
        ok = _ok(r)
        return getattr(r, attr) / ok if ok > 0 else None

    return read


def _cost(r: Any) -> float | None:
    return r.cost_usd / r.priced_calls if r.priced_calls and r.cost_usd is not None else None


P95 = Measure(
    "latency_spike",
    "p95_latency_ms",
    "p95 latency",
    "ms",
    lambda r: r.p95_latency_ms,
    lambda r: int(r.calls),
)
LLM_MEASURES = (
    P95,
    Measure(
        "token_spike",
        "output_tokens_per_call",
        "output tokens per call",
        "tokens",
        _per_ok("output_tokens"),
        _ok,
        0.5,
    ),
    Measure(
        "token_spike",
        "input_tokens_per_call",
        "input tokens per call",
        "tokens",
        _per_ok("input_tokens"),
        _ok,
        0.5,
    ),
    Measure(
        "cost_spike",
        "cost_per_call",
        "cost per call",
        "usd",
        _cost,
        lambda r: int(r.priced_calls or 0),
        0.5,
    ),
)
WORKFLOW_MEASURES = (P95,)


SpanScope = tuple[tuple[str, ...], dict[str, Any], tuple[Measure, ...]]


def span_scopes(cfg: LiveConfig) -> list[SpanScope]:
    """The span groups the live checks scan, as (group_by, span filters, measures): llm spans
    by ``cfg.llm_group_by``, and the ``cfg.workflow_kinds`` spans by name and kind (left out
    when no kind is configured)."""
    scopes: list[SpanScope] = [
        (tuple(cfg.llm_group_by), {"kind": "llm"}, LLM_MEASURES),
        (("name", "kind"), {"kind": list(cfg.workflow_kinds)}, WORKFLOW_MEASURES),
    ]
    return [scope for scope in scopes if scope[1]["kind"]]


def fmt_value(value: float | None, unit: str) -> str:
    """A value in its unit, short: ``82 ms``, ``1,204 tokens``, ``$0.0031``, ``3.4%``."""
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "tokens":
        return f"{value:,.0f}"
    if unit == "usd":
        return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
    if unit == "rate":
        return f"{value:.1%}"
    return f"{value:.4g}"


def subject_label(subject: dict[str, Any]) -> str:
    """The subject in words: its values joined by `` / `` (``gpt-4o / answer-v3``)."""
    parts = [str(v) for v in subject.values() if v not in (None, "")]
    return " / ".join(parts) or "all spans"
