"""Configuration of the checks: dataclasses in code, the same shape in YAML.

    live:
      method: statistical          # or: rule (the simple multipliers)
      latency_spike: {warning_pct: 25, critical_pct: 100, multiplier: 1.5}
      error_rate_jump: {warning_delta: 0.02, critical_delta: 0.1}
    runs:
      lookback_days: 30
      metrics:
        accuracy: {method: mannwhitney, higher_is_better: true, warning_pct: 2, critical_pct: 5}

Every value is checked when the object is built; a bad key or value is a ``ConfigError``
naming it (with its path in the YAML) and what would be accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from llmpulse.errors import ConfigError

__all__ = ["CheckConfig", "LiveConfig", "MetricRule", "RateRule", "RunsConfig", "SpikeRule"]

_LIVE_METHODS = ("statistical", "rule")
_RUN_METHODS = ("welch", "mannwhitney", "threshold", "changepoint", "change_point", "statistical")
_GROUP_KEYS = ("model", "kind", "name", "prompt_version", "provider")


def _require(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"checks config: {where} {message}")


def _positive(where: str, value: float) -> None:
    _require(value > 0, where, f"must be > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class SpikeRule:
    """When a rise of latency, tokens or cost is reported, and how severe it is.

    Statistical mode reports a detected spike whose level rose by ``warning_pct`` or more
    (``critical_pct``: critical). Rule mode reports ``current >= multiplier * baseline``.
    Both also need the level to have grown by ``min_increase`` in the metric's own units
    (milliseconds for latency): a p95 going from 30 to 90 ms triples, yet is no incident for
    an LLM call, and is within what a busy machine's scheduler adds by itself.
    """

    enabled: bool = True
    warning_pct: float = 25.0
    critical_pct: float = 100.0
    multiplier: float = 1.5
    min_increase: float = 0.0

    def __post_init__(self) -> None:
        _require(
            0 <= self.warning_pct <= self.critical_pct,
            "spike thresholds",
            f"need 0 <= warning_pct <= critical_pct, got {self.warning_pct!r} and {self.critical_pct!r}",
        )
        _require(self.multiplier > 1, "multiplier", f"must be > 1, got {self.multiplier!r}")
        _require(self.min_increase >= 0, "min_increase", f"must be >= 0, got {self.min_increase!r}")


@dataclass(frozen=True, slots=True)
class RateRule:
    """When a move of a rate (error rate, branch rate) is reported, in absolute rate units.

    ``warning_delta=0.02`` means two percentage points; rule mode reports a move of at least
    ``rule_delta`` between the baseline and the current window.
    """

    enabled: bool = True
    warning_delta: float = 0.02
    critical_delta: float = 0.10
    rule_delta: float = 0.05

    def __post_init__(self) -> None:
        _require(
            0 <= self.warning_delta <= self.critical_delta <= 1,
            "rate thresholds",
            "need 0 <= warning_delta <= critical_delta <= 1, "
            f"got {self.warning_delta!r} and {self.critical_delta!r}",
        )
        _require(
            0 < self.rule_delta <= 1, "rule_delta", f"must be in (0, 1], got {self.rule_delta!r}"
        )


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """Checks over live traffic (spans in the store)."""

    method: str = "statistical"
    bucket_seconds: int | None = None  # None: chosen from the data's extent and volume
    max_points: int = 1500  # the finest step keeps a series at most this long
    min_points: int = 12  # usable buckets a series needs to be checked at all
    min_calls_per_bucket: int = 5  # thinner buckets carry no value (too noisy to judge)
    min_calls: int = 20  # rule mode: calls each window needs
    min_buckets: int = 3  # a spike must hold this many flagged buckets in a row
    merge_gap_buckets: int = 1  # flagged buckets this close together are one incident
    alpha: float = 0.01  # family-wise false-alarm budget of the count tests
    anomaly_threshold: float = 4.5  # robust z of a spiking bucket
    change_point_min_size: int = 8  # buckets a new level must last to be a change point
    llm_group_by: tuple[str, ...] = ("model", "prompt_version")
    workflow_kinds: tuple[str, ...] = ("chain", "agent", "task")
    latency_spike: SpikeRule = field(
        default_factory=lambda: SpikeRule(multiplier=1.5, min_increase=100.0)
    )
    token_spike: SpikeRule = field(default_factory=lambda: SpikeRule(multiplier=1.5))
    cost_spike: SpikeRule = field(default_factory=lambda: SpikeRule(multiplier=2.0))
    error_rate_jump: RateRule = field(default_factory=RateRule)
    branch_shift: RateRule = field(
        default_factory=lambda: RateRule(warning_delta=0.1, critical_delta=0.2, rule_delta=0.2)
    )

    def __post_init__(self) -> None:
        _require(
            self.method in _LIVE_METHODS,
            "live.method",
            f"must be one of {_LIVE_METHODS}, got {self.method!r}",
        )
        if self.bucket_seconds is not None:
            _require(
                self.bucket_seconds >= 60 and self.bucket_seconds % 60 == 0,
                "live.bucket_seconds",
                f"must be a whole number of minutes (60, 120, 300, ...), got {self.bucket_seconds!r}",
            )
        for name in (
            "max_points",
            "min_points",
            "min_calls_per_bucket",
            "min_calls",
            "min_buckets",
        ):
            _require(
                getattr(self, name) >= 1,
                f"live.{name}",
                f"must be >= 1, got {getattr(self, name)!r}",
            )
        _require(self.min_points >= 8, "live.min_points", f"must be >= 8, got {self.min_points!r}")
        _require(self.merge_gap_buckets >= 0, "live.merge_gap_buckets", "must be >= 0")
        _require(
            0 < self.alpha < 1,
            "live.alpha",
            f"must be between 0 and 1, e.g. 0.01; got {self.alpha!r}",
        )
        _positive("live.anomaly_threshold", self.anomaly_threshold)
        _require(self.change_point_min_size >= 3, "live.change_point_min_size", "must be >= 3")
        for key in self.llm_group_by:
            _require(
                key in _GROUP_KEYS,
                "live.llm_group_by",
                f"cannot contain {key!r}; choose from {_GROUP_KEYS}",
            )


@dataclass(frozen=True, slots=True)
class MetricRule:
    """How one run metric is judged (``runs.default`` for metrics without their own rule).

    ``method`` is passed to ``llmpulse.detection.detect_regression``; ``min_points`` is the
    number of baseline runs needed; ``lookback_days`` overrides the runs' lookback for this
    metric; ``higher_is_better`` overrides what the metric's name suggests.
    """

    method: str = "welch"
    confidence: float = 0.95
    min_points: int = 3
    warning_pct: float = 5.0
    critical_pct: float = 15.0
    higher_is_better: bool | None = None
    lookback_days: float | None = None

    def __post_init__(self) -> None:
        _require(
            self.method in _RUN_METHODS,
            "method",
            f"must be one of {_RUN_METHODS}, got {self.method!r}",
        )
        _require(
            0 < self.confidence < 1,
            "confidence",
            f"must be between 0 and 1, e.g. 0.95; got {self.confidence!r}",
        )
        _require(self.min_points >= 1, "min_points", f"must be >= 1, got {self.min_points!r}")
        _require(
            0 <= self.warning_pct <= self.critical_pct,
            "metric thresholds",
            f"need 0 <= warning_pct <= critical_pct, got {self.warning_pct!r} and {self.critical_pct!r}",
        )
        if self.lookback_days is not None:
            _positive("lookback_days", self.lookback_days)


@dataclass(frozen=True, slots=True)
class RunsConfig:
    """Regression and trend checks over benchmark and experiment runs."""

    enabled: bool = True
    lookback_days: float = 30.0
    baseline_runs: int = 10  # at most this many runs before the current ones form the baseline
    current_runs: int = 3  # the latest runs of a (group, model)
    trend: bool = True
    trend_min_points: int = 6
    adjust_for_multiple_tests: bool = True  # Bonferroni over every (group, model, metric) tested
    kinds: tuple[str, ...] = ()  # run kinds to check; empty: all
    default: MetricRule = field(default_factory=MetricRule)
    metrics: Mapping[str, MetricRule] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        _positive("runs.lookback_days", self.lookback_days)
        for name in ("baseline_runs", "current_runs"):
            _require(
                getattr(self, name) >= 1,
                f"runs.{name}",
                f"must be >= 1, got {getattr(self, name)!r}",
            )
        _require(self.trend_min_points >= 3, "runs.trend_min_points", "must be >= 3")
        if not isinstance(self.metrics, MappingProxyType):
            object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    def rule_for(self, metric: str) -> MetricRule:
        """The rule for ``metric``: its own, or the default."""
        return self.metrics.get(metric, self.default)


@dataclass(frozen=True, slots=True)
class CheckConfig:
    """All check settings: ``live`` traffic and ``runs``. Build in code or ``from_yaml(path)``.

    >>> cfg = CheckConfig.from_dict({"live": {"method": "rule"}})
    >>> cfg.live.latency_spike.multiplier
    1.5
    """

    live: LiveConfig = field(default_factory=LiveConfig)
    runs: RunsConfig = field(default_factory=RunsConfig)

    @classmethod
    def from_dict(cls, data: Any) -> CheckConfig:
        """Build from plain data (as YAML gives); unknown keys and bad values raise ``ConfigError``."""
        from llmpulse.checks._config_load import build

        config: CheckConfig = build(cls, data, "")
        return config

    @classmethod
    def from_yaml(cls, path: str) -> CheckConfig:
        """Read a YAML file shaped like ``from_dict``'s input; errors name the file and line."""
        from llmpulse._config_file import FieldError, read_yaml_file

        doc = read_yaml_file(path, "checks config")
        try:
            return cls.from_dict(doc.data)
        except FieldError as exc:
            raise doc.locate(exc) from None
