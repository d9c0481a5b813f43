"""Running the engine and the delivery worker in the background (``llmpulse alerts run``, serve).

Three daemon threads: one ticks the engine every ``interval_seconds``, one drains the outbox
every ``delivery_seconds`` (woken at once after a tick that queued something), and one re-runs
the checks of detection rules when a tick served aged findings, so that seconds of checks never
hold up the evaluation of every other rule. The checks themselves run in a child process
(``ChecksProcess``; that thread only waits for it): in a thread of this process they held the
interpreter lock for seconds, and every tick overlapping them waited. Each pass is wrapped
so that one failing tick (the database restarting, say) is logged and retried at the next, and
``last_tick``/``last_delivery`` show staleness.
"""

from __future__ import annotations

import logging
import threading
import time

from llmpulse.alerting._checks_process import ChecksProcess
from llmpulse.alerting._engine import DEFAULT_INTERVAL_SECONDS, AlertEngine, TickReport
from llmpulse.alerting._outbox import DeliveryWorker

__all__ = ["AlertRunner"]

log = logging.getLogger("llmpulse.alerting")

DELIVERY_POLL_SECONDS = 1.0


class AlertRunner:
    """Background evaluation and delivery: ``start()``, ``stop()``.

    runner = AlertRunner(engine, DeliveryWorker(store, engine.channels, owner=engine.owner))
    runner.start()
    ...
    runner.stop()
    """

    def __init__(
        self,
        engine: AlertEngine,
        worker: DeliveryWorker | None,
        *,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        delivery_seconds: float = DELIVERY_POLL_SECONDS,
    ) -> None:
        self.engine = engine
        self.worker = worker
        self.interval_seconds = interval_seconds
        self.delivery_seconds = delivery_seconds
        self.last_tick: float | None = None
        self.last_delivery: float | None = None
        self.last_report: TickReport | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._checks_wake = threading.Event()
        self._threads: list[threading.Thread] = []
        #: The child process running the checks while started (``None`` for a store no other
        #: process can open, an in-memory SQLite one: its checks run in the checks thread).
        self.checks_process: ChecksProcess | None = None

    def start(self) -> None:
        """Start the evaluation and delivery threads."""
        self._stop.clear()
        if self.worker is not None:
            try:
                self.worker.recover()
            except Exception:
                log.exception("Could not recover the outbox leases of %s", self.worker.owner)
        self.engine.background_checks = True
        if self.engine.checks is None:
            self.checks_process = ChecksProcess.for_store(self.engine.store)
            self.engine.checks = self.checks_process
        loops = [
            ("llmpulse-alert-eval", self._eval_loop),
            ("llmpulse-alert-checks", self._checks_loop),
        ]
        if self.worker is not None:
            loops.append(("llmpulse-alert-delivery", self._delivery_loop))
        for name, target in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads (finishing the pass in progress, cutting a checks run short), end the
        checks process and release the evaluator lease."""
        self._stop.set()
        self._wake.set()
        self._checks_wake.set()
        checks, self.checks_process = self.checks_process, None
        if checks is not None:
            checks.close()  # ends a run in progress, so the checks thread stops at once
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        if checks is not None and self.engine.checks is checks:
            self.engine.checks = None
        self.engine.release()

    def tick_once(self) -> None:
        """One evaluation pass; failures are logged, never raised."""
        try:
            report = self.engine.tick()
        except Exception:
            log.exception("Alert evaluation tick failed")
            return
        self.last_tick = time.time()
        self.last_report = report
        if report.dispatched.notifications:
            self._wake.set()
        if self.engine.checks_due:
            self._checks_wake.set()

    def deliver_once(self) -> int:
        """One delivery pass; returns how many rows it attempted (0 on failure)."""
        if self.worker is None:
            return 0
        try:
            report = self.worker.run_once()
        except Exception:
            log.exception("Alert delivery pass failed")
            return 0
        self.last_delivery = time.time()
        return report.delivered + report.retried + report.failed

    def _eval_loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.tick_once()
            self._stop.wait(max(0.0, self.interval_seconds - (time.monotonic() - began)))

    def _checks_loop(self) -> None:
        while not self._stop.is_set():
            self._checks_wake.wait(self.interval_seconds)
            self._checks_wake.clear()
            if self._stop.is_set():
                return
            try:
                self.engine.refresh_checks()
            except Exception:
                if self._stop.is_set():
                    return  # the checks process was ended under a run
                log.exception("Refreshing the checks of detection rules failed")

    def _delivery_loop(self) -> None:
        while not self._stop.is_set():
            if self.deliver_once():
                continue  # more may be due right away
            self._wake.wait(self.delivery_seconds)
            self._wake.clear()
