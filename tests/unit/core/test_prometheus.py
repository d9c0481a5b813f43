"""The llm_* metrics: names, labels, values and the bound on label cardinality."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families

from llmpulse.prometheus import LATENCY_BUCKETS, LLMMetrics, metrics_response
from llmpulse.schema import Span


def llm(model: str | None, *, status: str = "ok", latency_s: float = 0.5, **columns) -> Span:  # type: ignore[no-untyped-def]
    return Span(
        trace_id="t", span_id="s", name="chat", start_time=100.0, end_time=100.0 + latency_s,
        kind=columns.pop("kind", "llm"), model=model, status=status, **columns,
    )  # fmt: skip


def samples(metrics: LLMMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics_response(metrics.registry, None)
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class TestLLMMetrics:
    def test_counts_tokens_cost_requests_and_latency(self) -> None:
        """One span of each outcome moves exactly the series it belongs to."""
        m = LLMMetrics(CollectorRegistry())
        m.observe([
            llm("gpt-4o", input_tokens=100, output_tokens=20, cache_read_tokens=60,
                reasoning_tokens=5, cost_usd=0.25, latency_s=0.03),
            llm("gpt-4o", status="error", latency_s=90.0),
            llm(None, kind="chain", latency_s=1.0),
        ])  # fmt: skip
        got = samples(m)
        assert got[("llm_requests_total", (("model", "gpt-4o"), ("status", "ok")))] == 1
        assert got[("llm_requests_total", (("model", "gpt-4o"), ("status", "error")))] == 1
        for kind, n in (("input", 100), ("output", 20), ("cache_read", 60), ("reasoning", 5)):
            assert got[("llm_tokens_total", (("model", "gpt-4o"), ("type", kind)))] == n
        assert got[("llm_cost_usd_total", (("model", "gpt-4o"),))] == 0.25
        lat = (("kind", "llm"), ("model", "gpt-4o"))
        assert got[("llm_request_latency_seconds_count", lat)] == 2
        assert got[("llm_request_latency_seconds_bucket", (*lat[:1], ("le", "0.04"), lat[1]))] == 1
        assert got[("llm_request_latency_seconds_bucket", (*lat[:1], ("le", "81.92"), lat[1]))] == 1
        assert got[("llm_request_latency_seconds_bucket", (*lat[:1], ("le", "+Inf"), lat[1]))] == 2
        # A chain span without a model is timed, but is not an llm request.
        assert (
            got[("llm_request_latency_seconds_count", (("kind", "chain"), ("model", "none")))] == 1
        )
        assert not any(k[0] == "llm_requests_total" and ("model", "none") in k[1] for k in got)

    def test_a_batch_counts_what_each_span_alone_would(self) -> None:
        """observe() sums a batch per series before touching the counters; the scrape is the
        same as observing each span on its own (overflowing models and kinds included)."""
        spans = [
            llm(f"m{i % 5}", status="error" if i % 7 == 0 else "ok", latency_s=i * 0.37 % 90,
                input_tokens=i, output_tokens=i % 3 or None, cache_read_tokens=i // 2,
                reasoning_tokens=i % 2, cost_usd=(i % 4) * 0.125,
                kind=("llm", "embedding", "chain", "weird")[i % 4])
            for i in range(200)
        ] + [llm(None, kind="tool", latency_s=-1.0), llm("", kind="llm")]  # fmt: skip
        batched = LLMMetrics(CollectorRegistry(), max_models=3)
        one_by_one = LLMMetrics(CollectorRegistry(), max_models=3)
        batched.observe(spans)
        for s in spans:
            one_by_one.observe_one(
                s.model, s.kind, s.status, s.latency_ms, s.input_tokens, s.output_tokens,
                s.cache_read_tokens, s.reasoning_tokens, s.cost_usd,
            )  # fmt: skip
        got, want = samples(batched), samples(one_by_one)
        assert got.keys() == want.keys()
        for key, value in want.items():
            if not key[0].endswith("_created"):  # when each series was first made
                assert got[key] == pytest.approx(value, rel=1e-12), key
        assert got[("llmpulse_label_overflow_total", (("label", "model"),))] > 0
        assert got[("llmpulse_label_overflow_total", (("label", "kind"),))] == 50

    def test_buckets_follow_genai_semconv(self) -> None:
        """0.01 s doubling to 81.92 s, past the client's 10 s default."""
        assert LATENCY_BUCKETS[0] == 0.01 and LATENCY_BUCKETS[-1] == 81.92
        assert len(LATENCY_BUCKETS) == 14

    def test_model_label_is_capped_and_the_overflow_counted(self) -> None:
        """Past max_models distinct models, spans count under model="other", and are counted."""
        m = LLMMetrics(CollectorRegistry(), max_models=3)
        m.observe([llm(f"m{i}", input_tokens=1) for i in range(10)])
        got = samples(m)
        models = {dict(k[1])["model"] for k in got if k[0] == "llm_requests_total"}
        assert models == {"m0", "m1", "m2", "other"}
        assert got[("llm_requests_total", (("model", "other"), ("status", "ok")))] == 7
        assert got[("llmpulse_label_overflow_total", (("label", "model"),))] == 7

    def test_unknown_kind_becomes_other(self) -> None:
        """A kind outside llmpulse's span kinds is labelled other and counted as overflow."""
        m = LLMMetrics(CollectorRegistry())
        m.observe([llm(None, kind="weird")])
        got = samples(m)
        assert (
            got[("llm_request_latency_seconds_count", (("kind", "other"), ("model", "none")))] == 1
        )
        assert got[("llmpulse_label_overflow_total", (("label", "kind"),))] == 1

    def test_bad_cap(self) -> None:
        """max_models below 1 is refused with the value named."""
        with pytest.raises(ValueError, match="max_models must be >= 1, got 0"):
            LLMMetrics(CollectorRegistry(), max_models=0)


class TestExposition:
    def test_openmetrics_when_asked(self) -> None:
        """An OpenMetrics Accept header gets OpenMetrics, ending in # EOF."""
        m = LLMMetrics(CollectorRegistry())
        m.observe([llm("gpt-4o", input_tokens=3)])
        body, ctype = metrics_response(m.registry, "application/openmetrics-text; version=1.0.0")
        assert ctype.startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
        names = {f.name for f in parse_om(body.decode())}
        assert {"llm_tokens", "llm_requests", "llm_request_latency_seconds"} <= names

    def test_text_format_by_default(self) -> None:
        """Without an Accept header the Prometheus text format is served."""
        body, ctype = metrics_response(LLMMetrics(CollectorRegistry()).registry, None)
        assert ctype.startswith("text/plain") and b"# HELP llm_requests_total" in body
