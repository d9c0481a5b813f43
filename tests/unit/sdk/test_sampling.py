"""Sampling keeps or drops whole traces, decided from the trace id alone."""

from __future__ import annotations

import llmpulse
from llmpulse.sdk._context import sample_threshold, trace_sampled
from llmpulse.testing import InMemoryExporter


def _record_traces(n: int) -> None:
    for i in range(n):
        with llmpulse.span("root", i=i):
            with llmpulse.span("child"):
                llmpulse.record_llm_call("gpt-4o-mini", input_tokens=1)
            llmpulse.record_llm_call("gpt-4o-mini", input_tokens=2)


class TestSampling:
    def test_rate_zero_records_no_spans(self) -> None:
        """sample_rate=0.0 exports no span at all (and counts the traces it skipped)."""
        exporter = InMemoryExporter()
        client = llmpulse.init(exporter=exporter, instrument=(), sample_rate=0.0)
        _record_traces(50)
        for _ in range(10):
            llmpulse.record_llm_call("gpt-4o")  # root-less calls are traces of their own
        assert llmpulse.flush(10)
        stats = client.stats()
        assert exporter.spans == [] and stats.sampled_out == 60
        assert stats.recorded == 0 and stats.dropped_total == 0

    def test_rate_one_records_everything(self) -> None:
        """sample_rate=1.0 exports every span."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=(), sample_rate=1.0)
        _record_traces(50)
        assert llmpulse.flush(10)
        assert len(exporter.spans) == 200

    def test_quarter_keeps_whole_traces(self) -> None:
        """At 0.25 about a quarter of traces are kept, each complete: no child without its parent."""
        exporter = InMemoryExporter()
        client = llmpulse.init(exporter=exporter, instrument=(), sample_rate=0.25)
        _record_traces(2000)
        assert llmpulse.flush(30)
        by_trace: dict[str, list] = {}
        for s in exporter.spans:
            by_trace.setdefault(s.trace_id, []).append(s)
        assert 400 <= len(by_trace) <= 600  # 500 expected; binomial sd is about 19
        assert all(len(spans) == 4 for spans in by_trace.values())
        ids = {s.span_id for s in exporter.spans}
        assert all(s.parent_id in ids for s in exporter.spans if s.parent_id is not None)
        stats = client.stats()
        assert stats.sampled_out == 2000 - len(by_trace)
        assert stats.recorded == stats.exported == len(exporter.spans)

    def test_root_less_llm_calls_are_sampled_too(self) -> None:
        """record_llm_call outside any span is its own trace and sampled like one."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=(), sample_rate=0.25)
        for _ in range(2000):
            llmpulse.record_llm_call("gpt-4o")
        assert llmpulse.flush(30)
        assert 400 <= len(exporter.spans) <= 600

    def test_metrics_are_not_sampled(self) -> None:
        """Metric points are not traces: sampling leaves them alone."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=(), sample_rate=0.0)
        llmpulse.record_metric("loss", 1.0)
        assert llmpulse.flush(10)
        assert len(exporter.points) == 1

    def test_decision_is_a_function_of_the_trace_id(self) -> None:
        """The same trace id always gets the same answer, and the share matches the rate."""
        threshold = sample_threshold(0.25)
        ids = [(i * 0x9E3779B97F4A7C15) & ((1 << 128) - 1) for i in range(1, 20001)]
        first = [trace_sampled(t, threshold) for t in ids]
        assert first == [trace_sampled(t, threshold) for t in ids]
        assert 0.23 < sum(first) / len(first) < 0.27
        assert all(trace_sampled(t, sample_threshold(1.0)) for t in ids)
        assert not any(trace_sampled(t, sample_threshold(0.0)) for t in ids)
