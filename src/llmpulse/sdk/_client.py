"""The recording client: settings, the export queue and the exporter, wired once by ``init``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from llmpulse._rows import MAX_LABEL_CHARS, MAX_MESSAGE_CHARS
from llmpulse.config import SdkConfig
from llmpulse.errors import ConfigError, PriceTableError
from llmpulse.pricing import ModelPrice, PriceTable, default_price_table
from llmpulse.schema import Run
from llmpulse.sdk._batcher import Batcher
from llmpulse.sdk._content import bounded, bounded_attributes, cut, text_size
from llmpulse.sdk._context import current, sample_threshold
from llmpulse.sdk._convert import LLM, METRIC, Converter
from llmpulse.sdk._spans import NOOP_SPAN, NoopSpan, SpanHandle
from llmpulse.sdk._stats import SdkStats

__all__ = ["DEFAULT_INSTRUMENTATIONS", "INSTRUMENTATIONS", "Client", "build_client"]

log = logging.getLogger("llmpulse.sdk")

# What init(instrument=...) can switch on, and the pip extra that brings each one's package.
INSTRUMENTATIONS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "litellm": "litellm",
    "langchain": "langchain",
}
DEFAULT_INSTRUMENTATIONS = ("openai",)


class Client:
    """Records spans, llm calls, metric points and runs, and exports them in the background.

    Made by ``llmpulse.init(...)``; the module-level functions (``llmpulse.span``,
    ``llmpulse.record_llm_call``, ...) use the client of the last ``init``.

    >>> import llmpulse
    >>> from llmpulse.testing import InMemoryExporter
    >>> client = llmpulse.init(exporter=InMemoryExporter(), instrument=())
    >>> client.record_llm_call("gpt-4o-mini", input_tokens=10, output_tokens=2)
    >>> client.flush(5.0)
    True
    """

    def __init__(
        self,
        config: SdkConfig,
        *,
        exporter: Any,
        prices: PriceTable | None = None,
        redact_text: Callable[[str], str] | None = None,
        clock: Any = None,
        export_attempts: int = 4,
        retry_backoff: float = 0.5,
        max_queue_bytes: int = 64 << 20,
        initialised: bool = True,
    ) -> None:
        self.config = config
        self.enabled = config.enabled and exporter is not None
        self.initialised = initialised
        self._now: Callable[[], float] = clock.time if clock is not None else time.time
        self._threshold = sample_threshold(config.sample_rate)
        self._mp_registered = False
        converter = Converter(
            prices=prices or default_price_table(),
            threshold=self._threshold,
            max_content_chars=config.max_content_chars,
            redact=config.redact,
            redact_text=redact_text,
            service=config.service_name,
            rows=bool(getattr(exporter, "accepts_span_rows", False)),
        )
        self._batcher = Batcher(
            exporter,
            converter,
            capacity=config.queue_size if self.enabled else 0,
            batch_size=config.batch_size,
            flush_interval=config.flush_interval,
            export_attempts=export_attempts,
            retry_backoff=retry_backoff,
            now=self._now,
            refuse=None if self.enabled else ("uninitialised" if not initialised else "disabled"),
            max_bytes=max_queue_bytes,
            max_chars=config.max_content_chars,
            redact=config.redact,
            labels={"service": config.service_name} if config.service_name else None,
        )

    @property
    def exporter(self) -> Any:
        """The exporter batches are handed to."""
        return self._batcher.exporter

    def record_llm_call(
        self,
        model: str | None,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        latency_ms: float | None = None,
        **fields: Any,
    ) -> None:
        """Record one LLM call (see ``llmpulse.record_llm_call`` for the fields)."""
        try:
            parent = current()
            if parent is not None and not parent.sampled:
                return
            sink = self._batcher
            if type(model) is str and len(model) > MAX_LABEL_CHARS:
                model = cut(model, MAX_LABEL_CHARS)
            extra = snapshot(fields, sink) if fields else fields
            if extra is None:
                sink.overflow()
                return
            sink.put(
                (LLM, self._now(), parent, model, input_tokens, output_tokens, latency_ms, extra)
            )
        except Exception:  # never raise into user code
            log.debug("record_llm_call failed", exc_info=True)

    def record_metric(
        self,
        name: str,
        value: float,
        *,
        labels: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        step: int | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Record one metric point (a gauge value, a training loss at a step, ...)."""
        try:
            size = 0
            if type(name) is str:
                name = cut(name, MAX_LABEL_CHARS)
                size += len(name)
            if labels:
                labels, n = bounded_attributes(labels, MAX_LABEL_CHARS)
                size += n
            else:
                labels = None
            if type(run_id) is str:
                run_id = cut(run_id, MAX_LABEL_CHARS)
            self._batcher.put(
                (METRIC, self._now(), name, value, labels, run_id, step, timestamp, size), size
            )
        except Exception:
            log.debug("record_metric failed", exc_info=True)

    def record_run(self, run: Run) -> None:
        """Record (or update) a run: an experiment or benchmark job with params and metrics."""
        self._batcher.put(run)

    def span(self, name: str, *, kind: str = "span", **attributes: Any) -> SpanHandle | NoopSpan:
        """A span context manager (``with`` or ``async with``) yielding its handle."""
        if not self.enabled:
            self._batcher.overflow()  # counts nothing; warns once if init was never called
            return NOOP_SPAN
        return SpanHandle(self, name, kind, attributes)

    def flush(self, timeout: float | None = None) -> bool:
        """Export everything recorded so far; ``False`` if that took longer than ``timeout``."""
        if not self.enabled:
            return True
        try:
            return self._batcher.flush(self._timeout(timeout))
        except Exception:
            log.warning("Flush failed", exc_info=True)
            return False

    def shutdown(self, timeout: float | None = None, *, at_exit: bool = False) -> bool:
        """Flush (bounded by ``timeout``), stop the export thread and close the exporter.

        ``at_exit``: the process is ending (records in an unfinished export are then lost).
        """
        if not self.enabled:
            return True
        try:
            return self._batcher.shutdown(self._timeout(timeout), at_exit=at_exit)
        except Exception:
            log.warning("Shutdown failed", exc_info=True)
            return False

    def stats(self) -> SdkStats:
        """Self-metrics: recorded, exported, dropped by reason, queue depth, export failures."""
        return self._batcher.stats()

    def _timeout(self, timeout: float | None) -> float:
        return self.config.shutdown_timeout if timeout is None else max(0.0, float(timeout))


