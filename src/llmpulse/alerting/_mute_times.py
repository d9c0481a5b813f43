"""Recurring mute windows (Alertmanager's ``time_intervals``): no notifications during them.

A rule's ``mute_times`` is a list of intervals; each may name ``weekdays`` (``monday`` or a
range ``monday:friday``), ``times`` (``{start: "22:00", end: "06:00"}`` ranges in 24 h clock,
``end`` excluded, a range may wrap midnight) and a ``location`` (an IANA zone such as
``Australia/Sydney``; UTC when absent). Times are compared as wall-clock time *in that zone*,
so a window keeps its local hours across a daylight-saving change (AM#2646 compared them in
the server's local zone; AM#363 broke across DST). An alert in a mute window is muted like a
silenced one: it sends nothing, and is notified when the window ends if it still fires.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from llmpulse._config_file import FieldError

__all__ = ["MuteTime", "muted_now", "parse_mute_times"]

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


@dataclass(frozen=True)
class MuteTime:
    """One recurring window: weekdays (0 = Monday), minute ranges of the day, a time zone."""

    weekdays: frozenset[int]
    minutes: tuple[tuple[int, int], ...]
    location: str

    def contains(self, ts: float) -> bool:
        """Whether Unix time ``ts`` falls in this window (in its own zone's wall clock)."""
        local = datetime.fromtimestamp(ts, timezone.utc).astimezone(ZoneInfo(self.location))
        minute = local.hour * 60 + local.minute
        for start, end in self.minutes or ((0, 1440),):
            if start < end and start <= minute < end and local.weekday() in self.weekdays:
                return True
            if start > end:  # wraps midnight: the part after midnight belongs to the day before
                if minute >= start and local.weekday() in self.weekdays:
                    return True
                if minute < end and (local.weekday() - 1) % 7 in self.weekdays:
                    return True
        return False

    def to_spec(self) -> dict[str, Any]:
        """The document ``parse_mute_times`` reads back."""
        days = [_DAYS[d] for d in sorted(self.weekdays)]
        return {
            "weekdays": days,
            "times": [{"start": _hhmm(a), "end": _hhmm(b)} for a, b in self.minutes],
            "location": self.location,
        }


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _fail(path: str, detail: str) -> FieldError:
    return FieldError(f"{path}: {detail}", path, detail)


def _weekdays(value: Any, path: str) -> frozenset[int]:
    if value is None:
        return frozenset(range(7))
    if not isinstance(value, list) or not value:
        raise _fail(path, "must be a list like [monday:friday, sunday]")
    days: set[int] = set()
    for i, item in enumerate(value):
        first, _, last = str(item).lower().partition(":")
        if first not in _DAYS or (last and last not in _DAYS):
            raise _fail(f"{path}[{i}]", f"{item!r} is not a weekday or a range of them")
        a, b = _DAYS.index(first), _DAYS.index(last or first)
        if b < a:
            raise _fail(f"{path}[{i}]", f"{item!r} runs backwards")
        days.update(range(a, b + 1))
    return frozenset(days)


def _minute(value: Any, path: str) -> int:
    text = str(value)
    if not _CLOCK.match(text):
        raise _fail(path, f"{value!r} is not a time of day like 08:30")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _times(value: Any, path: str) -> tuple[tuple[int, int], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(path, "must be a list of {start: HH:MM, end: HH:MM}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) != {"start", "end"}:
            raise _fail(f"{path}[{i}]", "must be {start: HH:MM, end: HH:MM}")
        start, end = (
            _minute(item["start"], f"{path}[{i}].start"),
            _minute(item["end"], f"{path}[{i}].end"),
        )
        if start == end:
            raise _fail(f"{path}[{i}]", "start and end are the same time")
        out.append((start, end))
    return tuple(out)


def parse_mute_times(value: Any, path: str) -> tuple[MuteTime, ...]:
    """``mute_times`` of a rule; ``FieldError`` names the bad entry."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(path, "must be a list of {weekdays, times, location}")
    out = []
    for i, item in enumerate(value):
        sub = f"{path}[{i}]"
        if not isinstance(item, Mapping) or set(item) - {"weekdays", "times", "location"}:
            raise _fail(sub, "must be {weekdays, times, location}")
        location = str(item.get("location", "UTC"))
        try:
            ZoneInfo(location)
        except (ZoneInfoNotFoundError, ValueError):
            raise _fail(
                f"{sub}.location", f"{location!r} is not a time zone like Europe/Paris"
            ) from None
        out.append(
            MuteTime(
                _weekdays(item.get("weekdays"), f"{sub}.weekdays"),
                _times(item.get("times"), f"{sub}.times"),
                location,
            )
        )
    return tuple(out)


def muted_now(mute_times: Sequence[MuteTime], ts: float) -> bool:
    """Whether ``ts`` falls in any of the windows."""
    return any(m.contains(ts) for m in mute_times)
