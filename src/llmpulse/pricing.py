"""Model prices and the cost of an LLM call.

Prices are USD per one million tokens, per billing bucket, as providers publish them. Token
counts follow the OpenAI convention, which llmpulse uses everywhere:

* ``input_tokens`` **includes** cached tokens: ``cache_read_tokens`` (served from the prompt
  cache) and ``cache_write_tokens`` (written to it). Those are priced at their own rate where the
  model has one, and the rest of the input at the input rate. Counting cached tokens once at
  the input rate *and* again at the cache rate is the bug this module exists to avoid.
* ``output_tokens`` **includes** ``reasoning_tokens``, which are priced at the reasoning rate
  where the model has one (most bill them as output).

An unknown model costs ``None`` (never a silent 0) and logs one warning per model name.

Override prices from code (``table.set("my-model", ModelPrice(input=1, output=2))``) or from a
YAML file (``PriceTable.default().merged_with_yaml("prices.yaml")``)::

    models:
      my-finetune:
        input: 3.0          # USD per 1M input tokens
        output: 12.0
        cache_read: 0.3     # optional
        cache_write: 3.75   # optional
        reasoning: 12.0     # optional
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from llmpulse._config_file import YamlFile, read_yaml_file
from llmpulse.errors import PriceTableError

__all__ = ["ModelPrice", "PriceTable", "default_price_table"]

log = logging.getLogger(__name__)

_PER_TOKEN = 1e-6  # prices are per million tokens


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per one million tokens for each billing bucket of one model."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None

    def cost(
        self,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> float:
        """Cost in USD of one call with these token counts (see module docstring)."""
        if not (cache_read_tokens or cache_write_tokens or reasoning_tokens):
            # The common case, and the same float as below: the other terms add exact zeros.
            return ((input_tokens or 0) * self.input + (output_tokens or 0) * self.output) * (
                _PER_TOKEN
            )
        inp = input_tokens or 0
        out = output_tokens or 0
        cr = min(cache_read_tokens or 0, inp)
        cw = min(cache_write_tokens or 0, inp - cr)
        rs = min(reasoning_tokens or 0, out)
        usd = (inp - cr - cw) * self.input
        usd += cr * (self.input if self.cache_read is None else self.cache_read)
        usd += cw * (self.input if self.cache_write is None else self.cache_write)
        usd += (out - rs) * self.output
        usd += rs * (self.output if self.reasoning is None else self.reasoning)
        return usd * _PER_TOKEN


def _p(i: float, o: float, cr: float | None = None, cw: float | None = None) -> ModelPrice:
    return ModelPrice(input=i, output=o, cache_read=cr, cache_write=cw)


# Published list prices (USD / 1M tokens). Keys are lower case; a dated or suffixed model name
# ("gpt-4o-2024-08-06") resolves to its longest matching key.
_DEFAULT_PRICES: dict[str, ModelPrice] = {
    # OpenAI
    "gpt-5": _p(1.25, 10.0, 0.125),
    "gpt-5-mini": _p(0.25, 2.0, 0.025),
    "gpt-5-nano": _p(0.05, 0.40, 0.005),
    "gpt-4.1": _p(2.0, 8.0, 0.50),
    "gpt-4.1-mini": _p(0.40, 1.60, 0.10),
    "gpt-4.1-nano": _p(0.10, 0.40, 0.025),
    "gpt-4o": _p(2.50, 10.0, 1.25),
    "gpt-4o-mini": _p(0.15, 0.60, 0.075),
    "gpt-4-turbo": _p(10.0, 30.0),
    "gpt-4": _p(30.0, 60.0),
    "gpt-3.5-turbo": _p(0.50, 1.50),
    "o1": _p(15.0, 60.0, 7.50),
    "o1-mini": _p(1.10, 4.40, 0.55),
    "o3": _p(2.0, 8.0, 0.50),
    "o3-mini": _p(1.10, 4.40, 0.55),
    "o4-mini": _p(1.10, 4.40, 0.275),
    "text-embedding-3-small": _p(0.02, 0.0),
    "text-embedding-3-large": _p(0.13, 0.0),
    # Anthropic: cache writes 1.25x input (5 min TTL), cache reads 0.1x input
    "claude-opus-4-5": _p(5.0, 25.0, 0.50, 6.25),
    "claude-opus-4-1": _p(15.0, 75.0, 1.50, 18.75),
    "claude-opus-4": _p(15.0, 75.0, 1.50, 18.75),
    "claude-sonnet-4-5": _p(3.0, 15.0, 0.30, 3.75),
    "claude-sonnet-4": _p(3.0, 15.0, 0.30, 3.75),
    "claude-haiku-4-5": _p(1.0, 5.0, 0.10, 1.25),
    "claude-3-7-sonnet": _p(3.0, 15.0, 0.30, 3.75),
    "claude-3-5-sonnet": _p(3.0, 15.0, 0.30, 3.75),
    "claude-3-5-haiku": _p(0.80, 4.0, 0.08, 1.0),
    "claude-3-opus": _p(15.0, 75.0, 1.50, 18.75),
    "claude-3-haiku": _p(0.25, 1.25, 0.03, 0.30),
    # Google (prompts up to 128k/200k tokens)
    "gemini-2.5-pro": _p(1.25, 10.0, 0.31),
    "gemini-2.5-flash": _p(0.30, 2.50, 0.075),
    "gemini-2.5-flash-lite": _p(0.10, 0.40, 0.025),
    "gemini-2.0-flash": _p(0.10, 0.40, 0.025),
    "gemini-2.0-flash-lite": _p(0.075, 0.30),
    "gemini-1.5-pro": _p(1.25, 5.0),
    "gemini-1.5-flash": _p(0.075, 0.30),
    # Mistral
    "mistral-large": _p(2.0, 6.0),
    "mistral-medium": _p(0.40, 2.0),
    "mistral-small": _p(0.10, 0.30),
    "codestral": _p(0.30, 0.90),
    "open-mistral-nemo": _p(0.15, 0.15),
    "ministral-8b": _p(0.10, 0.10),
    # Meta Llama, as common hosts (Together, Fireworks) list them
    "llama-3.1-8b-instruct": _p(0.18, 0.18),
    "llama-3.1-70b-instruct": _p(0.88, 0.88),
    "llama-3.1-405b-instruct": _p(3.50, 3.50),
    "llama-3.3-70b-instruct": _p(0.88, 0.88),
    "llama-4-scout-17b-16e-instruct": _p(0.18, 0.59),
    "llama-4-maverick-17b-128e-instruct": _p(0.27, 0.85),
}

_MAX_WARNED = 1000  # bound the memory of "already warned about" names


class PriceTable:
    """Prices by model name, with lookup that tolerates provider prefixes and date suffixes.

    >>> table = PriceTable.default()
    >>> round(table.cost("gpt-4o-mini-2024-07-18", input_tokens=1000, output_tokens=100), 6)
    0.00021
    """

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self._prices: dict[str, ModelPrice] = {}
        self._resolved: dict[str, ModelPrice | None] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        for name, price in (prices or {}).items():
            self.set(name, price)

    @classmethod
    def default(cls) -> PriceTable:
        """A fresh table holding the built-in list prices."""
        return cls(_DEFAULT_PRICES)

    def set(self, model: str, price: ModelPrice) -> None:
        """Add or replace the price of ``model``."""
        if not isinstance(model, str) or not model.strip():
            raise PriceTableError(f"model name must be a non-empty string, got {model!r}")
        if not isinstance(price, ModelPrice):
            raise PriceTableError(
                f"price for {model!r} must be a ModelPrice, got {type(price).__name__}"
            )
        _check_price(model, price)
        with self._lock:
            self._prices[model.strip().lower()] = price
            self._resolved.clear()

    def models(self) -> list[str]:
        """The model names with a price, sorted."""
        return sorted(self._prices)

    def lookup(self, model: str | None) -> ModelPrice | None:
        """The price of ``model``, or ``None`` when no entry matches."""
        if not model:
            return None
        hit = self._resolved.get(model, _MISSING)
        if hit is not _MISSING:
            return hit  # type: ignore[return-value]
        found = self._resolve(model)
        with self._lock:
            if len(self._resolved) < 10_000:
                self._resolved[model] = found
        return found

    def _resolve(self, model: str) -> ModelPrice | None:
        name = model.strip().lower()
        candidates = [name]
        if "/" in name:  # "openai/gpt-4o", "meta-llama/llama-3.3-70b-instruct-turbo"
            candidates.append(name.rsplit("/", 1)[1])
        for cand in candidates:
            if cand in self._prices:
                return self._prices[cand]
        best: str | None = None
        for cand in candidates:
            for key in self._prices:
                if (
                    cand.startswith(key)
                    and cand[len(key)] in "-_:@."
                    and (best is None or len(key) > len(best))
                ):
                    best = key
        return self._prices[best] if best else None

    def cost(
        self,
        model: str | None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> float | None:
        """USD cost of one call, or ``None`` (with one warning per model) if the price is unknown."""
        if input_tokens is None and output_tokens is None:
            return None
        price = self.lookup(model)
        if price is None:
            self._warn_unknown(model)
            return None
        return price.cost(
            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens
        )

    def _warn_unknown(self, model: str | None) -> None:
        key = model or "<none>"
        if key in self._warned or len(self._warned) >= _MAX_WARNED:
            return
        self._warned.add(key)
        log.warning(
            "Unknown model price: %r has no entry in the price table, so its cost is recorded as "
            "null. Add it with PriceTable.set() or a prices YAML file (see llmpulse.pricing).",
            key,
        )

    def merged_with_yaml(self, path: str | Path) -> PriceTable:
        """A copy of this table with the prices of a YAML file laid over it."""
        merged = PriceTable(self._prices)
        for name, price in load_price_file(path).items():
            merged.set(name, price)
        return merged


_MISSING = object()


def _check_price(model: str, price: ModelPrice) -> None:
    for f in fields(price):
        value = getattr(price, f.name)
        if value is None and f.name not in ("input", "output"):
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise PriceTableError(
                f"price {f.name!r} of model {model!r} must be a finite number >= 0 "
                f"(USD per 1M tokens), got {value!r}"
            )


def load_price_file(path: str | Path) -> dict[str, ModelPrice]:
    """Read a prices YAML file (format in the module docstring); raise ``PriceTableError`` if malformed.

    Errors name the file, the line and the model: ``prices.yaml line 4: models.my-model: ...``.
    """
    file = read_yaml_file(path, "price file", PriceTableError)
    doc = file.data
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), dict):
        raise PriceTableError(
            f"price file {file.path} must be a mapping with a 'models' key, e.g. "
            "'models: {my-model: {input: 1.0, output: 2.0}}'"
        )
    known = {f.name for f in fields(ModelPrice)}
    out: dict[str, ModelPrice] = {}
    for name, entry in doc["models"].items():
        where = f"price file {file.where(('models', name))}"
        if not isinstance(entry, dict):
            raise PriceTableError(
                f"{where}: expected a mapping of prices, got {type(entry).__name__}"
            )
        unknown = set(entry) - known
        if unknown:
            raise PriceTableError(
                f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(known)}"
            )
        missing = {"input", "output"} - set(entry)
        if missing:
            raise PriceTableError(f"{where}: missing {sorted(missing)} (USD per 1M tokens)")
        price = ModelPrice(**_as_prices(file, name, entry))
        try:
            _check_price(str(name), price)
        except PriceTableError as exc:
            raise PriceTableError(f"{where}: {exc}") from None
        out[str(name)] = price
    return out


def _as_prices(file: YamlFile, model: Any, entry: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in entry.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            where = file.where(("models", model, key))
            raise PriceTableError(f"price file {where}: must be a number, got {value!r}")
        out[key] = value
    return out


_default: PriceTable | None = None


def default_price_table() -> PriceTable:
    """The process-wide table the SDK uses unless given another."""
    global _default
    if _default is None:
        _default = PriceTable.default()
    return _default
