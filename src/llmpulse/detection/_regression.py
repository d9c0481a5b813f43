"""detect_regression: did ``current`` get worse than ``baseline``, by how much, how surely?"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from llmpulse.errors import DetectionInputError

from ._changepoints import detect_change_points
from ._metrics import higher_is_better_for
from ._prepare import prepare
from ._types import RegressionResult, Severity

__all__ = ["METHODS", "detect_regression"]

METHODS = ("threshold", "welch", "mannwhitney", "change_point")
_ALIASES = {
    "statistical": "welch",
    "t-test": "welch",
    "ttest": "welch",
    "mann-whitney": "mannwhitney",
    "mann_whitney": "mannwhitney",
    "changepoint": "change_point",
    "change-point": "change_point",
}
_TEST_NAMES = {
    "welch": "Welch t-test",
    "mannwhitney": "Mann-Whitney U test",
    "change_point": "change point",
}


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What a method concluded, before thresholds and wording."""

    change_pct: float | None
    delta: float  # current level minus baseline level, in the metric's units
    p_value: float | None  # one-sided in the harmful direction when that is known
    significant: bool


def _pct(before: float, after: float) -> float | None:
    """Relative change in percent; None when the reference is 0."""
    return None if before == 0 else (after - before) / abs(before) * 100.0


def _harm(change_pct: float | None, delta: float, higher_is_better: bool | None) -> float:
    """How many percent worse current is (negative: better); any move counts when unknown.

    From a baseline of exactly 0 (no errors at all) any move is infinitely many percent.
    """
    pct = change_pct if change_pct is not None else math.copysign(math.inf, delta) if delta else 0.0
    if higher_is_better is None:
        return abs(pct)
    return -pct if higher_is_better else pct


def _alternative(higher_is_better: bool | None) -> Literal["two-sided", "less", "greater"]:
    """The one-sided alternative for "current is worse" (two-sided when direction is unknown)."""
    if higher_is_better is None:
        return "two-sided"
    return "less" if higher_is_better else "greater"


def _welch(base: np.ndarray, cur: np.ndarray, alternative: str) -> float:
    """p-value of Welch's t-test (current minus baseline), defined for constant samples too."""
    # The test is scale-free; rescaling keeps its squared variances (df) from overflowing.
    scale = float(max(np.abs(base).max(), np.abs(cur).max())) or 1.0
    base, cur = base / scale, cur / scale
    diff = float(cur.mean() - base.mean())
    v1, v2 = float(base.var(ddof=1)) / base.size, float(cur.var(ddof=1)) / cur.size
    if v1 + v2 == 0:
        # Two constants: identical is no evidence at all, different is certain.
        if diff == 0:
            return 1.0
        t, df = math.copysign(math.inf, diff), 1.0
    else:
        t = diff / math.sqrt(v1 + v2)
        share = v1 / (v1 + v2)  # Welch-Satterthwaite df, written so tiny variances cannot underflow
        df = 1.0 / (share * share / (base.size - 1) + (1.0 - share) ** 2 / (cur.size - 1))
    if alternative == "greater":
        return float(stats.t.sf(t, df))
    if alternative == "less":
        return float(stats.t.cdf(t, df))
    return float(min(1.0, 2.0 * stats.t.sf(abs(t), df)))


def _statistical(
    base: np.ndarray, cur: np.ndarray, method: str, hib: bool | None, alpha: float
) -> _Verdict:
    """Welch t or Mann–Whitney U, one-sided towards "worse" when the metric says which way that is."""
    if base.size < 2 or cur.size < 2:
        raise DetectionInputError(
            f"method={method!r} needs at least 2 values in baseline and in current "
            f"(got {base.size} and {cur.size}); use method='threshold' for single values"
        )
    alternative = _alternative(hib)
    if method == "welch":
        p = _welch(base, cur, alternative)
        before, after = float(base.mean()), float(cur.mean())
    else:
        p = float(stats.mannwhitneyu(cur, base, alternative=alternative).pvalue)
        # A rank test's effect is the shift of the middle: medians, which outliers cannot drag.
        before, after = float(np.median(base)), float(np.median(cur))
    return _Verdict(_pct(before, after), after - before, p, p < alpha)


def _by_change_point(base: np.ndarray, cur: np.ndarray, hib: bool | None, alpha: float) -> _Verdict:
    """Run change-point detection over baseline + current; judge the worst change near or after the join."""
    series = np.concatenate((base, cur))
    if series.size < 16:
        raise DetectionInputError(
            f"method='change_point' needs at least 16 values in baseline + current (got {series.size}); "
            "use method='welch' or 'threshold' for short series"
        )
    found = [c for c in detect_change_points(series) if c.index >= base.size - 8]
    if not found:
        return _Verdict(
            _pct(float(base.mean()), float(cur.mean())),
            float(cur.mean() - base.mean()),
            None,
            False,
        )
    worst = max(found, key=lambda c: _harm(c.change_pct, c.after - c.before, hib))
    p = max(0.0, 1.0 - worst.confidence)
    return _Verdict(worst.change_pct, worst.after - worst.before, p, p < alpha)


