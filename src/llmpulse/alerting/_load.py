"""Rules files: ``rules:``, ``channels:``, ``inhibit_rules:`` and ``network:`` in one YAML document.

::

    network:                 # optional; internal receivers the channels below may reach
      allow: [10.20.0.0/16, alertmanager.internal]
    channels:
      oncall: {type: webhook, url: https://hooks.example.com/llm}
    rules:
      - name: high_latency
        metric: latency_p95_ms
        by: [model]
        window: 5m
        warning: 2000
        critical: 5000
        for: 2m
        channels: [oncall]
    inhibit_rules:           # optional; the default mutes a warning while its critical fires
      - source: {severity: critical}
        target: {severity: warning}

Errors name the file, line and field (``rules.yaml line 9: rules[0].warning: must be a
number, got 'high'``). Channels are built when the file is loaded, so an unknown channel type,
a bad URL or an address the network policy blocks is refused at load, not when a rule fires.
The file's ``network.allow`` adds to the policy the caller gives (the server's
``alert_allow_network`` setting, ``--allow-network``): whoever writes the rules file chooses its
receivers, while rules saved through the API can only name the channels configured here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmpulse._config_file import FieldError, read_yaml_file
from llmpulse.alerting._parse import parse_inhibit_rule, parse_rule
from llmpulse.alerting._rules import DEFAULT_INHIBIT, InhibitRule, Rule
from llmpulse.errors import ConfigError

if TYPE_CHECKING:
    from llmpulse.alerting.channels import Channel, NetworkPolicy

__all__ = ["DEFAULT_RULES_FILE", "RuleSet", "check_channels", "load_rules", "parse_rule_set"]

#: The top-level keys of a rules file.
SECTIONS = ("rules", "channels", "inhibit_rules", "network")

#: The commented default rules shipped in the package (``llmpulse alerts rules --defaults``).
DEFAULT_RULES_FILE = "default_rules.yaml"


@dataclass(frozen=True)
class RuleSet:
    """Rules, the channels they notify (built), and the inhibit rules of one rules file."""

    rules: tuple[Rule, ...] = ()
    channels: Mapping[str, Channel] = field(default_factory=dict)
    inhibit_rules: tuple[InhibitRule, ...] = (DEFAULT_INHIBIT,)
    channel_specs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The network policy the channels were built under (the caller's plus ``network.allow``).
    network: NetworkPolicy | None = None


def _fail(path: str, detail: str) -> FieldError:
    return FieldError(f"{path}: {detail}", path, detail)


def _network_policy(section: Any, policy: NetworkPolicy | None) -> NetworkPolicy:
    """The caller's policy plus the file's ``network: {allow: [...]}``."""
    from llmpulse.alerting.channels import NetworkPolicy

    base = policy or NetworkPolicy()
    if section is None:
        return base
    if not isinstance(section, Mapping):
        raise _fail("network", "must be a mapping with allow: [addresses, CIDRs or hostnames]")
    extra = sorted(map(str, set(section) - {"allow"}))
    if extra:
        raise _fail(f"network.{extra[0]}", "unknown field (only allow)")
    allow = section.get("allow")
    if allow is None:
        return base
    if not isinstance(allow, list):
        raise _fail("network.allow", "must be a list of addresses, CIDRs or hostnames")
    try:
        return base.extended(allow)
    except FieldError as exc:
        raise _fail(f"network.{exc.field}", exc.detail) from None


def _build_channels(
    specs: Any, policy: NetworkPolicy | None
) -> tuple[dict[str, Channel], dict[str, Mapping[str, Any]]]:
    if specs is None:
        return {}, {}
    if not isinstance(specs, Mapping):
        raise _fail("channels", "must map channel names to their settings")
    if not specs:
        return {}, {}
    from llmpulse.alerting.channels import NetworkPolicy, build_channel

    built: dict[str, Channel] = {}
    for name, spec in specs.items():
        if isinstance(spec, Mapping) and "send_resolved" in spec:
            if not isinstance(spec["send_resolved"], bool):
                raise _fail(f"channels.{name}.send_resolved", "must be true or false")
            spec = {k: v for k, v in spec.items() if k != "send_resolved"}
        try:
            built[str(name)] = build_channel(str(name), spec, allow=policy or NetworkPolicy())
        except FieldError as exc:
            raise _fail(f"channels.{name}.{exc.field}", exc.detail) from None
        except ConfigError as exc:
            raise _fail(f"channels.{name}", str(exc)) from None
    return built, {str(k): v for k, v in specs.items()}


#: Channel kinds that send no resolved notices unless their spec says ``send_resolved: true``
#: (Alertmanager's defaults: email false; webhook, Slack, Discord true).
QUIET_ON_RESOLVE = ("email",)


def resolved_channels(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, bool]:
    """Whether each configured channel gets resolved notices (``send_resolved``, by kind)."""
    return {
        name: bool(spec.get("send_resolved", spec.get("type") not in QUIET_ON_RESOLVE))
        for name, spec in specs.items()
    }


def check_channels(rule: Rule, known: Iterable[str], path: str) -> None:
    """``FieldError`` when ``rule`` names a channel that is not configured."""
    names = set(known)
    for i, name in enumerate(rule.channels):
        if name not in names:
            raise _fail(f"{path}.channels[{i}]", _unknown(name, names))
    for i, step in enumerate(rule.escalation):
        for j, name in enumerate(step.channels):
            if name not in names:
                raise _fail(f"{path}.escalation[{i}].channels[{j}]", _unknown(name, names))


def _unknown(name: str, names: set[str]) -> str:
    known = ", ".join(sorted(names)) or "none are configured"
    return f"unknown channel {name!r} (configured: {known})"


def parse_rule_set(
    data: Any,
    *,
    policy: NetworkPolicy | None = None,
    extra_channels: Mapping[str, Channel] | None = None,
) -> RuleSet:
    """A rules document (already parsed YAML/JSON) to a :class:`RuleSet`.

    ``extra_channels`` are channels built in code that rules may name besides the file's.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise _fail(
            "", "a rules file is a mapping with rules:, channels:, inhibit_rules:, network:"
        )
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise _fail(sorted(map(str, unknown))[0], f"is not a section ({', '.join(SECTIONS)})")
    policy = _network_policy(data.get("network"), policy)
    channels, specs = _build_channels(data.get("channels"), policy)
    channels = {**(extra_channels or {}), **channels}
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        raise _fail("rules", "must be a list of rules")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, doc in enumerate(raw_rules):
        rule = parse_rule(doc, f"rules[{i}]", source="file")
        if rule.name in seen:
            raise _fail(f"rules[{i}].name", f"{rule.name!r} is defined twice")
        seen.add(rule.name)
        check_channels(rule, channels, f"rules[{i}]")
        rules.append(rule)
    inhibit = data.get("inhibit_rules")
    if inhibit is None:
        inhibit_rules: tuple[InhibitRule, ...] = (DEFAULT_INHIBIT,)
    elif not isinstance(inhibit, list):
        raise _fail("inhibit_rules", "must be a list")
    else:
        inhibit_rules = tuple(
            parse_inhibit_rule(d, f"inhibit_rules[{i}]") for i, d in enumerate(inhibit)
        )
    return RuleSet(tuple(rules), channels, inhibit_rules, specs, policy)


def load_rules(
    path: str | Path,
    *,
    policy: NetworkPolicy | None = None,
    extra_channels: Mapping[str, Channel] | None = None,
) -> RuleSet:
    """Read and check a rules file; ``ConfigError`` names the file, line and field."""
    doc = read_yaml_file(path, "rules file")
    try:
        return parse_rule_set(doc.data, policy=policy, extra_channels=extra_channels)
    except FieldError as exc:
        raise doc.locate(exc) from None


def default_rules_text() -> str:
    """The text of the shipped default rules file (commented)."""
    return (resources.files("llmpulse.alerting") / DEFAULT_RULES_FILE).read_text(encoding="utf-8")
