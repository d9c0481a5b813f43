"""The simulator's mutable state: faults in force, scripted failures, buckets, request log.

One lock guards it all; the HTTP handlers ask it for a ``Plan`` per request (which fault,
how slow, which random stream to draw the answer from) and do the slow parts outside it.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmpulse.errors import SimulatorError
from llmpulse.simulator._config import FAULT_KINDS, Faults, ModelSpec, SimulatorConfig

__all__ = ["Engine", "Plan", "RequestRecord", "ScriptedFault", "stable_hash"]

_DEFAULT_REQUEST_LIMIT = 10_000  # reported in x-ratelimit-limit-requests when no bucket is set
_TOKEN_WINDOW_S = 60.0
_CACHE_MIN_TOKENS = 1024  # OpenAI caches prompt prefixes of 1024 tokens or more...
_CACHE_BLOCK = 128  # ...in blocks of 128 tokens
_CACHE_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class ScriptedFault:
    """One failure queued by ``fail_next``: served to the next matching request."""

    kind: str
    status: int
    retry_after_s: float = 1.0
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the simulator answered, for assertions in tests."""

    time: float  # Unix seconds
    path: str
    model: str | None
    n_messages: int  # messages of a chat request; inputs of an embeddings request
    stream: bool
    status: int
    fault: str | None  # the fault kind served, None for an honest answer
    prompt_tokens: int = 0
    completion_tokens: int = 0
    max_tokens: int | None = None


@dataclass(slots=True)
class Plan:
    """What to do with one chat request, decided under the lock."""

    rng: random.Random
    latency_s: float
    chunk_delay_s: float
    token_blowup: float
    fault: ScriptedFault | None = None
    cached_tokens: int = 0
    headers: dict[str, str] = field(default_factory=dict)


def stable_hash(value: Any) -> int:
    """A hash of a JSON-like value that is the same in every process (unlike ``hash``)."""
    digest = hashlib.blake2b(
        json.dumps(value, sort_keys=True, default=str).encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big")


def _kind_for_status(status: int) -> str:
    if status == 429:
        return "rate_limit"
    if status == 401:
        return "auth"
    if status == 400:
        return "context_length"
    if 500 <= status <= 599:
        return "server_error"
    raise SimulatorError(
        f"fail_next(status={status}): pick 400, 401, 429 or a 5xx status, or pass kind= one of {FAULT_KINDS}"
    )


def _status_for_kind(kind: str) -> int:
    return {
        "rate_limit": 429,
        "auth": 401,
        "context_length": 400,
        "html": 502,
        "slow": 200,
        "overloaded": 503,
    }.get(kind, 500)


def format_reset(seconds: float) -> str:
    """Seconds as OpenAI writes them in x-ratelimit-reset-*: ``1.5s``, ``6m0s``, ``20ms``."""
    if seconds < 1.0:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60.0)
    if minutes >= 1:
        return f"{int(minutes)}m{rest:.0f}s"
    return f"{rest:.3g}s"


