"""When a notification group is notified: Alertmanager's timers and its deduplication rules.

A group is what one channel receives as one message: the alerts of one ``group_by`` value set.
What the channel was last told about it (when, and which alerts it believes are firing) is the
group's entry in the notification log (``alert_groups``), stored with the alert changes, so
these timers hold across restarts of the evaluator:

* ``group_wait``: a group the channel knows nothing of waits this long after its first alert
  fired, so alerts firing together arrive in one message, and an alert that resolves inside
  it is never notified at all;
* ``group_interval``: after a notification, changes to the group (a new alert firing, one
  resolving) wait until this long after it, and then go out together;
* ``repeat_interval``: with no change, the firing alerts are sent again this long after the
  last notification (never sooner than ``group_interval``).

At its turn a group is sent only when it changed (Alertmanager's ``DedupStage``): an alert the
channel was not told about is firing; or an alert it was told about has resolved (and the rule
sends resolved notices); or the repeat interval has passed while something unacknowledged
fires. So an alert that fires, resolves and fires again inside one ``group_interval`` sends
nothing: the channel still believes it is firing, which is true (AM#2398, #1403). An alert the
channel never heard of sends no resolved notice, and a group with nothing firing is forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from llmpulse.store.queries.alerts import GroupRecord

__all__ = ["Decision", "Timers", "decide"]


@dataclass(frozen=True)
class Timers:
    """A group's timers in seconds (the smallest of its rules')."""

    wait: float = 0.0
    interval: float = 0.0
    repeat: float = 4 * 3600.0

    @classmethod
    def of(cls, rules: Iterable[tuple[float, float, float]]) -> Timers:
        """The timers of a group whose alerts come from rules with these ``(wait, interval,
        repeat)``; the defaults when there are none (a rule since removed)."""
        found = list(rules)
        if not found:
            return cls()
        return cls(*(min(values) for values in zip(*found, strict=True)))


@dataclass(frozen=True)
class Decision:
    """Whether to notify now; ``resolved``: the alerts (fingerprints) the channel was told are
    firing and that no longer are; ``why`` names the reason (for tests and logs)."""

    send: bool
    resolved: frozenset[str] = frozenset()
    why: str = ""


def decide(
    entry: GroupRecord | None,
    firing: set[str],
    still_open: set[str],
    first_fired_at: float | None,
    timers: Timers,
    now: float,
    *,
    announce: Callable[[str], bool] = lambda fingerprint: True,
) -> Decision:
    """Alertmanager's decision for one group at ``now``.

    ``firing``: the unmuted, unacknowledged firing alerts to send; ``still_open``: every alert
    of the group not resolved (muted and acknowledged ones included), so they are not taken
    for resolved; ``first_fired_at``: when the earliest of ``firing`` fired; ``announce``:
    whether a resolved alert's rule sends resolved notices.
    """
    if entry is None:
        if not firing or first_fired_at is None:
            return Decision(False)
        if now - first_fired_at < timers.wait:
            return Decision(False, why="group_wait")
        return Decision(True, why="new group")
    resolved = frozenset(entry.firing - still_open)
    if now - entry.sent_at < timers.interval:
        return Decision(False, why="group_interval")
    if firing - entry.firing:
        return Decision(True, resolved, "new firing alert")
    if any(announce(fp) for fp in resolved):
        return Decision(True, resolved, "resolved")
    if firing and now - entry.sent_at >= max(timers.repeat, timers.interval):
        return Decision(True, resolved, "repeat")
    return Decision(False, resolved)