def _severity(harm: float, warning_pct: float, critical_pct: float) -> Severity:
    """Severity from how many percent worse it got."""
    if harm >= critical_pct:
        return "critical"
    if harm >= warning_pct:
        return "warning"
    return "none"


def _message(
    name: str,
    severity: Severity,
    verdict: _Verdict,
    harm: float,
    warning_pct: float,
    means: tuple[float, float],
    method: str,
) -> str:
    """One plain-words sentence about the verdict."""
    pct = verdict.change_pct
    move = "no change" if pct == 0 else "up from 0" if pct is None else f"{pct:+.1f}%"
    p = verdict.p_value
    evidence = "" if p is None else f", p={p:.3g} by {_TEST_NAMES.get(method, method)}"
    levels = f"({means[0]:.4g} -> {means[1]:.4g}{evidence})"
    if severity != "none":
        return f"{name} regressed {move} {levels}: {severity}"
    if harm < 0:
        why = "better, not a regression"
    elif harm == 0:
        why = "no change"
    elif not verdict.significant:
        why = "worse, but not significant"
    else:
        why = f"worse, but below the {warning_pct:g}% warning threshold"
    return f"{name}: {move} {levels}; {why}"


def _validate(method: str, confidence_level: float, warning_pct: float, critical_pct: float) -> str:
    """The canonical method name, or a DetectionInputError naming the bad option."""
    canonical = _ALIASES.get(method, method)
    if canonical not in METHODS:
        raise DetectionInputError(
            f"method must be one of {METHODS} (or 'statistical'), got {method!r}"
        )
    if not 0.0 < confidence_level < 1.0:
        raise DetectionInputError(
            f"confidence_level must be between 0 and 1, e.g. 0.95; got {confidence_level!r}"
        )
    if not 0.0 <= warning_pct <= critical_pct:
        raise DetectionInputError(
            f"need 0 <= warning_pct <= critical_pct, got warning_pct={warning_pct!r}, critical_pct={critical_pct!r}"
        )
    return canonical


def _samples(baseline: Any, current: Any, metric: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Both samples as finite float arrays, or a DetectionInputError naming the empty one."""
    base = prepare(baseline, metric=metric).values
    cur = prepare(current, metric=metric).values
    for label, arr in (("baseline", base), ("current", cur)):
        if arr.size == 0:
            raise DetectionInputError(f"{label} has no finite values to compare")
    return base, cur


def _decide(
    method: str, base: np.ndarray, cur: np.ndarray, hib: bool | None, alpha: float
) -> _Verdict:
    """Run the chosen method."""
    if method == "threshold":
        before, after = float(base.mean()), float(cur.mean())
        return _Verdict(_pct(before, after), after - before, None, True)
    if method == "change_point":
        return _by_change_point(base, cur, hib, alpha)
    return _statistical(base, cur, method, hib, alpha)


def detect_regression(
    baseline: Any,
    current: Any,
    *,
    method: str = "welch",
    metric: str | None = None,
    higher_is_better: bool | None = None,
    confidence_level: float = 0.95,
    warning_pct: float = 5.0,
    critical_pct: float = 15.0,
) -> RegressionResult:
    """Whether current is worse than baseline by at least warning_pct (and significantly, for tests)."""
    canonical = _validate(method, confidence_level, warning_pct, critical_pct)
    base, cur = _samples(baseline, current, metric)
    hib = higher_is_better if higher_is_better is not None else higher_is_better_for(metric)
    verdict = _decide(canonical, base, cur, hib, 1.0 - confidence_level)
    harm = _harm(verdict.change_pct, verdict.delta, hib)
    bad = harm > 0
    regressed = bad and verdict.significant and harm >= warning_pct
    severity: Severity = _severity(harm, warning_pct, critical_pct) if regressed else "none"
    base_mean, cur_mean = float(base.mean()), float(cur.mean())
    p = verdict.p_value
    message = _message(
        metric or "metric", severity, verdict, harm, warning_pct, (base_mean, cur_mean), canonical
    )
    return RegressionResult(
        regressed=regressed,
        change_pct=verdict.change_pct,
        severity=severity,
        confidence=None if p is None else 1.0 - p,
        p_value=p,
        method=canonical,
        direction_is_bad=bad,
        higher_is_better=hib,
        baseline_mean=base_mean,
        current_mean=cur_mean,
        message=message,
    )
