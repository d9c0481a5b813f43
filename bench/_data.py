"""Synthetic spans for the storage benchmarks: realistic shapes, deterministic, fast to make."""

from __future__ import annotations

import random
from collections.abc import Iterator

from llmpulse.schema import BRANCH_ATTRIBUTE, Span

MODELS = (
    ("gpt-4o-mini", "openai", 0.15, 0.60),
    ("gpt-4o", "openai", 2.50, 10.0),
    ("claude-3-5-haiku", "anthropic", 0.80, 4.0),
    ("llama-3.1-70b", "meta", 0.0, 0.0),
)
LLM_NAMES = ("chat", "summarize", "classify")
PROMPT_VERSIONS = ("v1", "v2")
PROMPT = (
    "You are a helpful assistant. Summarize the following support ticket in two sentences. " * 2
)
ANSWER = "The customer cannot log in after the password reset; they ask for a manual unlock. " * 2


def llm_span(
    rng: random.Random, start: float, trace_id: str, span_id: str, content: bool = True
) -> Span:
    """One LLM call with tokens, cost, lognormal latency and a few attributes (and text if ``content``)."""
    model, provider, price_in, price_out = MODELS[rng.randrange(len(MODELS))]
    latency = rng.lognormvariate(-0.4, 0.6)  # seconds, median ~0.67 s
    inp = rng.randint(50, 4000)
    out = rng.randint(10, 800)
    failed = rng.random() < 0.02
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        name=LLM_NAMES[rng.randrange(len(LLM_NAMES))],
        start_time=start,
        end_time=start + latency,
        kind="llm",
        status="error" if failed else "ok",
        error_type="RateLimitError" if failed else None,
        model=model,
        provider=provider,
        prompt_version=PROMPT_VERSIONS[rng.randrange(2)],
        input_tokens=inp,
        output_tokens=out,
        total_tokens=inp + out,
        cost_usd=None if price_in == 0.0 else (inp * price_in + out * price_out) / 1e6,
        ttft_ms=latency * 250.0,
        session_id=f"s{rng.randrange(1000)}",
        input=PROMPT if content else None,
        output=ANSWER if content else None,
        attributes={"gen_ai.request.temperature": 0.2, "gen_ai.request.max_tokens": 1024},
    )


def llm_spans(n: int, start: float, end: float, seed: int = 1) -> list[Span]:
    """``n`` LLM spans with start times spread evenly over ``[start, end)``."""
    rng = random.Random(seed)
    step = (end - start) / max(n, 1)
    return [
        llm_span(rng, start + i * step, f"{seed:08x}{i:024x}", f"{seed:04x}{i:012x}")
        for i in range(n)
    ]


def mixed_spans(
    n: int, start: float, end: float, seed: int = 1, content: bool = True
) -> Iterator[Span]:
    """``n`` spans of several kinds (llm, tool, chain, branch) over ``[start, end)``, in time order."""
    rng = random.Random(seed)
    step = (end - start) / max(n, 1)
    for i in range(n):
        t = start + i * step
        trace_id, span_id = f"{seed:08x}{i:024x}", f"{seed:04x}{i:012x}"
        roll = rng.random()
        if roll < 0.6:
            yield llm_span(rng, t, trace_id, span_id, content)
            continue
        if roll < 0.8:
            kind, name, latency = (
                "tool",
                ("search", "sql")[rng.randrange(2)],
                rng.lognormvariate(-2.5, 0.8),
            )
        elif roll < 0.9:
            kind, name, latency = "chain", "pipeline", rng.lognormvariate(0.3, 0.5)
        else:
            kind, name, latency = "branch", "router", 0.0005
        attributes = (
            {BRANCH_ATTRIBUTE: ("rag", "direct", "refuse")[min(2, int(rng.random() * 2.2))]}
            if kind == "branch"
            else {}
        )
        yield Span(
            trace_id=trace_id,
            span_id=span_id,
            name=name,
            start_time=t,
            end_time=t + latency,
            kind=kind,
            status="error" if rng.random() < 0.01 else "ok",
            attributes=attributes,
        )
