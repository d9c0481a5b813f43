"""Rule mode: the current window against the baseline window, with simple multipliers.

p95 latency at least 1.5× the baseline's, tokens per call 1.5×, cost per call 2×, error rate
up by 5 points, a branch taken 20 points more or less often (all configurable). No statistics:
easy to explain, and the fallback when a team wants fixed thresholds.
"""

from __future__ import annotations

from typing import Any

from llmpulse.checks._config import LiveConfig, RateRule, SpikeRule
from llmpulse.checks._evidence import branch_origin
from llmpulse.checks._findings import Finding, Severity
from llmpulse.checks._live import LiveResult
from llmpulse.checks._measures import Measure, fmt_value, span_scopes, subject_label
from llmpulse.checks._reader import StoreReader

__all__ = ["rule_findings"]


def _by_group(rows: list[Any], group_by: tuple[str, ...]) -> dict[tuple[Any, ...], Any]:
    return {tuple(r.group.get(k) for k in group_by): r for r in rows}


def _spike(
    m: Measure,
    subject: dict[str, Any],
    base: Any,
    cur: Any,
    cfg: LiveConfig,
    window: tuple[float, float],
) -> Finding | None:
    rule: SpikeRule = getattr(cfg, m.check)
    if min(m.weight(base), m.weight(cur)) < cfg.min_calls:
        return None
    b, c = m.value(base), m.value(cur)
    if b is None or c is None or b <= 0 or c < rule.multiplier * b or c - b < rule.min_increase:
        return None
    change = (c - b) / b * 100.0
    severity: Severity = "critical" if change >= rule.critical_pct else "warning"
    message = (
        f"{m.label} of {subject_label(subject)} is {c / b:.1f}× its baseline "
        f"({fmt_value(b, m.unit)} → {fmt_value(c, m.unit)}; rule: ≥ {rule.multiplier:g}×)"
    )
    details = {
        "baseline_calls": m.weight(base),
        "calls": m.weight(cur),
        "unit": m.unit,
        "multiplier": rule.multiplier,
    }
    return Finding(
        m.check,
        severity,
        dict(subject),
        m.metric,
        window[0],
        window[1],
        b,
        c,
        change,
        "rule",
        message,
        details=details,
    )


def _rate(
    check: str,
    metric: str,
    what: str,
    subject: dict[str, Any],
    counts: tuple[float, ...],
    rule: RateRule,
    window: tuple[float, float],
    two_sided: bool,
) -> Finding | None:
    k_base, n_base, k_cur, n_cur = counts
    b, c = k_base / n_base, k_cur / n_cur
    delta = c - b
    if (abs(delta) if two_sided else delta) < rule.rule_delta:
        return None
    severity: Severity = "critical" if abs(delta) >= rule.critical_delta else "warning"
    message = (
        f"{what} {fmt_value(b, 'rate')} → {fmt_value(c, 'rate')} "
        f"({delta * 100:+.1f} points; rule: ≥ {rule.rule_delta * 100:g} points)"
    )
    details = {
        "baseline_hits": k_base,
        "baseline_trials": n_base,
        "hits": k_cur,
        "trials": n_cur,
        "unit": "rate",
    }
    return Finding(
        check,
        severity,
        dict(subject),
        metric,
        window[0],
        window[1],
        b,
        c,
        None if b == 0 else delta / b * 100.0,
        "rule",
        message,
        details=details,
    )


def _span_rules(
    store: StoreReader,
    base_w: tuple[float, float],
    cur_w: tuple[float, float],
    cfg: LiveConfig,
    result: LiveResult,
) -> None:
    for group_by, filters, measures in span_scopes(cfg):
        base = _by_group(store.span_stats(*base_w, group_by=group_by, **filters), group_by)
        cur = _by_group(store.span_stats(*cur_w, group_by=group_by, **filters), group_by)
        for key in sorted(set(base) & set(cur), key=str):
            subject = dict(zip(group_by, key, strict=True))
            b, c = base[key], cur[key]
            for m in measures:
                if getattr(cfg, m.check).enabled:
                    result.series_checked += 1
                    finding = _spike(m, subject, b, c, cfg, cur_w)
                    if finding:
                        result.findings.append(finding)
            if cfg.error_rate_jump.enabled and min(b.calls, c.calls) >= cfg.min_calls:
                result.series_checked += 1
                finding = _rate(
                    "error_rate_jump",
                    "error_rate",
                    f"error rate of {subject_label(subject)}",
                    subject,
                    (b.errors, b.calls, c.errors, c.calls),
                    cfg.error_rate_jump,
                    cur_w,
                    False,
                )
                if finding:
                    result.findings.append(finding)


def _branch_totals(store: StoreReader, window: tuple[float, float]) -> dict[str, dict[Any, int]]:
    out: dict[str, dict[Any, int]] = {}
    for c in store.branch_counts(*window):
        out.setdefault(c.name, {})
        out[c.name][c.branch] = out[c.name].get(c.branch, 0) + c.count
    return out


def _branch_rules(
    store: StoreReader,
    base_w: tuple[float, float],
    cur_w: tuple[float, float],
    cfg: LiveConfig,
    result: LiveResult,
) -> None:
    base, cur = _branch_totals(store, base_w), _branch_totals(store, cur_w)
    for name in sorted(set(base) & set(cur)):
        n_base, n_cur = sum(base[name].values()), sum(cur[name].values())
        ways = set(base[name]) | set(cur[name])
        if min(n_base, n_cur) < cfg.min_calls or len(ways) < 2:
            continue
        # Two ways are one rate: report the rarer way only.
        ranked = sorted(ways, key=lambda b: (base[name].get(b, 0) + cur[name].get(b, 0), str(b)))
        for way in ranked[:1] if len(ranked) == 2 else ranked:
            result.series_checked += 1
            counts = (base[name].get(way, 0), n_base, cur[name].get(way, 0), n_cur)
            finding = _rate(
                "branch_shift",
                "branch_rate",
                f"branch {name!r} went {way!r}",
                {"name": name, "branch": way},
                counts,
                cfg.branch_shift,
                cur_w,
                True,
            )
            if finding:
                finding.details.update(branch_origin(name))
                result.findings.append(finding)


def rule_findings(
    store: StoreReader, baseline: tuple[float, float], window: tuple[float, float], cfg: LiveConfig
) -> LiveResult:
    """Compare ``window`` with ``baseline`` for every group with ``min_calls`` calls in both."""
    result = LiveResult()
    _span_rules(store, baseline, window, cfg, result)
    if cfg.branch_shift.enabled:
        _branch_rules(store, baseline, window, cfg, result)
    return result
