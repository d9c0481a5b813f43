"""Rule documents (YAML or API JSON) to :class:`Rule` s, with errors naming the field.

Every check raises a :class:`FieldError` whose field is the dotted path inside the document
(``rules[2].warning``); the file loader turns it into ``rules.yaml line 14: rules[2].warning:
...``. The API gets the same message without the file part.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping
from typing import Any

from llmpulse._config_file import FieldError
from llmpulse._duration import format_duration, parse_duration
from llmpulse.alerting._mute_times import parse_mute_times
from llmpulse.alerting._rules import (
    COMPARATORS,
    POINT_AGGREGATIONS,
    POINT_METRICS,
    RULE_TYPES,
    SPAN_METRICS,
    Escalation,
    InhibitRule,
    Rule,
    template_fields,
)
from llmpulse.errors import ConfigError

__all__ = ["parse_inhibit_rule", "parse_rule", "rule_spec"]

_ROLLUP_KEYS = ("model", "kind", "name", "prompt_version", "provider", "branch")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: A label name, or ``...`` alone (every label: no grouping, as in Alertmanager).
_GROUP_BY = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]{0,63}|\.\.\.)$")
_SEVERITIES = ("info", "warning", "critical")
_CHECKS = (
    "latency_spike",
    "token_spike",
    "cost_spike",
    "error_rate_jump",
    "branch_shift",
    "regression",
    "trend",
)
_KEYS: dict[str, tuple[str, ...]] = {
    "common": (
        "name", "type", "window", "for", "keep_firing_for", "repeat_interval", "labels",
        "summary", "channels", "group_by", "group_wait", "group_interval", "escalation",
        "send_resolved", "enabled", "severity", "filters", "mute_times",
    ),
    "threshold": (
        "metric", "by", "condition", "warning", "critical", "min_requests", "quota", "point",
    ),
    "absence": (),
    "detection": ("checks", "min_confidence", "baseline"),
}  # fmt: skip


def _fail(path: str, detail: str) -> FieldError:
    return FieldError(f"{path}: {detail}", path, detail)


def _unknown_keys(doc: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in doc:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" — did you mean '{close[0]}'?" if close else ""
            raise _fail(f"{path}.{key}", f"is not a rule setting{hint}")


def _duration(doc: Mapping[str, Any], key: str, path: str, default: float, zero: bool) -> float:
    value = doc.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        raise _fail(f"{path}.{key}", f"must be a duration like 5m, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif zero and str(value).strip() in ("0", "0s"):
        seconds = 0.0
    else:
        try:
            seconds = parse_duration(str(value))
        except ConfigError as exc:
            raise _fail(f"{path}.{key}", str(exc)) from None
    if not (seconds > 0 or (zero and seconds == 0)) or seconds > 366 * 86400:
        raise _fail(f"{path}.{key}", f"must be {'0 or ' if zero else ''}between 1s and 366d")
    return seconds


def _number(doc: Mapping[str, Any], key: str, path: str) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise _fail(f"{path}.{key}", f"must be a number, got {value!r}")
    if abs(value) == float("inf"):
        raise _fail(f"{path}.{key}", "must be finite")
    return float(value)


def _strings(value: Any, path: str, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _fail(path, f"must be a list of strings, got {value!r}")
    for i, v in enumerate(value):
        if pattern is not None and not pattern.match(v):
            raise _fail(f"{path}[{i}]", f"{v!r} is not a valid name (letters, digits, _)")
    return tuple(value)


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(path, f"must be a mapping, got {type(value).__name__}")
    return value


def _labels(value: Any, path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in _mapping(value, path).items():
        if not isinstance(k, str) or not _LABEL.match(k):
            raise _fail(f"{path}.{k}", "is not a valid label name (letters, digits, _)")
        if k in ("alertname", "severity"):
            raise _fail(f"{path}.{k}", "is set by the engine; it cannot be a rule label")
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise _fail(f"{path}.{k}", f"must be a string, got {v!r}")
        out[k] = str(v)
    return out


def _filters(value: Any, path: str, rollup: bool) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for k, v in _mapping(value, path).items():
        if rollup and k not in _ROLLUP_KEYS:
            raise _fail(
                f"{path}.{k}", f"cannot filter by it; choose from {', '.join(_ROLLUP_KEYS)}"
            )
        values = _strings([str(x) for x in v] if isinstance(v, list) else str(v), f"{path}.{k}")
        if not values:
            raise _fail(f"{path}.{k}", "needs at least one value")
        out[str(k)] = values
    return out


def _escalation(value: Any, path: str) -> tuple[Escalation, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(path, "must be a list of {after: 15m, channels: [...]}")
    steps = []
    for i, item in enumerate(value):
        sub = f"{path}[{i}]"
        doc = _mapping(item, sub)
        _unknown_keys(doc, ("after", "channels"), sub)
        if "after" not in doc or "channels" not in doc:
            raise _fail(sub, "needs both 'after' and 'channels'")
        channels = _strings(doc["channels"], f"{sub}.channels", _NAME)
        if not channels:
            raise _fail(f"{sub}.channels", "needs at least one channel")
        steps.append(Escalation(_duration(doc, "after", sub, 0.0, False), channels))
    if any(b.after_s <= a.after_s for a, b in itertools.pairwise(steps)):
        raise _fail(path, "steps must come in increasing 'after' order")
    return tuple(steps)


def _threshold_part(doc: Mapping[str, Any], path: str) -> dict[str, Any]:
    metric = doc.get("metric")
    choices = [*SPAN_METRICS, *POINT_METRICS, "point"]
    if not isinstance(metric, str) or metric not in choices:
        close = difflib.get_close_matches(str(metric), choices, n=1)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        raise _fail(f"{path}.metric", f"must be one of {', '.join(choices)}{hint}")
    out: dict[str, Any] = {"metric": metric}
    op = doc.get("condition", ">")
    if op not in COMPARATORS:
        raise _fail(f"{path}.condition", f"must be one of {' '.join(COMPARATORS)}, got {op!r}")
    out.update(_levels(doc, op, path))
    rollup = metric in SPAN_METRICS
    out["by"] = _strings(doc.get("by", []), f"{path}.by", _LABEL)
    for i, key in enumerate(out["by"]):
        if rollup and key not in _ROLLUP_KEYS:
            raise _fail(
                f"{path}.by[{i}]", f"cannot split by it; choose from {', '.join(_ROLLUP_KEYS)}"
            )
    out["filters"] = _filters(doc.get("filters"), f"{path}.filters", rollup)
    if rollup and "kind" not in out["filters"]:
        out["filters"] = {**out["filters"], "kind": ("llm",)}
    out["min_requests"] = _min_requests(doc, path)
    out["quota"] = _number(doc, "quota", path)
    if metric == "token_quota" and (out["quota"] is None or out["quota"] <= 0):
        raise _fail(f"{path}.quota", "metric token_quota needs quota: the token budget (> 0)")
    if metric == "point":
        out.update(_point(doc.get("point"), f"{path}.point"))
    elif "point" in doc:
        raise _fail(f"{path}.point", "is only for metric: point")
    elif metric in POINT_METRICS:
        out["point_name"], out["point_agg"] = POINT_METRICS[metric][:2]
    return out


def _min_requests(doc: Mapping[str, Any], path: str) -> int:
    value = _number(doc, "min_requests", path)
    if value is not None and (value < 1 or value != int(value)):
        raise _fail(f"{path}.min_requests", "must be a whole number >= 1")
    return int(value or 1)


def _levels(doc: Mapping[str, Any], op: str, path: str) -> dict[str, Any]:
    w, c = _number(doc, "warning", path), _number(doc, "critical", path)
    if w is None and c is None:
        raise _fail(path, "a threshold rule needs 'warning', 'critical' or both")
    if w is not None and c is not None and (c < w if op in (">", ">=") else c > w):
        raise _fail(f"{path}.critical", f"must be beyond warning ({w}) for condition {op}")
    return {"op": op, "warning": w, "critical": c}


def _point(value: Any, path: str) -> dict[str, Any]:
    doc = _mapping(value, path)
    _unknown_keys(doc, ("name", "aggregate"), path)
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(f"{path}.name", "must name the metric points to read")
    agg = doc.get("aggregate", "avg")
    if agg not in POINT_AGGREGATIONS:
        raise _fail(f"{path}.aggregate", f"must be one of {', '.join(POINT_AGGREGATIONS)}")
    return {"point_name": name, "point_agg": agg}


def _detection_part(doc: Mapping[str, Any], path: str) -> dict[str, Any]:
    checks = _strings(doc.get("checks", list(_CHECKS)), f"{path}.checks")
    for i, c in enumerate(checks):
        if c not in _CHECKS:
            raise _fail(f"{path}.checks[{i}]", f"must be one of {', '.join(_CHECKS)}")
    conf = _number(doc, "min_confidence", path)
    if conf is not None and not 0 <= conf <= 1:
        raise _fail(f"{path}.min_confidence", "must be between 0 and 1")
    return {
        "checks": checks,
        "min_confidence": conf or 0.0,
        "baseline_s": _duration(doc, "baseline", path, 7 * 86400.0, False),
        "filters": _filters(doc.get("filters"), f"{path}.filters", True),
    }


def _check_summary(rule: Rule, path: str) -> None:
    known = {"rule", "severity", "value", "threshold", "window", "alertname", "baseline"}
    known |= set(rule.by) | set(rule.labels) | set(rule.filters)
    if rule.type == "detection":
        known |= {"check", "metric", *_ROLLUP_KEYS}
    try:
        names = template_fields(rule.summary)
    except ValueError as exc:
        raise _fail(f"{path}.summary", f"is not a valid template: {exc}") from None
    for name in names:
        if name not in known:
            raise _fail(
                f"{path}.summary",
                f"uses {{{name}}}, which this rule does not have; known: {', '.join(sorted(known))}",
            )


def parse_rule(doc: Any, path: str = "rule", *, source: str = "file") -> Rule:
    """One rule document to a :class:`Rule`; ``FieldError`` names the first bad field."""
    doc = _mapping(doc, path)
    kind = doc.get("type", "threshold")
    if kind not in RULE_TYPES or kind == "callable":
        raise _fail(f"{path}.type", "must be threshold, absence or detection")
    _unknown_keys(doc, _KEYS["common"] + _KEYS[kind], path)
    name = doc.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(f"{path}.name", "is required: letters, digits and _ . : - (at most 128)")
    kw: dict[str, Any] = {"name": name, "type": kind, "source": source}
    if kind == "threshold":
        kw.update(_threshold_part(doc, path))
    elif kind == "detection":
        kw.update(_detection_part(doc, path))
    else:
        kw["filters"] = _filters(doc.get("filters"), f"{path}.filters", True)
    severity = doc.get("severity", "critical" if kind == "absence" else "warning")
    if severity not in _SEVERITIES:
        raise _fail(f"{path}.severity", f"must be one of {', '.join(_SEVERITIES)}")
    kw["severity"] = severity
    kw["window_s"] = _duration(doc, "window", path, 3600.0 if kind == "detection" else 300.0, False)
    kw["for_s"] = _duration(doc, "for", path, 0.0, True)
    kw["keep_firing_for_s"] = _duration(doc, "keep_firing_for", path, 0.0, True)
    kw["repeat_interval_s"] = _duration(doc, "repeat_interval", path, 4 * 3600.0, False)
    kw["group_wait_s"] = _duration(doc, "group_wait", path, 0.0, True)
    kw["group_interval_s"] = _duration(doc, "group_interval", path, 0.0, True)
    kw["labels"] = _labels(doc.get("labels"), f"{path}.labels")
    summary = doc.get("summary", "")
    if not isinstance(summary, str):
        raise _fail(f"{path}.summary", "must be a string")
    kw["summary"] = summary
    kw["channels"] = _strings(doc.get("channels", []), f"{path}.channels", _NAME)
    kw["group_by"] = _strings(doc.get("group_by", ["alertname"]), f"{path}.group_by", _GROUP_BY)
    kw["escalation"] = _escalation(doc.get("escalation"), f"{path}.escalation")
    for key in ("send_resolved", "enabled"):
        if not isinstance(doc.get(key, True), bool):
            raise _fail(f"{path}.{key}", "must be true or false")
        kw[key] = doc.get(key, True)
    kw["mute_times"] = parse_mute_times(doc.get("mute_times"), f"{path}.mute_times")
    rule = Rule(**kw)
    _check_summary(rule, path)
    return rule


def parse_inhibit_rule(doc: Any, path: str) -> InhibitRule:
    """One ``inhibit_rules`` entry: ``{source: {labels}, target: {labels}, equal: [...]}``."""
    doc = _mapping(doc, path)
    _unknown_keys(doc, ("source", "target", "equal"), path)
    source = {str(k): str(v) for k, v in _mapping(doc.get("source"), f"{path}.source").items()}
    target = {str(k): str(v) for k, v in _mapping(doc.get("target"), f"{path}.target").items()}
    if not source or not target:
        raise _fail(path, "needs non-empty 'source' and 'target' label matches")
    equal = doc.get("equal")
    return InhibitRule(
        source, target, None if equal is None else _strings(equal, f"{path}.equal", _LABEL)
    )


def rule_spec(rule: Rule) -> dict[str, Any]:
    """The document of ``rule`` (``parse_rule(rule_spec(r)) == r`` for stored rules)."""
    if rule.type == "callable":
        raise ConfigError(f"rule {rule.name!r} has a Python condition; it cannot be stored")
    doc: dict[str, Any] = {"name": rule.name, "type": rule.type}
    if rule.type == "threshold":
        doc["metric"] = rule.metric
        doc["condition"] = rule.op
        doc.update({k: v for k in ("warning", "critical") if (v := getattr(rule, k)) is not None})
        doc["by"] = list(rule.by)
        doc["min_requests"] = rule.min_requests
        if rule.quota is not None:
            doc["quota"] = rule.quota
        if rule.metric == "point":
            doc["point"] = {"name": rule.point_name, "aggregate": rule.point_agg}
    if rule.type == "detection":
        doc["checks"] = list(rule.checks)
        doc["min_confidence"] = rule.min_confidence
        doc["baseline"] = format_duration(rule.baseline_s)
    doc["filters"] = {k: list(v) for k, v in rule.filters.items()}
    doc["severity"] = rule.severity
    doc["window"] = format_duration(rule.window_s)
    doc["for"] = format_duration(rule.for_s) if rule.for_s else 0
    doc["keep_firing_for"] = (
        format_duration(rule.keep_firing_for_s) if rule.keep_firing_for_s else 0
    )
    doc["repeat_interval"] = format_duration(rule.repeat_interval_s)
    doc["labels"] = dict(rule.labels)
    doc["summary"] = rule.summary
    doc["channels"] = list(rule.channels)
    doc["group_by"] = list(rule.group_by)
    for key in ("group_wait", "group_interval"):
        seconds = getattr(rule, f"{key}_s")
        doc[key] = format_duration(seconds) if seconds else 0
    doc["escalation"] = [
        {"after": format_duration(e.after_s), "channels": list(e.channels)} for e in rule.escalation
    ]
    doc["mute_times"] = [m.to_spec() for m in rule.mute_times]
    doc["send_resolved"] = rule.send_resolved
    doc["enabled"] = rule.enabled
    return doc