_LABEL_CAP = MAX_LABEL_CHARS
_TEXT_KEYS = frozenset(("input", "output"))


def snapshot(  # noqa: C901 - on the caller's thread: one flat pass over the fields
    fields: dict[str, Any], sink: Batcher
) -> dict[str, Any] | None:
    """Make the optional fields of an llm call safe to queue; ``None`` if over the byte budget.

    Every text is cut now rather than held in full (prompt, response and attribute values to
    ``max_content_chars``, error messages to ``MAX_MESSAGE_CHARS``, other text to
    ``MAX_LABEL_CHARS``, the attributes as a whole to ``MAX_ATTRIBUTES_CHARS``), containers are
    copied (later changes by the caller must not leak in, and no reference to the caller's
    text is kept), and the size of what is kept is reserved in the queue's byte budget.
    """
    size = 0
    limit = sink.max_chars
    if sink.redact:
        for key in ("input", "output"):
            if key in fields:
                fields[key] = None
    for key, value in fields.items():
        kind = type(value)
        if kind is str:
            n = len(value)
            if n > _LABEL_CAP:  # rare: only long text needs a look at which field it is
                if key == "input" or key == "output":
                    if n > limit:
                        value = fields[key] = bounded(value, limit)
                else:
                    cap = MAX_MESSAGE_CHARS if key == "error_message" else _LABEL_CAP
                    if n > cap:
                        value = fields[key] = cut(value, cap)
                n = len(value)
            size += n
        elif value is None or kind is float or kind is int or kind is bool:
            continue
        elif key == "attributes":
            if value:
                fields[key], n = bounded_attributes(value, limit)
                size += n
        else:  # chat messages, other structured or odd values
            value = fields[key] = bounded(value, limit if key in _TEXT_KEYS else _LABEL_CAP)
            size += text_size(value)
    if size:
        if not sink.admit_bytes(size):
            return None
        fields["_bytes"] = size
    return fields


