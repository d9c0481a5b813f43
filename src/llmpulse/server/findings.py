"""The findings of ``llmpulse check`` for a dashboard window, kept so pages stay fast.

``run_checks`` over a window reads the per-bucket series of every model and prompt version back
to its baseline (7 days before the window) and runs the detectors: seconds at 100k spans, far
over what a page may wait on each refresh, and CPU (and the GIL) the API's other requests
wait for while it runs. ``FindingsCache`` runs it at most once per window and ``fresh`` period
(5 minutes: the checks judge buckets of minutes, so a finding is not missed, only shown up to 5
minutes late):

* A **live** window (ending within ``live_slack`` seconds of now: "the last hour") is keyed by
  its length. Its result is reused for ``fresh`` seconds; after that the stale result is still
  answered at once while one background run computes the new one (``checked_at`` says when the
  answer was computed, and its ``start``/``end`` which window it covers).
* A **past** window (a custom range) is keyed by its start and end to the minute and kept
  (the ``max_entries`` most recently asked, live or past).

Only the first request for a window waits for the checks; concurrent requests for the same
window wait for that one run instead of starting their own.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmpulse.checks import CheckReport
    from llmpulse.store import Store

__all__ = ["Checked", "FindingsCache", "run_dashboard_checks"]

log = logging.getLogger(__name__)

_MINUTE = 60.0


@dataclass(frozen=True)
class Checked:
    """One run of the checks: its window, when it ran and what it reported (JSON-ready)."""

    start: float
    end: float
    checked_at: float
    seconds: float
    report: dict[str, Any]


@dataclass
class _Entry:
    done: threading.Event = field(default_factory=threading.Event)
    result: Checked | None = None
    error: BaseException | None = None
    refreshing: bool = False


def run_dashboard_checks(store: Store, start: float, end: float) -> CheckReport:
    """``llmpulse check`` over ``[start, end)`` with its default settings (live traffic against
    the 7 days before ``start``; run regressions and trends up to ``end``)."""
    # Imported on first use: the checks load scipy (~65 MB), which most servers never need.
    from llmpulse.checks import run_checks

    return run_checks(store, start=start, end=end)


class FindingsCache:
    """Check results per dashboard window (see the module's doc)."""

    def __init__(
        self,
        compute: Callable[[float, float], CheckReport],
        *,
        fresh: float = 300.0,
        live_slack: float = 120.0,
        max_entries: int = 32,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._compute = compute
        self._fresh = fresh
        self._live_slack = live_slack
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()

    def get(self, start: float, end: float) -> Checked:
        """The findings for ``[start, end)``: cached, or computed now (the first time)."""
        now = self._clock()
        live = abs(end - now) <= self._live_slack
        if live:
            length = max(_MINUTE, round((end - start) / _MINUTE) * _MINUTE)
            key: tuple[Any, ...] = ("live", length)
            start, end = now - length, now
        else:
            key = ("at", math.floor(start / _MINUTE), math.ceil(end / _MINUTE))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                if entry.result is not None:
                    stale = now - entry.result.checked_at > self._fresh
                    if live and stale and not entry.refreshing:
                        entry.refreshing = True
                        threading.Thread(
                            target=self._refresh, args=(entry, start, end), daemon=True,
                            name="llmpulse-findings",
                        ).start()  # fmt: skip
                    return entry.result
                owner = False
            else:
                entry = self._entries[key] = _Entry()
                owner = True
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        if owner:
            return self._first(key, entry, start, end)
        entry.done.wait()
        if entry.result is None:
            raise entry.error or RuntimeError("the checks did not finish")
        return entry.result

    def _run(self, start: float, end: float) -> Checked:
        t0 = time.perf_counter()
        report = self._compute(start, end)
        return Checked(start, end, self._clock(), time.perf_counter() - t0, report.to_dict())

    def _first(self, key: tuple[Any, ...], entry: _Entry, start: float, end: float) -> Checked:
        try:
            entry.result = self._run(start, end)
            return entry.result
        except BaseException as error:
            entry.error = error
            with self._lock:  # not kept: the next request tries again
                if self._entries.get(key) is entry:
                    del self._entries[key]
            raise
        finally:
            entry.done.set()

    def _refresh(self, entry: _Entry, start: float, end: float) -> None:
        length = end - start
        try:
            now = self._clock()
            entry.result = self._run(now - length, now)
        except Exception:  # the stale answer stays; the next request past `fresh` tries again
            log.exception("refreshing the dashboard's findings failed")
        finally:
            entry.refreshing = False
