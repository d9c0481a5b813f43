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