def build_client(
    database_url: str | None = None,
    *,
    exporter: Any = None,
    redact: bool | Callable[[str], str] | None = None,
    prices: PriceTable | Mapping[str, Any] | str | Path | None = None,
    instrument: Iterable[str] | str | None = DEFAULT_INSTRUMENTATIONS,
    clock: Any = None,
    export_attempts: int = 4,
    retry_backoff: float = 0.5,
    max_queue_bytes: int = 64 << 20,
    **settings: Any,
) -> tuple[Client, tuple[str, ...]]:
    """Validate everything ``init`` was given and build the client (raises ``ConfigError``)."""
    redact_text = redact if callable(redact) else None
    config = SdkConfig.resolve(
        database_url=database_url, redact=None if callable(redact) else redact, **settings
    )
    if exporter is not None and database_url is not None:
        raise ConfigError("give either database_url or exporter to init(), not both")
    if settings.get("server_url") is not None and (
        exporter is not None or database_url is not None
    ):
        raise ConfigError(
            "give one destination to init(): server_url, database_url or exporter, not several"
        )
    _check_extras(exporter, export_attempts, retry_backoff, max_queue_bytes)
    names = _instrumentations(instrument)
    table = _price_table(prices, config.prices_file)
    if exporter is None and config.enabled:
        if config.server_url and database_url is None:  # an argument beats the environment
            from llmpulse.sdk.exporters.http import HttpExporter

            exporter = HttpExporter(
                config.server_url, config.api_key, spool_dir=config.spool_dir,
                max_spool_bytes=config.max_spool_bytes,
            )  # fmt: skip
        else:
            from llmpulse.sdk.exporters.store import StoreExporter

            exporter = StoreExporter(config.database_url)
    client = Client(
        config, exporter=exporter if config.enabled else None, prices=table, redact_text=redact_text,
        clock=clock, export_attempts=export_attempts, retry_backoff=retry_backoff,
        max_queue_bytes=max_queue_bytes,
    )  # fmt: skip
    return client, names


def _check_extras(exporter: Any, attempts: Any, backoff: Any, max_bytes: Any) -> None:
    """Validate the init arguments that have no environment variable."""
    if exporter is not None and not (
        callable(getattr(exporter, "export", None))
        and callable(getattr(exporter, "shutdown", None))
    ):
        raise ConfigError(
            f"exporter must have export(batch) and shutdown() methods; got {type(exporter).__name__}"
        )
    if not _whole(attempts):
        raise ConfigError(f"export_attempts must be a whole number >= 1, got {attempts!r}")
    if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff < 0:
        raise ConfigError(f"retry_backoff must be a number of seconds >= 0, got {backoff!r}")
    if not _whole(max_bytes):
        raise ConfigError(
            f"max_queue_bytes must be a whole number of bytes >= 1, got {max_bytes!r}"
        )


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _instrumentations(instrument: Iterable[str] | str | None) -> tuple[str, ...]:
    if instrument is None:
        return ()
    names = (instrument,) if isinstance(instrument, str) else tuple(instrument)
    unknown = [n for n in names if not isinstance(n, str) or n not in INSTRUMENTATIONS]
    if unknown:
        raise ConfigError(
            f"unknown instrumentation(s) {unknown}; available: {list(INSTRUMENTATIONS)}"
        )
    return names


def _price_table(prices: Any, prices_file: str | None) -> PriceTable:
    if prices is None and prices_file is None:
        return default_price_table()
    if isinstance(prices, PriceTable):
        return prices.merged_with_yaml(prices_file) if prices_file else prices
    base = PriceTable.default()
    if prices_file:
        base = base.merged_with_yaml(prices_file)
    if prices is None:
        return base
    if isinstance(prices, (str, Path)):
        return base.merged_with_yaml(prices)
    if not isinstance(prices, Mapping):
        raise PriceTableError(
            f"prices must be a PriceTable, a mapping of model -> ModelPrice, or a YAML path; got {type(prices).__name__}"
        )
    for model, price in prices.items():
        if isinstance(price, Mapping):
            try:
                price = ModelPrice(**price)
            except TypeError as exc:
                raise PriceTableError(
                    f"price of {model!r}: {exc}; use keys input, output, cache_read, cache_write, reasoning"
                ) from exc
        base.set(model, price)
    return base
