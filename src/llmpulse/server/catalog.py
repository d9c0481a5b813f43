"""The price table the server prices spans with: built-in prices plus the model catalog.

Catalog prices are USD per token (as the API speaks them); the price table holds USD per
million tokens. A model created or updated through this process is priced from its next
request on; other processes (``--workers``, replicas) pick catalog changes up within
``REFRESH_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from llmpulse.pricing import ModelPrice, PriceTable
from llmpulse.schema import Span
from llmpulse.store import ModelRecord, Store

__all__ = ["REFRESH_SECONDS", "PriceCatalog", "model_price"]

REFRESH_SECONDS = 30.0
_PER_MILLION = 1e6


def model_price(model: ModelRecord) -> ModelPrice | None:
    """The price-table entry of a catalog model, or ``None`` without input and output prices."""
    if model.input_price_per_token is None or model.output_price_per_token is None:
        return None

    def per_million(value: float | None) -> float | None:
        return None if value is None else value * _PER_MILLION

    return ModelPrice(
        input=model.input_price_per_token * _PER_MILLION,
        output=model.output_price_per_token * _PER_MILLION,
        cache_read=per_million(model.cache_read_price_per_token),
        cache_write=per_million(model.cache_write_price_per_token),
        reasoning=per_million(model.reasoning_price_per_token),
    )


class PriceCatalog:
    """Prices spans that arrive without a cost, from the catalog over the built-in table."""

    def __init__(self, store: Store, *, clock: object = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._table = PriceTable.default()
        self._loaded_at: float | None = None

    def invalidate(self) -> None:
        """Reload the catalog before the next pricing (after a model changed here)."""
        self._loaded_at = None

    def table(self) -> PriceTable:
        """The current price table (reloaded from the store when stale)."""
        now = self._clock()  # type: ignore[operator]
        if self._loaded_at is None or now - self._loaded_at > REFRESH_SECONDS:
            with self._lock:
                table = PriceTable.default()
                for model in self._store.list_models():
                    price = model_price(model)
                    if price is not None:
                        table.set(model.name, price)
                self._table, self._loaded_at = table, now
        return self._table

    def price(self, spans: Sequence[Span]) -> None:
        """Set ``cost_usd`` on spans that have a model and tokens but no cost."""
        table = None
        for span in spans:
            if (
                span.cost_usd is None
                and span.model
                and (span.input_tokens is not None or span.output_tokens is not None)
            ):
                table = table or self.table()
                span.cost_usd = table.cost(
                    span.model, span.input_tokens, span.output_tokens, span.cache_read_tokens,
                    span.cache_write_tokens, span.reasoning_tokens,
                )  # fmt: skip
