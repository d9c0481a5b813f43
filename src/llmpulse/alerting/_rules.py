"""Alert rules: what to measure, over which window, and when it is bad enough to tell someone.

Four kinds, one record (:class:`Rule`):

* ``threshold``: a value from the rollups (latency avg/p95/p99, error rate, tokens, cost,
  requests, a token quota share) or from metric points (recovery retries, fallbacks, an open
  breaker, any named metric such as system CPU) over ``window``, compared with a ``warning``
  and/or a ``critical`` threshold;
* ``absence``: no matching requests at all over ``window`` (Prometheus ``absent_over_time``);
* ``detection``: findings of :mod:`llmpulse.checks` (spikes, jumps, regressions, trends) over
  ``window`` with at least ``min_confidence``;
* ``callable``: a Python function decides (embedded use only; never stored).

Each severity of each label set is one alert series, identified by its fingerprint (rule name
plus labels, ``severity`` included), so a critical alert can inhibit the warning of the same
label set exactly as Alertmanager's usual inhibit rule does.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from llmpulse.alerting._query import EvalContext

__all__ = [
    "COMPARATORS",
    "POINT_METRICS",
    "RULE_TYPES",
    "SPAN_METRICS",
    "Condition",
    "Escalation",
    "InhibitRule",
    "Rule",
    "Sample",
    "fingerprint",
    "render_summary",
]

RULE_TYPES = ("threshold", "absence", "detection", "callable")

#: Rollup metrics: name -> what it measures (the unit is in the name where there is one).
SPAN_METRICS: dict[str, str] = {
    "latency_avg_ms": "mean latency of the calls, ms",
    "latency_p50_ms": "median latency, ms (from the rollup histograms, within 2.44 %)",
    "latency_p95_ms": "95th percentile latency, ms",
    "latency_p99_ms": "99th percentile latency, ms",
    "ttft_avg_ms": "mean time to first token of streamed calls, ms",
    "error_rate": "errors / calls, 0..1",
    "errors": "calls that ended in an error",
    "requests": "calls",
    "tokens": "total tokens",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "cost_usd": "cost in USD",
    "token_quota": "total tokens as a share of `quota`, 0..1",
}

#: Metric-point metrics: name -> (metric point name, aggregation, what it measures).
POINT_METRICS: dict[str, tuple[str, str, str]] = {
    "retries": ("llmpulse_recovery_retries_total", "increase", "recovery retries"),
    "fallbacks": ("llmpulse_recovery_fallbacks_total", "increase", "fallbacks to another model"),
    "giveups": ("llmpulse_recovery_giveups_total", "increase", "calls recovery gave up on"),
    "breaker_rejections": (
        "llmpulse_recovery_breaker_rejections_total",
        "increase",
        "calls refused by an open breaker",
    ),
    "breaker_open": ("llmpulse_circuit_state", "open", "1 when the breaker is open, else 0"),
}
#: ``metric: point`` reads ``point.name`` with one of these aggregations over the window.
POINT_AGGREGATIONS = ("avg", "max", "min", "last", "sum", "increase", "open")

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
}


@dataclass(frozen=True)
class Sample:
    """One measured value of a rule for one label set (what a condition returns)."""

    labels: Mapping[str, str]
    value: float | None
    severity: str | None = None  # set by conditions that decide it themselves
    summary: str | None = None
    baseline: float | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)


#: A Python condition (embedded use): given the evaluation context, the firing samples, or a
#: bool (``True``: one firing sample with no extra labels).
Condition: TypeAlias = "Callable[[EvalContext], Iterable[Sample] | bool]"


@dataclass(frozen=True)
class Escalation:
    """After ``after_s`` seconds firing without an acknowledgement, also notify ``channels``."""

    after_s: float
    channels: tuple[str, ...]


@dataclass(frozen=True)
class InhibitRule:
    """While an alert matching ``source`` fires, mute alerts matching ``target``.

    Only when the labels named in ``equal`` agree (a missing label equals an empty one);
    ``equal=None`` means every label but ``severity``. An alert cannot inhibit itself.
    """

    source: Mapping[str, str]
    target: Mapping[str, str]
    equal: tuple[str, ...] | None = None


DEFAULT_INHIBIT = InhibitRule({"severity": "critical"}, {"severity": "warning"}, None)


@dataclass(frozen=True)
class Rule:
    """One alert rule; build it in code or load it from YAML (``load_rules``).

    >>> Rule("slow", metric="latency_p95_ms", window_s=300, warning=2000, critical=5000,
    ...      by=("model",), for_s=120, channels=("oncall",)).type
    'threshold'
    """

    name: str
    type: str = "threshold"
    metric: str | None = None
    #: Rollup filters (model, kind, name, provider, prompt_version, branch) for span metrics,
    #: metric-point label equality for point metrics; a tuple means "any of".
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    by: tuple[str, ...] = ()
    window_s: float = 300.0
    op: str = ">"
    warning: float | None = None
    critical: float | None = None
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    repeat_interval_s: float = 4 * 3600.0
    min_requests: int = 1
    quota: float | None = None
    point_name: str | None = None
    point_agg: str | None = None
    checks: tuple[str, ...] = ()
    min_confidence: float = 0.0
    baseline_s: float = 7 * 86400.0
    severity: str = "warning"  # of absence, callable and (as a floor) detection alerts
    labels: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""
    channels: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ("alertname",)
    #: Alertmanager's timers of a notification group (see ``_dispatch``): wait before its first
    #: notification, and between notifications of changes. 0: at the evaluation itself.
    group_wait_s: float = 0.0
    group_interval_s: float = 0.0
    escalation: tuple[Escalation, ...] = ()
    send_resolved: bool = True
    enabled: bool = True
    #: Recurring windows without notifications (``_mute_times.MuteTime``).
    mute_times: tuple[Any, ...] = ()
    condition: Condition | None = None
    #: Where the rule came from: "file", "api" or "code".
    source: str = "code"

    def thresholds(self) -> list[tuple[str, float]]:
        """``(severity, threshold)`` pairs, most severe first."""
        out = [("critical", self.critical), ("warning", self.warning)]
        return [(s, t) for s, t in out if t is not None]

    def all_channels(self) -> tuple[str, ...]:
        """Every channel the rule may notify, escalations included."""
        names = list(self.channels)
        for step in self.escalation:
            names += [c for c in step.channels if c not in names]
        return tuple(names)

    def to_spec(self) -> dict[str, Any]:
        """The rule as the YAML/API document that ``parse_rule`` reads back."""
        from llmpulse.alerting._parse import rule_spec

        return rule_spec(self)


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """Identity of an alert series: rule name plus its labels (16 hex chars of SHA-256)."""
    doc = json.dumps([rule, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


class _Fields(string.Formatter):
    """``{name}`` only: no attribute access, indexing or conversions in templates."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        if not field_name.isidentifier():
            raise KeyError(f"{{{field_name}}} is not a plain field name")
        return super().get_field(field_name, args, kwargs)


_FORMATTER = _Fields()


def template_fields(template: str) -> list[str]:
    """The ``{field}`` names a summary template uses (``ValueError`` when it does not parse)."""
    return [name for _, name, _, _ in _FORMATTER.parse(template) if name is not None]


def render_summary(template: str, values: Mapping[str, Any]) -> tuple[str, bool]:
    """The summary text and whether it rendered; a broken template still gives text.

    As Prometheus does (PR#8193), an alert is never dropped for its template: the text becomes
    ``<error expanding template: ...>`` followed by the values, and the caller counts it.
    """
    try:
        return _FORMATTER.vformat(template, (), dict(values)), True
    except (KeyError, ValueError, IndexError, TypeError, AttributeError) as exc:
        shown = ", ".join(f"{k}={v}" for k, v in values.items() if k != "labels")
        return f"<error expanding template: {exc}> {shown}", False