class Engine:
    """Thread-safe state of one simulator."""

    def __init__(
        self, config: SimulatorConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._global = config.faults
        self._per_model: dict[str, Faults] = dict(config.model_faults)
        self._scripted: dict[str | None, deque[ScriptedFault]] = {}
        self._rngs: dict[str, random.Random] = {}
        self._admitted: dict[str, deque[float]] = {}
        self._tokens: dict[str, deque[tuple[float, int]]] = {}
        self._prefixes: OrderedDict[int, None] = OrderedDict()
        self._log: list[RequestRecord] = []
        self._generation = 0

    # --- models and faults -------------------------------------------------------------
    def spec(self, model: str) -> ModelSpec | None:
        """The served model, or None when it does not exist."""
        spec: ModelSpec | None = self.config.models.get(model)
        if spec is None and self.config.accept_unknown_models:
            return ModelSpec()
        return spec

    def faults_for(self, model: str | None) -> Faults:
        """Faults in force for ``model`` (its own if set, else the global ones)."""
        with self._lock:
            return self._per_model.get(model, self._global) if model else self._global

    def set_faults(self, faults: Faults, model: str | None = None) -> None:
        """Replace the global faults, or one model's."""
        with self._lock:
            if model is None:
                self._global = faults
            else:
                self._per_model[model] = faults

    def clear_faults(self, model: str | None = None) -> None:
        """Back to no faults: globally and for every model (model=None), or for one model."""
        with self._lock:
            if model is None:
                self._global = Faults()
                self._per_model.clear()
            else:
                self._per_model.pop(model, None)

    def restore_faults(self) -> None:
        """Back to the faults the config started with."""
        with self._lock:
            self._global = self.config.faults
            self._per_model = dict(self.config.model_faults)

    def fail_next(
        self,
        n: int,
        *,
        status: int | None,
        kind: str | None,
        retry_after_s: float,
        delay_s: float,
        model: str | None,
    ) -> None:
        """Queue ``n`` failures for the next requests (to ``model``, or to any model)."""
        if n < 0:
            raise SimulatorError(f"fail_next(n={n}): n must be >= 0")
        if kind is not None and kind not in FAULT_KINDS:
            raise SimulatorError(f"fail_next(kind={kind!r}): kind must be one of {FAULT_KINDS}")
        kind = kind or _kind_for_status(status if status is not None else 429)
        status = status if status is not None else _status_for_kind(kind)
        fault = ScriptedFault(
            kind=kind, status=status, retry_after_s=retry_after_s, delay_s=delay_s
        )
        with self._lock:
            self._scripted.setdefault(model, deque()).extend([fault] * n)

    # --- per request ---------------------------------------------------------------------
    def _rng(self, model: str) -> random.Random:
        rng = self._rngs.get(model)
        if rng is None:
            # One stream per model, so traffic to one model does not shift another's sequence.
            rng = self._rngs[model] = random.Random(f"{self.config.seed}:{model}")
        return rng

    def _pop_scripted(self, model: str) -> ScriptedFault | None:
        for scope in (model, None):
            queue = self._scripted.get(scope)
            if queue:
                return queue.popleft()
        return None

    def _bucket(
        self, model: str, faults: Faults, now: float
    ) -> tuple[float | None, dict[str, str]]:
        """Admit one request into the model's bucket; returns (retry_after or None, headers)."""
        admitted = self._admitted.setdefault(model, deque())
        window = faults.rate_limit_window_s
        while admitted and admitted[0] <= now - window:
            admitted.popleft()
        limit = faults.rate_limit_requests
        retry_after = None
        if limit is not None and len(admitted) >= limit:
            retry_after = (admitted[0] + window - now) if admitted else window
        else:
            admitted.append(now)
        cap = _DEFAULT_REQUEST_LIMIT if limit is None else limit
        reset = (admitted[0] + window - now) if admitted else 0.0
        headers = {
            "x-ratelimit-limit-requests": str(cap),
            "x-ratelimit-remaining-requests": str(max(0, cap - len(admitted))),
            "x-ratelimit-reset-requests": format_reset(reset),
        }
        return retry_after, headers

    def _token_headers(self, model: str, prompt_tokens: int, now: float) -> dict[str, str]:
        used = self._tokens.setdefault(model, deque())
        while used and used[0][0] <= now - _TOKEN_WINDOW_S:
            used.popleft()
        used.append((now, prompt_tokens))
        spec = self.spec(model) or ModelSpec()
        total = sum(n for _, n in used)
        # Time until the used budget has fully replenished, as OpenAI reports it.
        reset = min(_TOKEN_WINDOW_S, _TOKEN_WINDOW_S * total / spec.tokens_per_minute)
        return {
            "x-ratelimit-limit-tokens": str(spec.tokens_per_minute),
            "x-ratelimit-remaining-tokens": str(max(0, spec.tokens_per_minute - total)),
            "x-ratelimit-reset-tokens": format_reset(reset),
        }

    def _cached(self, prefix_key: int | None, prefix_tokens: int) -> int:
        if prefix_key is None or prefix_tokens < _CACHE_MIN_TOKENS:
            return 0
        hit = prefix_key in self._prefixes
        self._prefixes[prefix_key] = None
        self._prefixes.move_to_end(prefix_key)
        if len(self._prefixes) > _CACHE_ENTRIES:
            self._prefixes.popitem(last=False)
        return (prefix_tokens // _CACHE_BLOCK) * _CACHE_BLOCK if hit else 0

    def cache_breakpoint(self, key: int) -> bool:
        """Anthropic-style explicit caching: ``True`` when this prefix was written before (a
        read), ``False`` when this request writes it. Shares the LRU with the OpenAI cache."""
        with self._lock:
            hit = key in self._prefixes
            self._prefixes[key] = None
            self._prefixes.move_to_end(key)
            if len(self._prefixes) > _CACHE_ENTRIES:
                self._prefixes.popitem(last=False)
            return hit

    def _random_fault(self, u: float, faults: Faults) -> ScriptedFault | None:
        edges = (
            (faults.rate_limit_rate, ScriptedFault("rate_limit", 429, faults.retry_after_s)),
            (faults.error_rate, ScriptedFault("server_error", faults.error_status)),
            (faults.html_error_rate, ScriptedFault("html", 502)),
            (faults.context_error_rate, ScriptedFault("context_length", 400)),
        )
        edge = 0.0
        for rate, fault in edges:
            edge += rate
            if u < edge:
                return fault
        return None

    def plan(
        self, model: str, prompt_tokens: int, prefix_key: int | None = None, prefix_tokens: int = 0
    ) -> Plan:
        """Decide the fate of one chat request to ``model``."""
        with self._lock:
            faults = self._per_model.get(model, self._global)
            rng = self._rng(model)
            # Always the same draws per request, so toggling one fault never shifts the others.
            u, z, child_seed = rng.random(), rng.gauss(0.0, 1.0), rng.getrandbits(64)
            now = self._clock()
            latency = (
                faults.latency_median_ms
                / 1000.0
                * math.exp(faults.latency_sigma * z)
                * faults.latency_scale
            )
            plan = Plan(
                rng=random.Random(child_seed),
                latency_s=latency,
                chunk_delay_s=faults.stream_chunk_delay_ms / 1000.0 * faults.latency_scale,
                token_blowup=faults.token_blowup,
            )
            plan.fault = self._pop_scripted(model)
            if plan.fault is None and faults.model_down:
                plan.fault = ScriptedFault("server_error", faults.down_status)
            retry_after, plan.headers = self._bucket(model, faults, now)
            if plan.fault is None and retry_after is not None:
                plan.fault = ScriptedFault("rate_limit", 429, retry_after)
            if plan.fault is None:
                plan.fault = self._random_fault(u, faults)
            plan.headers.update(self._token_headers(model, prompt_tokens, now))
            if plan.fault is None or plan.fault.kind == "slow":
                plan.cached_tokens = min(self._cached(prefix_key, prefix_tokens), prompt_tokens)
            return plan

    # --- request log -----------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """How many resets happened: a request started before the last one is not logged."""
        return self._generation

    def record(self, record: RequestRecord, generation: int | None = None) -> None:
        """Append one answered request to the log (unless it started before a reset)."""
        with self._lock:
            if generation is None or generation == self._generation:
                self._log.append(record)

    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Forget the log, queued failures, buckets and caches; restart the random streams."""
        with self._lock:
            self._generation += 1
            self._log.clear()
            self._scripted.clear()
            self._rngs.clear()
            self._admitted.clear()
            self._tokens.clear()
            self._prefixes.clear()

    def pending_failures(self) -> int:
        """How many scripted failures are still queued."""
        with self._lock:
            return sum(len(q) for q in self._scripted.values())
