"""The HTTP exporter: batches go to an llmpulse server's ``POST /api/v1/ingest``.

``llmpulse.init(server_url="http://collector:8000", api_key="lp_...")`` (or
``LLMPULSE_SERVER_URL`` / ``LLMPULSE_API_KEY``) makes one. Standard library only
(``http.client``, one keep-alive connection per thread), so ``import llmpulse`` stays light.

What happens to a batch:

* **Sent** gzip-compressed, and counted as exported only when the server answers 2xx, which it
  does after the batch is committed.
* **Retried** on a connection error, a timeout, 408, 429 and 5xx, with exponential backoff and
  jitter, waiting at least what ``Retry-After`` asks, for at most ``retry_budget`` seconds. An
  ``https://`` URL whose server answers in plain http is retried and spooled the same way, and
  a warning names the ``http://`` URL to use instead.
* **Spooled** when that budget runs out (the server is down or overloaded): the batch goes to a
  bounded file spool (``_spool``) and the export thread moves on. A replay thread sends the
  spool in order once the server answers again; while the spool holds anything, new batches
  queue behind it, so order is kept. A spool left by a process that died is adopted and
  replayed by the next process started with the same ``spool_dir`` and server.
* **Dropped and counted** only when the server refuses it for good: 401/403 (``unauthorized``:
  check the key), another 4xx (``rejected_by_server``; a 422 names the bad records, which are
  taken out and the rest sent again; a 413 splits the batch), or the spool is full
  (``spool_full``: the oldest batches go). Each logs a warning once a minute at most.

Delivered spans are reported to ``span_observer`` (``llmpulse.start_metrics_server`` counts
them there) when their request gets its 2xx, whichever thread sent it: at once, after retries,
from the spool, or part of a split or trimmed batch. Each span is acknowledged once, so it is
counted once; a span that is dropped is never counted.

``client.stats()`` keeps its identity with the spool as one more place a record can be:
``recorded = exported + dropped + queued + in_flight + spooled``, ``exported`` meaning
acknowledged by the server. Records replayed from a dead process's spool are counted apart
(``recovered``), since this process did not record them.
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from llmpulse._tls import http_url, plain_http_answer
from llmpulse.errors import ConfigError
from llmpulse.sdk._logonce import LogOnce
from llmpulse.sdk.exporters._spool import (
    Segment,
    Spool,
    SpoolCorrupt,
    default_spool_dir,
    server_key,
)
from llmpulse.sdk.exporters._wire import (
    Body,
    Connection,
    Reply,
    decode_body,
    encode_body,
    rejected_indexes,
)

__all__ = ["DEFAULT_MAX_SPOOL_BYTES", "ExportOutcome", "HttpExporter", "span_observer"]

log = logging.getLogger("llmpulse.sdk")

DEFAULT_MAX_SPOOL_BYTES = 256 << 20
_RETRYABLE = frozenset((408, 425, 429))  # and every 5xx
_RESCAN_SECONDS = 60.0  # how often the replay thread looks for spools of processes that died
_BASE_BACKOFF = 0.25

# Called with the spans (wire dicts) of each acknowledged request, on the thread that sent it:
# how ``llmpulse.start_metrics_server`` counts what reached the server (see sdk/_metrics.py).
span_observer: Callable[[list[dict[str, Any]]], None] | None = None


@dataclass(slots=True)
class ExportOutcome:
    """What became of one batch's counted records besides being acknowledged.

    ``rejected`` records were dropped (``reasons`` says why, by drop reason); ``spooled``
    records went to the spool (already handed over with ``to_spool``). The exporter reports
    the spans it delivers to ``span_observer`` itself, later for spooled ones (``spans_seen``).
    """

    spans_seen: ClassVar[bool] = True
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    spooled: int = 0


@dataclass(slots=True)
class _Sent:
    """The result of sending one body: counted records delivered, dropped (by reason), left."""

    delivered: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    rest: list[Body] = field(default_factory=list)
    error: str = ""
    whole: bool = False  # a raw (spooled) body went through as it was
    untouched: bool = False  # a raw body not delivered, nothing taken out: it stays as it is


class HttpExporter:
    """Send batches to an llmpulse server, spooling to disk while it cannot take them."""

    accepts_counted = True  # the batcher says how many records of a batch are the application's

    def __init__(
        self,
        server_url: str,
        api_key: str | None = None,
        *,
        spool_dir: str | Path | None = None,
        max_spool_bytes: int = DEFAULT_MAX_SPOOL_BYTES,
        timeout: float = 10.0,
        retry_budget: float = 2.0,
        max_backoff: float = 30.0,
    ) -> None:
        if not isinstance(server_url, str) or not server_url.strip():
            raise ConfigError("server_url is empty; use e.g. http://127.0.0.1:8000")
        if (
            isinstance(max_spool_bytes, bool)
            or not isinstance(max_spool_bytes, int)
            or (max_spool_bytes < 1)
        ):
            raise ConfigError(
                f"max_spool_bytes must be a whole number >= 1, got {max_spool_bytes!r}"
            )
        for name, value in (("timeout", timeout), ("retry_budget", retry_budget),
                            ("max_backoff", max_backoff)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name} must be a number of seconds >= 0, got {value!r}")
        self.server_url = server_url.strip().rstrip("/")
        from llmpulse import __version__

        self._agent = f"llmpulse-python/{__version__}"
        self._api_key = api_key or None
        self.timeout = float(timeout) or 10.0
        self.retry_budget = float(retry_budget)
        self.max_backoff = float(max_backoff)
        self._conn = self._connection()  # validates the URL now: a ConfigError at init
        root = Path(spool_dir).expanduser() if spool_dir else default_spool_dir()
        self.spool_dir = root / server_key(self.server_url)
        self.spool = Spool(self.spool_dir, max_spool_bytes)
        self._warn = LogOnce(log)
        self._account: Any = None  # the batcher's accounting (``attach``)
        self._setup_threading()
        self._adopt()  # what dead processes left goes first (headers only: cheap)
        self._ensure_thread()

    def _connection(self) -> Connection:
        return Connection(self.server_url, self._api_key, self.timeout, self._agent)

    def _setup_threading(self) -> None:
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._down_until = 0.0  # monotonic: no direct send nor replay before this
        self._not_before = 0.0  # monotonic: what Retry-After asked (flush does not skip it)
        self._failures = 0  # consecutive failed attempts, for the backoff
        self._failed_attempts = 0  # all failed attempts
        self._unreachable = 0  # attempts that got no answer at all (flush gives up on one)
        self._spool_errors = 0
        self._close_spool_on_exit = False
        self.recovered = 0  # records of dead processes' spools delivered
        self.recovered_dropped = 0  # ... and dropped (refused, corrupt, spool full)

    @property
    def failed_attempts(self) -> int:
        """Requests that were not acknowledged and will be retried (errors, 408, 429, 5xx)."""
        return self._failed_attempts

    def attach(self, accountant: Any) -> None:
        """The batcher whose ``to_spool`` / ``from_spool`` keep its stats exact."""
        self._account = accountant

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (
            f"HttpExporter({self.server_url!r}, api_key={key}, spool_dir={str(self.spool_dir)!r})"
        )

    # -- the export thread -------------------------------------------------------------------
    def export(self, batch: list[Any], counted: int | None = None) -> ExportOutcome:
        """Send one batch (its first ``counted`` records are the application's) or spool it.

        Never raises for the server or the disk: a batch that can neither be delivered nor
        spooled (the disk refused) is counted as ``export_failed`` in the outcome.
        """
        n = len(batch) if counted is None else counted
        body, invalid = encode_body(batch, n)
        outcome = ExportOutcome()
        if invalid:
            self._drop(outcome, "invalid", invalid,
                       "Invalid record: %d record(s) with a value JSON cannot carry (NaN, "
                       "infinity, an object) were dropped and counted", invalid)  # fmt: skip
        if not body.records:
            return outcome
        if len(self.spool) or time.monotonic() < self._down_until:
            self._spool_body(body, outcome)  # behind what is spooled already: order is kept
        else:
            sent = self._send(self._conn, body.encode(), body, self.retry_budget)
            for reason, count in sent.dropped.items():
                self._drop(outcome, reason, count)
            for rest in sent.rest:
                self._spool_body(rest, outcome)
        return outcome

    def _drop(self, outcome: ExportOutcome, reason: str, count: int, *why: Any) -> None:
        if count:
            outcome.rejected += count
            outcome.reasons[reason] = outcome.reasons.get(reason, 0) + count
            if why:
                self._warn(reason, *why)

    def _spool_body(self, body: Body, outcome: ExportOutcome) -> None:
        try:
            victims = self.spool.append(body.encode(), body.counted, body.records,
                                        body.uncounted_points)  # fmt: skip
        except OSError as exc:
            self._spool_errors += 1
            self._drop(outcome, "export_failed", body.counted,
                       "Spool: cannot write to %s (%s); the server cannot take the batch either, "
                       "so it is dropped and counted as export_failed", self.spool_dir, exc)  # fmt: skip
            return
        if victims and victims[0].path == Path():  # larger than the whole spool: not written
            self._drop(outcome, "spool_full", body.counted, *_full_message(self.spool))
            return
        if self._account is not None:
            self._account.to_spool(body.counted)
        outcome.spooled += body.counted
        self._evicted(victims)
        self._warn("spooled", "Spool: the server at %s cannot take batches now; they are "
                   "kept in %s and sent when it answers again", self.server_url,
                   self.spool_dir)  # fmt: skip
        self._ensure_thread()
        with self._cv:
            self._cv.notify_all()

    def _evicted(self, victims: list[Segment]) -> None:
        own = sum(v.counted for v in victims if not v.adopted)
        adopted = sum(v.records for v in victims if v.adopted)
        if own and self._account is not None:
            self._account.from_spool(0, {"spool_full": own})
        self.recovered_dropped += adopted
        if victims:
            self._warn("spool_full", *_full_message(self.spool))

    # -- sending -----------------------------------------------------------------------------
    def _send(self, conn: Connection, data: bytes, body: Body | None, budget: float,
              uncounted: int = 0) -> _Sent:  # fmt: skip
        """Deliver ``data`` (``body`` decoded lazily from it when records must be taken out).

        Retries within ``budget`` seconds; what is still not delivered then is in ``rest``.
        """
        sent = _Sent()
        deadline = time.monotonic() + budget
        while True:
            reply, error = self._post(conn, data)
            if reply is not None and 200 <= reply.status < 300:
                self._up()
                sent.whole = body is None  # a spooled body went through as it was
                sent.delivered += 0 if body is None else body.counted
                _observe_spans(body, data, uncounted)
                return sent
            if reply is not None and not _retryable(reply.status):
                if body is None:
                    body = decode_body(data, uncounted)
                if reply.status == 413 and body.records > 1:
                    return self._split(conn, body, deadline, sent)
                body = self._refusal(reply, body, sent)
                if body is None:
                    return sent
                data = body.encode()
                continue
            sent.error = error or f"HTTP {reply.status if reply else '?'}"
            wait = self._failed(reply)
            if self._stop.is_set() or time.monotonic() + wait > deadline:
                if body is None:  # a spooled body: no need to decode it to keep it
                    sent.untouched = True
                else:
                    sent.rest.append(body)
                return sent
            if self._stop.wait(wait):
                continue  # stopping: one last attempt at once, then spool

    def _refusal(self, reply: Reply, body: Body, sent: _Sent) -> Body | None:
        """A permanent refusal: the records a 400/422 names are dropped and the rest returned
        to be sent again; otherwise the whole body is dropped (``None``)."""
        bad = rejected_indexes(reply.body) if reply.status in (400, 422) else {}
        kept, removed = body.without(bad) if bad else (body, 0)
        if kept.records < body.records:
            if removed:
                sent.dropped["rejected_by_server"] += removed
                self._refused(reply, removed)
            return kept if kept.records else None
        reason = "unauthorized" if reply.status in (401, 403) else "rejected_by_server"
        sent.dropped[reason] += body.counted
        self._refused(reply, body.counted)
        return None

    def _split(self, conn: Connection, body: Body, deadline: float, sent: _Sent) -> _Sent:
        """A 413: send each half on its own (recursively), within what is left of the budget."""
        for half in body.halves():
            part = self._send(conn, half.encode(), half, max(0.0, deadline - time.monotonic()))
            sent.delivered += part.delivered
            sent.dropped.update(part.dropped)
            sent.rest.extend(part.rest)
            sent.error = part.error or sent.error
        return sent

    def _post(self, conn: Connection, data: bytes) -> tuple[Reply | None, str]:
        try:
            return conn.post(data), ""
        except (OSError, http.client.HTTPException) as exc:
            if conn.https and plain_http_answer(exc):
                # Retrying will not help, and the spool message alone does not say why.
                self._warn("plain_http", "No TLS: the server at %s does not speak TLS (it "
                           "answered the handshake in plain http): use %s as server_url (or "
                           "LLMPULSE_SERVER_URL); batches are spooled meanwhile",
                           self.server_url, http_url(self.server_url))  # fmt: skip
            return None, f"{type(exc).__name__}: {exc}"

    def _refused(self, reply: Reply, count: int) -> None:
        if reply.status in (401, 403):
            self._warn(
                "unauthorized",
                "Server refused the API key: %d %s from %s (%s); %d record(s) dropped and "
                "counted as unauthorized. Check api_key / LLMPULSE_API_KEY (a key with the "
                "ingest scope).", reply.status, _phrase(reply.status), self.server_url,
                reply.detail(), count,
            )  # fmt: skip
        else:
            self._warn(
                "rejected_by_server",
                "Server refused records: %d %s (%s); %d record(s) dropped and counted as "
                "rejected_by_server", reply.status, _phrase(reply.status), reply.detail(), count,
            )  # fmt: skip

    def _up(self) -> None:
        with self._cv:
            self._failures = 0
            self._down_until = self._not_before = 0.0

    def _failed(self, reply: Reply | None) -> float:
        """Note a failed attempt; returns how long to wait before the next one."""
        with self._cv:
            self._failures += 1
            self._failed_attempts += 1
            if reply is None:
                self._unreachable += 1
            backoff = min(self.max_backoff, _BASE_BACKOFF * 2.0 ** (self._failures - 1))
            wait = backoff * random.uniform(0.5, 1.0)  # jitter: clients do not retry in step
            now = time.monotonic()
            if reply is not None and reply.retry_after is not None:
                wait = reply.retry_after * random.uniform(1.0, 1.1)  # at least what it asked
                self._not_before = now + wait
            self._down_until = now + wait
            self._cv.notify_all()
            return wait

    # -- the replay thread -------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._cv:
            if self._stop.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            thread = threading.Thread(target=self._replay_loop, name="llmpulse-spool",
                                      daemon=True)  # fmt: skip
            try:
                thread.start()
            except RuntimeError:  # interpreter shutting down
                return
            self._thread = thread

    def _replay_loop(self) -> None:
        conn = self._connection()
        next_scan = time.monotonic() + _RESCAN_SECONDS  # __init__ adopted already
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_scan:
                    next_scan = now + _RESCAN_SECONDS
                    self._adopt()
                with self._cv:
                    # Checked again under the lock shutdown() notifies with: a stop that came
                    # after the loop's check and before this wait would otherwise go unheard
                    # and shutdown() would wait out its join for nothing.
                    if self._stop.is_set():
                        break
                    wait = self._down_until - time.monotonic() if len(self.spool) else None
                    if wait is None or wait > 0:
                        limit = max(0.0, next_scan - time.monotonic())
                        self._cv.wait(limit if wait is None else min(wait, limit))
                        continue
                try:
                    self._replay_one(conn)
                except Exception:  # the replay thread must survive anything
                    log.exception("Spool: replay error; continuing")
                    self._stop.wait(1.0)
        finally:
            conn.close()
            if self._close_spool_on_exit:
                self.spool.close()

    def _adopt(self) -> None:
        try:
            segments, records, problems = self.spool.adopt_orphans()
        except OSError as exc:
            self._warn("spool_error", "Spool: cannot read %s (%s)", self.spool_dir, exc)
            return
        for problem in problems:
            log.warning("Spool: removed a damaged segment: %s", problem)
        if segments:
            log.info("Spool: adopted %d batch(es), %d record(s), left in %s by processes that "
                     "ended; sending them first", segments, records, self.spool_dir)  # fmt: skip
            with self._cv:
                self._cv.notify_all()

    def _replay_one(self, conn: Connection) -> None:
        segment = self.spool.head()
        if segment is None:
            return
        try:
            data = self.spool.read(segment)
        except SpoolCorrupt as exc:
            log.warning("Spool: removed a damaged segment (%s); its %d record(s) are lost and "
                        "counted as export_failed", exc, segment.records)  # fmt: skip
            self._settle_segment(segment, 0, Counter(export_failed=segment.counted), 0)
            self.spool.done(segment)
            return
        sent = self._send(conn, data, None, 0.0, segment.uncounted_points)
        if sent.untouched:
            self.spool.release()
        elif sent.whole:
            self._settle_segment(segment, segment.counted, Counter(), segment.records)
            self.spool.done(segment)
        elif not sent.rest:
            self._settle_segment(segment, sent.delivered, sent.dropped,
                                 segment.records - sum(sent.dropped.values()))  # fmt: skip
            self.spool.done(segment)
        else:  # partly delivered or refused (413 split, 422): keep only what is left
            left = Body.merge(sent.rest)
            dropped_records = sum(sent.dropped.values())
            self._settle_segment(segment, sent.delivered, sent.dropped,
                                 segment.records - left.records - dropped_records)  # fmt: skip
            if left.records != segment.records:
                self.spool.rewrite(segment, left.encode(), 0 if segment.adopted else left.counted,
                                   left.records, left.uncounted_points)  # fmt: skip
            self.spool.release()
        with self._cv:
            self._cv.notify_all()

    def _settle_segment(self, segment: Segment, delivered: int, dropped: Counter[str],
                        records_delivered: int) -> None:  # fmt: skip
        if segment.adopted:
            self.recovered += max(0, records_delivered)
            self.recovered_dropped += sum(dropped.values())
        elif self._account is not None and (delivered or dropped):
            self._account.from_spool(delivered, dict(dropped))

    # -- flush / shutdown / fork -------------------------------------------------------------
    def flush(self, timeout: float) -> bool:
        """Wait until the spool is empty; ``False`` when the server still cannot take it.

        A pending backoff is cut short (a ``Retry-After`` is still honoured), so a flush gets
        one real attempt. A server that answers "later" (429/503) is waited for within
        ``timeout``; one that does not answer at all (refused, timed out) ends the wait at
        once, as does a Retry-After beyond ``timeout``: the records stay spooled.
        """
        if not len(self.spool):
            return True
        deadline = time.monotonic() + timeout
        self._ensure_thread()
        with self._cv:
            seen = self._unreachable
            self._down_until = min(self._down_until, self._not_before)
            self._cv.notify_all()
            while len(self.spool) and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0 or self._unreachable > seen or self._not_before > deadline:
                    break
                self._cv.wait(left)
        return not len(self.spool)

    def shutdown(self) -> None:
        """Stop the replay thread and close connections; the spool stays for a later process."""
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(min(self.timeout, 2.0))
        self._conn.close()
        own, adopted = self.spool.counts()
        if own or adopted:
            log.warning(
                "Shutdown: %d record(s) (and %d from earlier processes) are still in the spool "
                "at %s; the next process started with this spool_dir and server_url sends them.",
                own, adopted, self.spool.own_dir or self.spool_dir,
            )  # fmt: skip
        if thread is not None and thread.is_alive():
            self._close_spool_on_exit = True  # the replay thread closes it when its send ends
        else:
            self.spool.close()

    def after_fork(self) -> None:
        """In a forked child: own spool, connections and thread (the parent keeps its own)."""
        self.spool.forget_after_fork()
        self._conn = self._connection()
        self._setup_threading()


def _retryable(status: int) -> bool:
    return status in _RETRYABLE or status >= 500


def _observe_spans(body: Body | None, data: bytes, uncounted: int) -> None:
    """Hand the spans of an acknowledged request to ``span_observer`` (decoded from ``data``
    for a spooled body); never fails the delivery."""
    observer = span_observer
    if observer is None:
        return
    try:
        spans = (body if body is not None else decode_body(data, uncounted)).spans
        if spans:
            observer(spans)
    except Exception:  # metrics must never cost the batch
        log.exception("Metrics observer failed: continuing")


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _full_message(spool: Spool) -> tuple[Any, ...]:
    return (
        "Spool full: %s holds %d of at most %d bytes; the oldest batches are dropped and "
        "counted as spool_full (raise max_spool_bytes / LLMPULSE_MAX_SPOOL_BYTES)",
        spool.root, spool.size, spool.max_bytes,
    )  # fmt: skip
