"""The findings of ``llmpulse check`` for a dashboard window: the endpoint over real traffic with
an injected incident, and the cache that keeps each window's checks to one run a minute."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from llmpulse.checks import CheckReport
from llmpulse.server.findings import FindingsCache
from llmpulse.store import Store
from tests.unit.checks.traffic import Incident, Traffic, make_spans

MIN = 60.0


class TestEndpoint:
    def test_a_latency_incident_is_reported_with_its_evidence_and_cached(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """Four hours of traffic with gpt-4o's latency x3 from 60 to 30 minutes ago: the last
        2 h hold a latency_spike on gpt-4o inside that window, with baseline and current; the
        same window asked again within the minute is the same computation."""
        now = time.time()
        start = now - 240 * MIN
        incident = Incident(now - 60 * MIN, now - 30 * MIN, latency_x=3.0)
        sqlite_store.write(spans=make_spans(Traffic(start, 240, seed=1, incidents=(incident,))))
        client = make_client(sqlite_store)
        window = {"start": now - 120 * MIN, "end": now}
        answer = client.get("/api/v1/dashboard/findings", params=window)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        spikes = [f for f in body["findings"] if f["subject"].get("model") == "gpt-4o"]
        assert {f["check"] for f in spikes} == {"latency_spike"}
        [spike] = spikes
        assert spike["window"]["start"] < incident.end and spike["window"]["end"] > incident.start
        assert spike["current"] > 2 * spike["baseline"] and spike["message"]
        assert body["counts"]["critical"] + body["counts"]["warning"] == len(body["findings"])
        assert body["series_checked"] > 0 and body["check_seconds"] > 0
        assert abs(body["end"] - now) < 5 and abs(body["end"] - body["start"] - 7200) < 1
        again = client.get("/api/v1/dashboard/findings", params={**window, "end": now + 2})
        assert again.json()["checked_at"] == body["checked_at"]

    def test_bad_windows_are_problems(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """A window past 31 days or ending before it starts is a 422 problem, not a 500."""
        client = make_client(sqlite_store)
        for params in [{"start": 0, "end": 40 * 86400}, {"start": 10, "end": 5}]:
            answer = client.get("/api/v1/dashboard/findings", params=params)
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["detail"]


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _report(start: float, end: float) -> CheckReport:
    return CheckReport(start=start, end=end, findings=[])


class TestCache:
    def test_a_live_window_is_checked_once_a_minute_and_refreshed_behind_the_answer(self) -> None:
        """Within `fresh` the same length of window ending now is not checked again; past it the
        stale answer comes back at once while one background run computes the next."""
        clock = _Clock(1_000_000.0)
        calls: list[tuple[float, float]] = []
        release = threading.Event()

        def compute(start: float, end: float) -> CheckReport:
            calls.append((start, end))
            if len(calls) > 1:
                release.wait(5)
            return _report(start, end)

        cache = FindingsCache(compute, fresh=60, clock=clock)
        first = cache.get(clock.now - 3600, clock.now)
        assert calls == [(clock.now - 3600, clock.now)]
        clock.now += 30
        assert cache.get(clock.now - 3601, clock.now - 1) is first and len(calls) == 1
        clock.now += 60
        stale = cache.get(clock.now - 3600, clock.now)
        assert stale is first  # answered at once, the refresh runs behind it
        assert cache.get(clock.now - 3600, clock.now) is first  # one refresh at a time
        release.set()
        deadline = time.monotonic() + 5
        while cache.get(clock.now - 3600, clock.now) is first and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        fresh = cache.get(clock.now - 3600, clock.now)
        assert fresh is not first and (fresh.start, fresh.end) == (clock.now - 3600, clock.now)
        assert len(calls) == 2
        cache.get(clock.now - 900, clock.now)  # another length is another window
        assert len(calls) == 3

    def test_concurrent_first_requests_share_one_run_and_errors_are_not_kept(self) -> None:
        """Requests for a window that is being checked wait for that run; a failed run is not
        kept, so the next request checks again."""
        clock = _Clock(2_000_000.0)
        gate = threading.Event()
        calls: list[float] = []

        def compute(start: float, end: float) -> CheckReport:
            calls.append(start)
            gate.wait(5)
            if len(calls) == 1:
                raise RuntimeError("store went away")
            return _report(start, end)

        cache = FindingsCache(compute, clock=clock)
        out: list[Any] = []

        def ask() -> None:
            try:
                out.append(cache.get(100.0, 700.0))
            except RuntimeError as error:
                out.append(error)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        while not calls:
            threading.Event().wait(0.005)
        gate.set()
        for t in threads:
            t.join(5)
        assert len(calls) == 1 and len(out) == 4
        assert all(isinstance(o, RuntimeError) for o in out)
        result = cache.get(100.0, 700.0)
        assert len(calls) == 2 and (result.start, result.end) == (100.0, 700.0)

    def test_past_windows_are_kept_by_minute_and_the_oldest_asked_is_dropped(self) -> None:
        """A past window is kept whatever the clock says, keyed by its minutes; past
        `max_entries` windows the least recently asked goes."""
        clock = _Clock(5_000_000.0)
        calls: list[float] = []

        def compute(start: float, end: float) -> CheckReport:
            calls.append(start)
            return _report(start, end)

        cache = FindingsCache(compute, max_entries=2, clock=clock)
        cache.get(600.0, 1200.0)
        clock.now += 3600
        cache.get(610.0, 1190.0)  # the same minutes
        assert len(calls) == 1
        cache.get(6000.0, 7200.0)
        cache.get(600.0, 1200.0)  # asked again: now the most recent
        cache.get(60000.0, 72000.0)  # drops 6000-7200
        cache.get(600.0, 1200.0)
        assert len(calls) == 3
        cache.get(6000.0, 7200.0)
        assert len(calls) == 4
