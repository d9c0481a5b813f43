"""The bounded queue between the application's threads and the export thread.

The hot path (``llmpulse.record_llm_call``) reads ``queue``, ``capacity`` and ``wake_at``
directly and does a length check and a ``deque.append``: atomic under the GIL, no lock, no
``queue.Queue``. Everything else happens on one daemon thread: conversion to records, batching
by count and by ``flush_interval``, export with bounded retries and backoff.

Accounting is exact: at every moment ``recorded = exported + dropped (by reason) + queued +
in flight``, and after a flush nothing is queued or in flight. Counters written by many threads
take a lock; counters written only by the export thread do not need one. An exporter that
raises anything, even ``KeyboardInterrupt`` or ``SystemExit``, fails that attempt only: the
export thread goes on, and the batch is retried or counted. The drop counts (and repairs) are
also sent along with the records as cumulative metric points (``DROPPED_METRIC``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from llmpulse.schema import MetricPoint
from llmpulse.sdk._context import new_point_id
from llmpulse.sdk._logonce import LogOnce
from llmpulse.sdk._stats import DROP_REASONS, SdkStats, rejected_count

__all__ = ["DROPPED_METRIC", "REPAIRED_METRIC", "Batcher"]

log = logging.getLogger("llmpulse.sdk")


_MAX_BATCH_BYTES = 8 << 20
_SKIP = object()  # what the converter returns for a record whose trace is sampled out

# Cumulative counters (Prometheus ``_total`` semantics: each point is the count since the
# process started), labels ``reason``, ``instance`` (host:pid) and ``service`` when set.
DROPPED_METRIC = "llmpulse_sdk_dropped_total"
REPAIRED_METRIC = "llmpulse_sdk_repaired_total"
SELF_METRIC_INTERVAL = 10.0  # at most one set of points per this many seconds (and per flush)


class _Marker:
    """Put on the queue by ``flush()``; set once everything before it is exported or dropped."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Batcher:
    """A bounded in-memory queue drained in batches by a lazily started daemon thread."""

    def __init__(
        self,
        exporter: Any,
        convert: Callable[[Any], Any],
        *,
        capacity: int,
        batch_size: int,
        flush_interval: float,
        export_attempts: int = 4,
        retry_backoff: float = 0.5,
        now: Callable[[], float] = time.time,
        refuse: str | None = None,
        max_bytes: int = 64 << 20,
        max_chars: int = 16384,
        redact: bool = False,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.exporter = exporter
        self.labels = dict(labels or {})  # extra labels of the self-metric points
        self.now = now  # the hot path stamps records with this clock
        self.refuse = refuse  # None when recording; "disabled" / "uninitialised" otherwise
        self.max_bytes = max_bytes  # budget for prompt/response text waiting in the queue
        self.max_chars = max_chars  # text is cut to this before it is queued
        # A batch is also cut by the text it carries, so one export never holds more than this.
        self.max_batch_bytes = max(1, min(max_bytes // 4, _MAX_BATCH_BYTES))
        self.redact = redact  # text is not even queued
        self.convert = convert
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.export_attempts = max(1, export_attempts)
        self.retry_backoff = retry_backoff
        self._capacity = capacity
        self.closed = False
        self._warn = LogOnce(log)
        # An exporter told how many records of a payload are the application's (the rest are
        # self-metric points) can keep exact counts of what it spools (the HTTP exporter).
        self._pass_counted = bool(getattr(exporter, "accepts_counted", False))
        self._reset()
        attach = getattr(exporter, "attach", None)
        if callable(attach):
            attach(self)

    def _reset(self) -> None:
        """Fresh queue, locks, thread slot and counters (at construction and in a forked child)."""
        self.queue: deque[Any] = deque()
        self.queued_bytes = 0  # approximate: producers add, the export thread subtracts
        self.capacity = 0 if self.closed else self._capacity
        self.wake_at = 0  # the first record starts the thread (lazily, also after a fork)
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._export_lock = threading.Lock()  # held while exporting; a fork waits for it
        self._held_for_fork = False
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._taken = 0  # records popped by the export thread
        self._skipped = 0  # of those, sampled out there
        self._exported = 0
        self._in_flight = 0
        self._spooled = 0  # handed to the exporter's spool, not yet acknowledged nor dropped
        self._failures = 0
        self._batches = 0
        self._sampled_out = 0
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        repaired = getattr(self.convert, "repaired", None)  # the converter counts repairs
        if isinstance(repaired, dict):
            for reason in repaired:
                repaired[reason] = 0
        self._abandoned = 0  # of _in_flight, counted as in_flight_at_shutdown
        self._close_exporter = False  # shutdown left closing the exporter to the thread
        self._last_error = ""  # the last export error, for the messages at give-up and shutdown
        self._points_at = float("-inf")  # when self-metric points were last considered
        self._points_sent: Any = None  # the counts the last exported points carried
        self._points_pending: Any = None  # the counts of the points in the export under way

    # -- producer side ----------------------------------------------------------------------
    def put(self, item: Any, size: int = 0) -> None:
        """Enqueue one item, or count a drop when the queue is full or closed."""
        q = self.queue
        n = len(q)
        if n < self.capacity and (not size or self.admit_bytes(size)):
            q.append(item)
            if n == self.wake_at:
                self.wake()
        else:
            self.overflow()

    def overflow(self) -> None:
        """Count one record refused at the door (queue full, or after shutdown)."""
        if self.refuse is not None:
            if self.refuse == "uninitialised" and not _uninit_warned:
                _warn_uninitialised()
            return
        reason = "shutdown" if self.closed else "queue_full"
        with self._lock:
            self._dropped[reason] += 1
        if reason == "queue_full":
            self._warn(
                "queue_full",
                "Queue full: %d records (%.1f MiB of text; limits %d records, "
                "%.0f MiB) are waiting for the exporter; new records are dropped and counted "
                "(check the exporter, or raise queue_size / max_queue_bytes).",
                len(self.queue),
                self.queued_bytes / 2**20,
                self._capacity,
                self.max_bytes / 2**20,
            )

    def admit_bytes(self, size: int) -> bool:
        """Reserve ``size`` bytes of the text budget; ``False`` (a drop) when it is spent."""
        if self.queued_bytes + size > self.max_bytes:
            return False
        self.queued_bytes += size
        return True

    def count_sampled_out(self) -> None:
        """Count one trace not kept by sampling (not a drop)."""
        with self._lock:
            self._sampled_out += 1

    def wake(self) -> None:
        """Start the export thread if needed and make it drain now."""
        self.wake_at = min(self.batch_size, max(0, self._capacity // 2))
        self._ensure_thread()
        self._wakeup.set()

    def _ensure_thread(self) -> bool:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return True
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return True
            if self._stop.is_set():
                return False
            thread = threading.Thread(target=self._run, name="llmpulse-export", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # interpreter shutting down: no new threads allowed
                return False
            self._thread = thread
            return True

    # -- flush / shutdown -------------------------------------------------------------------
    def flush(self, timeout: float) -> bool:
        """Wait until everything enqueued before this call is exported or dropped.

        With a spooling exporter, also until its spool is delivered (``False`` if the server
        still cannot take it: the records stay spooled, counted in ``spooled``).
        """
        deadline = time.monotonic() + timeout
        thread = self._thread
        if self.queue or (thread is not None and thread.is_alive()):
            marker = _Marker()
            self.queue.append(marker)  # markers pass the capacity check on purpose
            if not self._ensure_thread():
                self._drain()  # no thread possible (exit time): do it here
            self._wakeup.set()
            if not marker.done.wait(timeout):
                return False
        flush = getattr(self.exporter, "flush", None)
        if not callable(flush):
            return True
        try:
            return bool(flush(max(0.0, deadline - time.monotonic())))
        except Exception as exc:
            log.warning("Exporter flush failed: %s", exc)
            return False

    # -- spool accounting (called by a spooling exporter) ------------------------------------
    def to_spool(self, count: int) -> None:
        """``count`` records of the batch in flight went to the exporter's spool."""
        with self._lock:
            self._spooled += count
            self._in_flight = max(0, self._in_flight - count)

    def from_spool(self, delivered: int, dropped: dict[str, int]) -> None:
        """Spooled records were acknowledged (``delivered``) or dropped (by reason)."""
        with self._lock:
            self._exported += delivered
            self._spooled -= delivered
            for reason, count in dropped.items():
                self._dropped[reason] = self._dropped.get(reason, 0) + count
                self._spooled -= count

    def shutdown(self, timeout: float, *, at_exit: bool = False) -> bool:
        """Flush within ``timeout``, stop the thread, count what is left as dropped.

        Records still queued are discarded (``shutdown``); records in an export that has not
        finished are counted as ``in_flight_at_shutdown`` and moved back to exported if that
        export still finishes. ``at_exit``: the interpreter is ending, so such an export is
        lost for certain, and the warning says so.
        """
        if self.closed:  # again: just give a still-running export thread time to finish
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
            return thread is None or not thread.is_alive()
        deadline = time.monotonic() + timeout
        self.capacity = 0  # from now on new records are refused and counted
        self.closed = True
        flushed = self.flush(timeout)
        self._stop.set()
        self._wakeup.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        left = self._discard_queue()
        running = thread is not None and thread.is_alive()
        with self._lock:
            self._dropped["shutdown"] += left
            unfinished = self._in_flight - self._abandoned if running else 0
            if unfinished > 0:
                self._abandoned += unfinished
                self._dropped["in_flight_at_shutdown"] += unfinished
        self._report_losses(timeout, left, max(0, unfinished), at_exit)
        if running:
            self._close_exporter = True  # the export thread closes it when its export ends
        else:
            self._shutdown_exporter()
        return flushed and not left and unfinished <= 0

    def _shutdown_exporter(self) -> None:
        try:
            self.exporter.shutdown()
        except Exception as exc:
            log.warning("Exporter shutdown failed: %s", exc)

    def _report_losses(self, timeout: float, left: int, unfinished: int, at_exit: bool) -> None:
        """One warning at shutdown naming every record this client did not store, by reason.

        Records in an export still running are lost only if the process ends before it does:
        at exit they are reported lost; otherwise they are reported as still being exported.
        """
        stats = self.stats()
        pending = 0 if at_exit else unfinished
        lost = stats.dropped_total - pending
        parts = []
        for reason, count in stats.dropped.items():
            if not count or (reason == "in_flight_at_shutdown" and not at_exit):
                continue
            part = f"{reason} {count:,}"
            if reason == "export_failed" and self._last_error:
                part += f" (last error: {self._last_error})"
            elif reason == "shutdown" and left:
                part += f" ({left:,} still queued after {timeout:.1f} s)"
            elif reason == "in_flight_at_shutdown":
                part += f" (in an export unfinished after {timeout:.1f} s)"
            parts.append(part)
        if lost:
            log.warning(
                "Shutdown: %s of %s records recorded were not stored and are lost: %s.",
                f"{lost:,}", f"{stats.recorded:,}", "; ".join(parts),
            )  # fmt: skip
        if pending:
            log.warning(
                "Shutdown: %s records are in an export still running after %.1f s; they are "
                "counted as in_flight_at_shutdown, and stored if it ends before the process exits.",
                f"{pending:,}", timeout,
            )  # fmt: skip

    @property
    def abandoned(self) -> int:
        """Records of an export shutdown stopped waiting for, while it is still running."""
        return self._abandoned

    def wait_at_exit(self, timeout: float) -> None:
        """At exit, after shutdown: give an export still running ``timeout`` s, else say it is lost."""
        thread = self._thread
        if not self._abandoned or thread is None or thread is threading.current_thread():
            return
        thread.join(timeout)
        abandoned = self._abandoned
        if abandoned and thread.is_alive():
            log.warning(
                "Exit: %s records of an export still running since an earlier shutdown are lost "
                "(counted as in_flight_at_shutdown).",
                f"{abandoned:,}",
            )

    def _discard_queue(self) -> int:
        count = 0
        while True:
            try:
                item = self.queue.popleft()
            except IndexError:
                return count
            if type(item) is _Marker:
                item.done.set()
            else:
                count += 1

    def before_fork(self, wait: float) -> None:
        """Let an export in progress finish (at most ``wait`` s) so no fork copies it half done.

        A child forked mid-export would inherit locks held by a thread it does not have (the
        store's writer lock, a half-finished import of the store), and deadlock or fail later.
        """
        self._held_for_fork = self._export_lock.acquire(timeout=wait)

    def after_fork_in_parent(self) -> None:
        """Let the export thread continue."""
        if self._held_for_fork:
            self._held_for_fork = False
            self._export_lock.release()

    def after_fork_in_child(self) -> None:
        """Forget the parent's queue and thread: the parent exports its own records."""
        self._reset()
        after_fork = getattr(self.exporter, "after_fork", None)
        if after_fork is not None:
            after_fork()

    # -- stats ------------------------------------------------------------------------------
    def stats(self) -> SdkStats:
        """A consistent-enough snapshot of the counters."""
        with self._lock:
            dropped = dict(self._dropped)
            sampled_out = self._sampled_out
            spooled = self._spooled
            exported = self._exported
            in_flight = max(0, self._in_flight - self._abandoned)
        depth = sum(1 for item in list(self.queue) if type(item) is not _Marker)
        # Every record was refused at the door, discarded at shutdown (both counted in
        # queue_full/shutdown), is still queued, or was taken by the export thread.
        refused = dropped["queue_full"] + dropped["shutdown"]
        recorded = self._taken - self._skipped + depth + refused
        return SdkStats(
            recorded=recorded,
            exported=exported,
            dropped=dropped,
            sampled_out=sampled_out + self._skipped,
            queue_depth=depth,
            in_flight=in_flight,
            export_failures=self._failures,
            export_batches=self._batches,
            repaired=dict(getattr(self.convert, "repaired", None) or {}),
            spooled=spooled,
            recovered=int(getattr(self.exporter, "recovered", 0) or 0),
        )

    # -- the export thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            if len(self.queue) < self.batch_size:
                self._wakeup.wait(self.flush_interval)
            self._wakeup.clear()
            try:
                self._drain()
            except BaseException:  # one bad drain must never kill the thread
                log.exception("Export loop error: continuing")
            if self._stop.is_set() and not self.queue:
                if self._close_exporter:
                    self._shutdown_exporter()
                return

    def _drain(self) -> None:
        batch: list[Any] = []
        try:
            self._drain_into(batch)
        except BaseException:
            # Records taken but not exported must not vanish from the count.
            self._settle(len(batch), 0, 0, len(batch))
            raise

    def _drain_into(self, batch: list[Any]) -> None:  # noqa: C901 - the export loop, kept flat and measured
        q = self.queue
        popleft, convert = q.popleft, self.convert
        batch_bytes = 0
        batch_size, max_batch_bytes = self.batch_size, self.max_batch_bytes
        while True:
            try:
                item = popleft()
            except IndexError:
                # Nothing queued: the budget holds only the batch about to be exported. Setting
                # it here also undoes any drift from unlocked += / -= racing between threads.
                self.queued_bytes = batch_bytes
                break
            kind = type(item)
            if kind is tuple:  # a call or a metric point; its text size was reserved with it
                extra = item[-1]
                size = extra.get("_bytes", 0) if type(extra) is dict else extra
                if type(size) is not int:
                    size = 0
            elif kind is _Marker:
                points = self._self_points(force=True)
                if batch or points:
                    self._export(batch, points)
                    self._release(batch_bytes)
                    batch.clear()
                    batch_bytes = 0
                item.done.set()
                continue
            else:
                size = getattr(item, "text_bytes", 0) or 0
            self._taken += 1
            try:
                record = convert(item)
            except Exception as exc:
                self._release(size)
                self._invalid(exc)
                continue
            if record is _SKIP:
                self._release(size)
                self._skipped += 1
                continue
            # Its bytes stay reserved until the export is over: a stalled exporter holding a
            # batch holds it inside the budget.
            batch.append(record)
            batch_bytes += size
            self._in_flight = len(batch)
            if len(batch) >= batch_size or batch_bytes >= max_batch_bytes:
                self._export(batch, self._self_points(force=False))
                self._release(batch_bytes)
                batch.clear()
                batch_bytes = 0
        if batch:
            self._export(batch, self._self_points(force=False))
            self._release(batch_bytes)
            batch.clear()

    def _release(self, size: int) -> None:
        """Give ``size`` bytes back to the budget (their record is exported or dropped)."""
        if size:
            self.queued_bytes = max(0, self.queued_bytes - size)

    def _invalid(self, exc: Exception) -> None:
        """Count a record the converter refused."""
        with self._lock:
            self._dropped["invalid"] += 1
        self._warn(
            "invalid", "Invalid record: dropped and counted (%s: %s)", type(exc).__name__, exc
        )

    def _export(self, batch: list[Any], points: list[MetricPoint] | None = None) -> None:
        """Export ``batch`` (with the self-metric ``points``), retrying failed attempts."""
        n = len(batch)
        self._in_flight = n
        payload = batch + points if points else list(batch)
        attempts = self.export_attempts if n else 1  # self-metric points alone: one try
        attempt = 0
        for attempt in range(1, attempts + 1):  # noqa: B007 - attempt is reported below
            try:
                with self._export_lock:
                    if self._pass_counted:
                        result = self.exporter.export(payload, counted=n)
                    else:
                        result = self.exporter.export(payload)
            except BaseException as exc:  # even KeyboardInterrupt/SystemExit: fail the attempt
                self._failures += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                if attempt == attempts or self._stop.is_set():
                    break
                self._warn(
                    "export_failed",
                    "Export failed: %s (attempt %d of %d; the batch is retried)",
                    self._last_error, attempt, attempts,
                )  # fmt: skip
                if self._stop.wait(self.retry_backoff * 2 ** (attempt - 1)):
                    break
                continue
            rejected = rejected_count(result, n)
            # A spooling exporter's outcome names SDK drop reasons; a store's names its own.
            reasons = getattr(result, "reasons", None) if self._pass_counted else None
            spooled = getattr(result, "spooled", 0) if self._pass_counted else 0
            self._settle(n, n - rejected - spooled, rejected, 0, reasons)
            if exported_observer is not None:
                _notify(payload, result, attempt > 1)
            self._batches += 1
            if points:
                self._points_sent = self._points_pending
            return
        self._settle(n, 0, 0, n)
        if n:
            self._warn(
                "export_gave_up",
                "Export failed: %d records dropped after %d attempt(s) (%s); counted as "
                "export_failed",
                n, attempt, self._last_error,
            )  # fmt: skip

    def _settle(
        self, n: int, exported: int, rejected: int, failed: int,
        reasons: dict[str, int] | None = None,
    ) -> None:  # fmt: skip
        """Count the outcome of the batch in flight (``n`` records) in one step.

        ``reasons`` splits ``rejected`` by drop reason (default: all ``rejected_by_store``).
        """
        with self._lock:
            if self._abandoned:
                # The export shutdown gave up waiting for has ended after all.
                self._dropped["in_flight_at_shutdown"] -= self._abandoned
                log.info(
                    "Shutdown: the export still running at shutdown has ended: %d records "
                    "stored, %d refused, %d failed",
                    exported, rejected, failed,
                )  # fmt: skip
                self._abandoned = 0
            if reasons:
                for reason, count in reasons.items():
                    self._dropped[reason] = self._dropped.get(reason, 0) + count
            else:
                self._dropped["rejected_by_store"] += rejected
            self._dropped["export_failed"] += failed
            self._exported += exported
            self._in_flight = 0

    def _self_points(self, force: bool) -> list[MetricPoint] | None:
        """Cumulative drop and repair counts as metric points, when they changed (and are due)."""
        now = time.monotonic()
        if not force and now - self._points_at < SELF_METRIC_INTERVAL:
            return None
        self._points_at = now
        stats = self.stats()
        counts = {
            DROPPED_METRIC: {k: v for k, v in stats.dropped.items() if v},
            REPAIRED_METRIC: {
                k: v for k, v in (getattr(stats, "repaired", None) or {}).items() if v
            },
        }
        key = tuple((name, tuple(sorted(c.items()))) for name, c in counts.items())
        if key == self._points_sent or not any(counts.values()):
            return None
        self._points_pending = key
        labels = {"instance": f"{socket.gethostname()}:{os.getpid()}", **self.labels}
        stamp = self.now()
        return [
            MetricPoint(
                name, float(count), stamp, {**labels, "reason": reason}, point_id=new_point_id()
            )
            for name, by_reason in counts.items()
            for reason, count in by_reason.items()
        ]


# Called with (batch, export result, retried) after every successful export, on the export
# thread: how ``llmpulse.start_metrics_server`` counts what was exported (see sdk/_metrics.py).
# ``retried``: an earlier attempt of this batch failed (and may have been committed).
exported_observer: Callable[[list[Any], Any, bool], None] | None = None


def _notify(batch: list[Any], result: Any, retried: bool) -> None:
    observer = exported_observer
    if observer is None:
        return
    try:
        observer(batch, result, retried)
    except Exception:  # metrics must never cost the batch
        log.exception("Metrics observer failed: continuing")


_uninit_warned = False


def _warn_uninitialised() -> None:
    global _uninit_warned
    _uninit_warned = True
    log.warning(
        "Not initialised: llmpulse.init() was not called, so nothing is recorded. Call "
        "llmpulse.init() (or llmpulse.init(enabled=False) to silence this)."
    )


SKIP = _SKIP
