"""Silences and inhibition: which firing alerts send nothing right now.

Matchers are Alertmanager's: ``name`` ``op`` ``value`` with op ``=``, ``!=``, ``=~`` or ``!~``;
regular expressions are anchored at both ends; a missing label is the empty string. A silence
must have a matcher that does not match the empty string, so that it cannot silence
everything by accident (``foo=~".*"`` alone is refused). Times are Unix seconds (UTC).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmpulse._config_file import FieldError
from llmpulse.alerting._rules import InhibitRule

__all__ = ["Inhibitor", "Matcher", "inhibited", "new_silence", "parse_matchers", "silenced"]

_OPS = ("=", "!=", "=~", "!~")
_MAX_SILENCE_SECONDS = 366 * 86400.0


@dataclass(frozen=True)
class Matcher:
    """One label matcher."""

    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher (a missing label is ``""``)."""
        have = labels.get(self.name, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = re.fullmatch(self.value, have) is not None
        return found if self.op == "=~" else not found

    def to_dict(self) -> dict[str, str]:
        """``{"name", "op", "value"}``."""
        return {"name": self.name, "op": self.op, "value": self.value}


def _fail(path: str, detail: str) -> FieldError:
    return FieldError(f"{path}: {detail}", path, detail)


def parse_matchers(docs: Sequence[Any], path: str = "matchers") -> list[Matcher]:
    """Matchers from ``[{"name", "op", "value"}]``; ``FieldError`` names the bad one."""
    if not isinstance(docs, (list, tuple)) or not docs:
        raise _fail(path, "needs at least one matcher {name, op, value}")
    out = []
    for i, doc in enumerate(docs):
        sub = f"{path}[{i}]"
        if not isinstance(doc, Mapping) or set(doc) - {"name", "op", "value"}:
            raise _fail(sub, "must be {name, op, value}")
        name, op, value = doc.get("name"), doc.get("op", "="), doc.get("value")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise _fail(f"{sub}.name", "must be a label name")
        if op not in _OPS:
            raise _fail(f"{sub}.op", f"must be one of {' '.join(_OPS)}")
        if not isinstance(value, str):
            raise _fail(f"{sub}.value", "must be a string")
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise _fail(f"{sub}.value", f"is not a regular expression: {exc}") from None
        out.append(Matcher(name, op, value))
    if all(m.matches({}) for m in out):
        raise _fail(path, "would match every alert: at least one matcher must not match ''")
    return out


def new_silence(
    matchers: Sequence[Any],
    *,
    starts_at: float,
    ends_at: float,
    created_by: str,
    comment: str,
    now: float,
) -> Any:
    """A checked silence record (``SilenceRecord``) ready to store."""
    from llmpulse.store.queries.alerts import SilenceRecord

    parsed = parse_matchers(matchers)
    if ends_at <= now:
        raise _fail("ends_at", "is in the past")
    if not ends_at > starts_at:
        raise _fail("ends_at", "must be after starts_at")
    if ends_at - starts_at > _MAX_SILENCE_SECONDS:
        raise _fail("ends_at", "a silence lasts at most 366 days")
    if not created_by.strip():
        raise _fail("created_by", "must say who silences")
    return SilenceRecord(
        id=str(uuid.uuid4()),
        matchers=[m.to_dict() for m in parsed],
        starts_at=float(starts_at),
        ends_at=float(ends_at),
        created_by=created_by,
        comment=comment,
        created_at=now,
    )


def silenced(labels: Mapping[str, str], silences: Iterable[Any]) -> str | None:
    """The id of an active silence matching ``labels``, or ``None``."""
    for s in silences:
        if all(Matcher(**m).matches(labels) for m in s.matchers):
            return str(s.id)
    return None


def _equal(a: Mapping[str, str], b: Mapping[str, str], names: Iterable[str]) -> bool:
    return all(a.get(n, "") == b.get(n, "") for n in names)


class Inhibitor:
    """Which alerts the firing ``sources`` mute under ``rules``, answered in O(1) per alert for
    the default rule (equal on every label but severity) and per matching source otherwise."""

    def __init__(self, sources: Iterable[Mapping[str, str]], rules: Sequence[InhibitRule]) -> None:
        self._rules: list[tuple[InhibitRule, list[Mapping[str, str]], set[Any]]] = []
        for rule in rules:
            matching = [
                s for s in sources if all(s.get(k, "") == v for k, v in rule.source.items())
            ]
            keys = {_key(s) for s in matching} if rule.equal is None else set()
            self._rules.append((rule, matching, keys))

    def __call__(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` (a firing alert) is muted."""
        for rule, matching, keys in self._rules:
            if any(labels.get(k, "") != v for k, v in rule.target.items()):
                continue
            if rule.equal is None:
                # equal on every label but severity; an alert cannot inhibit itself
                if _key(labels) in keys and not any(
                    s == labels for s in matching if _key(s) == _key(labels)
                ):
                    return True
                continue
            for src in matching:
                if src != labels and _equal(src, labels, rule.equal):
                    return True
        return False


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "severity" and v != ""))


def inhibited(
    labels: Mapping[str, str],
    firing: Iterable[Mapping[str, str]],
    rules: Sequence[InhibitRule],
) -> bool:
    """Whether a firing alert matching a rule's source mutes the alert with ``labels``."""
    return Inhibitor(list(firing), rules)(labels)
