"""What the simulator serves (models) and how it misbehaves (faults)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmpulse.errors import SimulatorError

__all__ = ["DEFAULT_MODELS", "FAULT_KINDS", "Faults", "ModelSpec", "SimulatorConfig"]

# What `fail_next(kind=...)` can script; the default kind is derived from the status code.
FAULT_KINDS = (
    "rate_limit",  # 429 with Retry-After and x-ratelimit-* headers
    "server_error",  # 5xx with OpenAI's server_error body
    "overloaded",  # 503 "model is overloaded"
    "context_length",  # 400 context_length_exceeded
    "auth",  # 401 invalid_api_key
    "html",  # a non-JSON HTML error page (as a broken proxy would send)
    "slow",  # a normal answer, but only after `delay_s` (for client timeouts)
)


@dataclass(frozen=True, slots=True)
class Faults:
    """How the simulator misbehaves, globally or for one model; all off by default.

    Probabilities are drawn from one uniform number per request, in the order rate limit,
    server error, HTML page, context error, so they add up: ``rate_limit_rate=0.1,
    error_rate=0.2`` fails exactly 30% of requests in the long run.
    """

    latency_median_ms: float = 0.0  # median of the log-normal answer latency; 0 = answer at once
    latency_sigma: float = 0.0  # sigma of log(latency); 0 = always the median
    latency_scale: float = 1.0  # multiplies every latency (a latency spike is latency_scale=10)
    stream_chunk_delay_ms: float = 0.0  # pause between streamed chunks
    error_rate: float = 0.0  # share of requests answered with `error_status`
    error_status: int = 500
    rate_limit_rate: float = 0.0  # share of requests answered 429
    retry_after_s: float = 1.0  # Retry-After sent with every 429
    rate_limit_requests: int | None = None  # bucket: at most N requests per window per model
    rate_limit_window_s: float = 60.0
    html_error_rate: float = 0.0  # share of requests answered with an HTML 502 page
    context_error_rate: float = 0.0  # share of requests answered context_length_exceeded
    model_down: bool = False  # every request answered `down_status`
    down_status: int = 503
    token_blowup: float = 1.0  # completion tokens are multiplied by this (still capped)

    def __post_init__(self) -> None:
        self._check_rates()
        self._check_durations_and_statuses()

    def _check_rates(self) -> None:
        for name in ("error_rate", "rate_limit_rate", "html_error_rate", "context_error_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SimulatorError(
                    f"Faults.{name}={value!r}: a probability must be within 0.0 and 1.0"
                )
        total = (
            self.error_rate + self.rate_limit_rate + self.html_error_rate + self.context_error_rate
        )
        if total > 1.0 + 1e-9:
            raise SimulatorError(
                f"Faults: error_rate + rate_limit_rate + html_error_rate + context_error_rate = {total:g}; "
                "they share one draw per request, so their sum must be at most 1.0"
            )

    def _check_durations_and_statuses(self) -> None:
        for name in (
            "latency_median_ms",
            "latency_sigma",
            "stream_chunk_delay_ms",
            "retry_after_s",
        ):
            value = getattr(self, name)
            if not (value >= 0.0 and math.isfinite(value)):
                raise SimulatorError(f"Faults.{name}={value!r}: must be a finite number >= 0")
        for name in ("latency_scale", "token_blowup", "rate_limit_window_s"):
            value = getattr(self, name)
            if not (value > 0.0 and math.isfinite(value)):
                raise SimulatorError(f"Faults.{name}={value!r}: must be a finite number > 0")
        if self.rate_limit_requests is not None and self.rate_limit_requests < 0:
            raise SimulatorError(
                f"Faults.rate_limit_requests={self.rate_limit_requests!r}: must be >= 0, or None for no bucket"
            )
        for name in ("error_status", "down_status"):
            value = getattr(self, name)
            if not 500 <= value <= 599:
                raise SimulatorError(f"Faults.{name}={value!r}: must be a 5xx status code")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: Faults | None = None) -> Faults:
        """Build faults from a mapping (JSON, YAML), on top of ``base``; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SimulatorError(
                f"unknown fault setting(s) {unknown}; known settings: {sorted(known)}"
            )
        try:
            return dataclasses.replace(base or cls(), **dict(data))
        except TypeError as exc:
            raise SimulatorError(f"bad fault settings {dict(data)!r}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One served model: its context window and how long its answers are."""

    context_window: int = 128_000
    max_output_tokens: int = 16_384
    completion_median_tokens: float = 120.0  # median answer length (log-normal)
    completion_sigma: float = 0.5
    reasoning: bool = False  # reasoning models report completion_tokens_details.reasoning_tokens
    tokens_per_minute: int = 2_000_000  # only reported in x-ratelimit-*-tokens headers
    embedding_dimensions: int = 1536  # vector length on /v1/embeddings (`dimensions` asks fewer)
    # Whether /v1/embeddings takes `dimensions`: the real API refuses it (400) for
    # text-embedding-ada-002, which predates shortened vectors.
    accepts_dimensions: bool = True

    def __post_init__(self) -> None:
        if self.context_window < 1 or self.max_output_tokens < 1:
            raise SimulatorError(
                f"ModelSpec: context_window={self.context_window} and max_output_tokens="
                f"{self.max_output_tokens} must both be >= 1"
            )
        if self.embedding_dimensions < 1:
            raise SimulatorError(
                f"ModelSpec: embedding_dimensions={self.embedding_dimensions} must be >= 1"
            )
        if self.completion_median_tokens < 1 or self.completion_sigma < 0:
            raise SimulatorError(
                f"ModelSpec: completion_median_tokens={self.completion_median_tokens} must be >= 1 "
                f"and completion_sigma={self.completion_sigma} >= 0"
            )


DEFAULT_MODELS: dict[str, ModelSpec] = {
    "gpt-4o-mini": ModelSpec(),
    "gpt-4o": ModelSpec(completion_median_tokens=180.0),
    "gpt-4.1": ModelSpec(context_window=1_047_576, max_output_tokens=32_768),
    "gpt-4.1-mini": ModelSpec(context_window=1_047_576, max_output_tokens=32_768),
    "o3-mini": ModelSpec(
        context_window=200_000,
        max_output_tokens=100_000,
        reasoning=True,
        completion_median_tokens=400.0,
    ),
    "gpt-3.5-turbo": ModelSpec(context_window=16_385, max_output_tokens=4_096),
    # Anthropic's models, for POST /v1/messages (any endpoint serves any model).
    "claude-sonnet-4-5": ModelSpec(context_window=200_000, max_output_tokens=64_000),
    "claude-haiku-4-5": ModelSpec(context_window=200_000, max_output_tokens=64_000),
    "claude-opus-4-5": ModelSpec(context_window=200_000, max_output_tokens=64_000),
    # Embedding models, for POST /v1/embeddings: at most 8192 tokens per input.
    "text-embedding-3-small": ModelSpec(context_window=8192, embedding_dimensions=1536),
    "text-embedding-3-large": ModelSpec(context_window=8192, embedding_dimensions=3072),
    "text-embedding-ada-002": ModelSpec(
        context_window=8192, embedding_dimensions=1536, accepts_dimensions=False
    ),
}
# What a streamed Anthropic answer's message_delta says about usage: all four counts,
# cumulative (the API today), or only output_tokens (older versions, some compatible servers).
DELTA_USAGE_SHAPES = ("cumulative", "output_only")


def _coerce_models(models: Any) -> dict[str, ModelSpec]:
    if models is None:
        return dict(DEFAULT_MODELS)
    if isinstance(models, (list, tuple)):
        models = {name: None for name in models}
    if not isinstance(models, Mapping) or not models:
        raise SimulatorError(
            "SimulatorConfig.models must be a non-empty dict {name: ModelSpec | dict | None} "
            f"or a list of names, got {models!r}"
        )
    out: dict[str, ModelSpec] = {}
    for name, spec in models.items():
        if spec is None:
            spec = DEFAULT_MODELS.get(name, ModelSpec())
        elif isinstance(spec, Mapping):
            try:
                spec = ModelSpec(**spec)
            except TypeError as exc:
                raise SimulatorError(f"SimulatorConfig.models[{name!r}]: {exc}") from exc
        if not isinstance(spec, ModelSpec):
            raise SimulatorError(
                f"SimulatorConfig.models[{name!r}] must be a ModelSpec, dict or None"
            )
        out[str(name)] = spec
    return out


@dataclass(slots=True)
class SimulatorConfig:
    """Everything the simulator needs at start; faults can change later, at runtime."""

    seed: int = 0
    models: Any = (
        None  # dict name -> ModelSpec | dict | None, or a list of names; None = DEFAULT_MODELS
    )
    faults: Faults = field(default_factory=Faults)  # global faults
    model_faults: dict[str, Faults] = field(default_factory=dict)  # per model, replaces global
    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port; read the bound one from LLMSimulator.port
    api_key: str | None = (
        None  # when set, requests without "Authorization: Bearer <api_key>" get 401
    )
    accept_unknown_models: bool = False  # True: serve any model name with a default ModelSpec
    anthropic_delta_usage: str = "cumulative"  # one of DELTA_USAGE_SHAPES

    def __post_init__(self) -> None:
        self.models = _coerce_models(self.models)
        if isinstance(self.faults, Mapping):
            self.faults = Faults.from_dict(self.faults)
        if not isinstance(self.faults, Faults):
            raise SimulatorError(
                f"SimulatorConfig.faults must be a Faults, got {type(self.faults).__name__}"
            )
        for name, faults in list(self.model_faults.items()):
            if isinstance(faults, Mapping):
                self.model_faults[name] = Faults.from_dict(faults)
        if self.anthropic_delta_usage not in DELTA_USAGE_SHAPES:
            raise SimulatorError(
                f"SimulatorConfig.anthropic_delta_usage={self.anthropic_delta_usage!r}: "
                f"must be one of {DELTA_USAGE_SHAPES}"
            )
        if not 0 <= self.port <= 65535:
            raise SimulatorError(
                f"SimulatorConfig.port={self.port}: must be 0 (any free port) to 65535"
            )
