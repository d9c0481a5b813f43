"""Alerting: rules, the engine that evaluates them, and the channels that deliver notifications.

Rules come from YAML (``load_rules``), the REST API or code (a :class:`Rule`, with a Python
``condition`` in embedded use); the engine evaluates them on an interval with Prometheus and
Alertmanager semantics and hands notifications to a durable outbox that the delivery worker
sends through ``llmpulse.alerting.channels`` (email, Slack, Discord, signed webhooks,
Alertmanager forwarding, custom handlers)::

    from llmpulse.alerting import load_rules

    rules = load_rules("rules.yaml")       # ConfigError: "rules.yaml line 9: rules[0].warning: ..."

See docs/alerting.md. Importing this package loads no HTTP, SMTP or database code.
"""

from __future__ import annotations

from llmpulse.alerting._engine import AlertEngine, TickReport
from llmpulse.alerting._load import RuleSet, default_rules_text, load_rules, parse_rule_set
from llmpulse.alerting._outbox import DeliveryReport, DeliveryWorker
from llmpulse.alerting._parse import parse_rule
from llmpulse.alerting._query import EvalContext
from llmpulse.alerting._rules import (
    POINT_METRICS,
    SPAN_METRICS,
    Condition,
    Escalation,
    InhibitRule,
    Rule,
    Sample,
    fingerprint,
)
from llmpulse.alerting._runner import AlertRunner

__all__ = [
    "POINT_METRICS",
    "SPAN_METRICS",
    "AlertEngine",
    "AlertRunner",
    "Condition",
    "DeliveryReport",
    "DeliveryWorker",
    "Escalation",
    "EvalContext",
    "InhibitRule",
    "Rule",
    "RuleSet",
    "Sample",
    "TickReport",
    "default_rules_text",
    "fingerprint",
    "load_rules",
    "parse_rule",
    "parse_rule_set",
]
