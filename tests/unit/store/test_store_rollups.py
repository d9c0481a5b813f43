"""Aggregates from rollups equal aggregates of the raw spans, over any window and grouping."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from llmpulse.schema import BRANCH_ATTRIBUTE, Span
from llmpulse.store import GROUP_KEYS, RELATIVE_ERROR, SpanStats, Store
from tests.unit.store.conftest import T0, make_span, random_spans

START, END = T0 - 1800, T0 + 3 * 3600 + 1200  # spans from 30 min before T0 to 3 h 20 min after


def _key(span: Span, group_by: tuple[str, ...]) -> tuple[Any, ...]:
    parts = {
        "model": span.model,
        "kind": span.kind,
        "name": span.name,
        "prompt_version": span.prompt_version,
        "provider": span.provider,
        "branch": span.attributes.get(BRANCH_ATTRIBUTE) if span.kind == "branch" else None,
    }
    return tuple(parts[k] or None for k in group_by)


def _expected(
    spans: list[Span], start: float, end: float, group_by: tuple[str, ...], step: int | None = None
) -> dict:
    """Brute force over raw spans: the minute buckets the window overlaps, as the store defines."""
    lo, hi = math.floor(start / 60) * 60, math.ceil(end / 60) * 60
    groups: dict[tuple[Any, ...], list[Span]] = defaultdict(list)
    for s in spans:
        minute = math.floor(s.start_time / 60) * 60
        if lo <= minute < hi:
            bucket = minute // step * step if step else None  # epoch-aligned buckets
            groups[(bucket, *_key(s, group_by))].append(s)
    return groups


def _check(row: SpanStats, spans: list[Span]) -> None:
    assert row.calls == len(spans)
    assert row.errors == sum(s.status == "error" for s in spans)
    assert row.error_rate == pytest.approx(row.errors / row.calls)
    assert row.input_tokens == sum(s.input_tokens or 0 for s in spans)
    assert row.output_tokens == sum(s.output_tokens or 0 for s in spans)
    assert row.total_tokens == sum((s.input_tokens or 0) + (s.output_tokens or 0) for s in spans)
    priced = [s.cost_usd for s in spans if s.cost_usd is not None]
    assert row.priced_calls == len(priced)
    assert row.cost_usd == (pytest.approx(sum(priced)) if priced else None)
    assert row.latency_ms_avg == pytest.approx(np.mean([s.latency_ms for s in spans]))
    ttfts = [s.ttft_ms for s in spans if s.ttft_ms is not None]
    assert row.ttft_ms_avg == (pytest.approx(np.mean(ttfts)) if ttfts else None)
    latencies = np.array([s.latency_ms for s in spans])
    for q, got in ((50, row.p50_latency_ms), (95, row.p95_latency_ms), (99, row.p99_latency_ms)):
        low = np.percentile(latencies, q, method="lower")
        high = np.percentile(latencies, q, method="higher")
        assert low * (1 - RELATIVE_ERROR) - 1e-9 <= got <= high * (1 + RELATIVE_ERROR) + 1e-9, (
            q,
            got,
            low,
            high,
        )


@pytest.fixture
def loaded(store: Store) -> tuple[Store, list[Span]]:
    """A store holding 1500 mixed spans over 3 h 50 min, written in several batches."""
    spans = random_spans(1500, START, END)
    for i in range(0, len(spans), 400):
        assert store.write(spans=spans[i : i + 400]).rejected == 0
    return store, spans


WINDOWS = [
    (START, END),  # everything
    (T0, T0 + 3 * 3600),  # aligned whole hours only
    (T0 - 17 * 60 - 30, T0 + 2 * 3600 + 13 * 60 + 12),  # ragged minute edges around hour rows
    (T0 + 600.5, T0 + 3000),  # inside one hour: minute rows only
    (T0 + 120, T0 + 120),  # empty window
]


class TestStats:
    @pytest.mark.parametrize("window", WINDOWS, ids=["all", "aligned", "ragged", "inner", "empty"])
    def test_equal_to_raw(
        self, loaded: tuple[Store, list[Span]], window: tuple[float, float]
    ) -> None:
        """Every group's stats over a window equal the aggregate of the raw spans in its minutes."""
        store, spans = loaded
        group_by = ("model", "kind")
        rows = store.span_stats(*window, group_by=group_by)
        expected = _expected(spans, *window, group_by)
        assert {(None, *r.group.values()) for r in rows} == set(expected)
        for row in rows:
            _check(row, expected[(None, *row.group.values())])

    def test_totals_and_every_group_key(self, loaded: tuple[Store, list[Span]]) -> None:
        """Without group_by there is one total row; every group key is accepted."""
        store, spans = loaded
        (total,) = store.span_stats(START, END)
        _check(total, spans)
        assert total.group == {}
        rows = store.span_stats(START, END, group_by=GROUP_KEYS)
        assert sum(r.calls for r in rows) == len(spans)

    def test_filters(self, loaded: tuple[Store, list[Span]]) -> None:
        """Filters take a value, a list of values, or '' for spans without that key."""
        store, spans = loaded
        (row,) = store.span_stats(START, END, model="m-a", kind="llm")
        _check(row, [s for s in spans if s.model == "m-a"])
        (row,) = store.span_stats(START, END, model=["m-a", "m-b"])
        _check(row, [s for s in spans if s.model in ("m-a", "m-b")])
        (row,) = store.span_stats(START, END, model="")
        _check(row, [s for s in spans if s.model is None])
        assert store.span_stats(START, END, model="nope") == []

    def test_bad_arguments(self, store: Store) -> None:
        """Unknown group or filter keys and reversed windows raise ValueError naming the problem."""
        with pytest.raises(ValueError, match="cannot group by 'colour'"):
            store.span_stats(T0, T0 + 60, group_by=("colour",))
        with pytest.raises(ValueError, match="cannot filter by 'colour'"):
            store.span_stats(T0, T0 + 60, colour="red")
        with pytest.raises(ValueError, match="before start"):
            store.span_stats(T0 + 60, T0)


class TestSeries:
    @pytest.mark.parametrize(
        ("start", "step"),
        [(T0, 3600), (T0 - 17 * 60 - 30, 3600), (T0 - 600, 600), (T0 + 60, 7200)],
        ids=["aligned-hour", "ragged-hour", "10min", "2h"],
    )
    def test_each_bucket_equal_to_raw(
        self, loaded: tuple[Store, list[Span]], start: float, step: int
    ) -> None:
        """Each epoch-aligned series bucket equals the raw aggregate of its minutes in the window."""
        store, spans = loaded
        end = T0 + 3 * 3600 + 7 * 60
        rows = store.span_series(start, end, step, group_by=("model",))
        expected = _expected(spans, start, end, ("model",), step)
        assert {(r.bucket_start, *r.group.values()) for r in rows} == set(expected)
        for row in rows:
            _check(row, expected[(row.bucket_start, *row.group.values())])

    def test_step_must_be_whole_minutes(self, store: Store) -> None:
        """A step that is not a multiple of 60 s is refused with the reason."""
        with pytest.raises(ValueError, match="multiple of 60"):
            store.span_series(T0, T0 + 3600, 90)


class TestBranches:
    def test_branch_counts_per_bucket(self, loaded: tuple[Store, list[Span]]) -> None:
        """Branch counts per (bucket, name, branch) equal counts of the raw branch spans."""
        store, spans = loaded
        rows = store.branch_counts(T0, T0 + 3 * 3600, step_seconds=3600)
        expected: dict[tuple[Any, ...], int] = defaultdict(int)
        for s in spans:
            if s.kind == "branch" and T0 <= s.start_time // 60 * 60 < T0 + 3 * 3600:
                bucket = s.start_time // 3600 * 3600
                expected[(bucket, s.name, s.attributes[BRANCH_ATTRIBUTE])] += 1
        assert {(r.bucket_start, r.name, r.branch): r.count for r in rows} == expected

    def test_whole_window_and_name_filter(self, store: Store) -> None:
        """Without a step, counts cover the whole window; a branch without the attribute is None."""
        spans = [
            make_span(
                T0 + i,
                kind="branch",
                name="router",
                attributes={BRANCH_ATTRIBUTE: "rag" if i % 3 else "direct"},
            )
            for i in range(9)
        ] + [
            make_span(T0, kind="branch", name="guard"),
            make_span(T0, kind="llm", attributes={BRANCH_ATTRIBUTE: "x"}),
        ]
        store.write(spans=spans)
        rows = store.branch_counts(T0, T0 + 60, name="router")
        assert [(r.bucket_start, r.name, r.branch, r.count) for r in rows] == [
            (T0, "router", "direct", 3),
            (T0, "router", "rag", 6),
        ]
        assert [(r.branch, r.count) for r in store.branch_counts(T0, T0 + 60, name="guard")] == [
            (None, 1)
        ]


class TestPercentiles:
    def test_wide_latency_range_within_error(self, store: Store) -> None:
        """p50/p95/p99 stay within the stated relative error over five orders of magnitude."""
        rng = np.random.default_rng(7)
        latencies = np.exp(rng.uniform(np.log(0.5), np.log(50_000), 3000))
        spans = [make_span(T0 + (i % 3600), float(lat)) for i, lat in enumerate(latencies)]
        store.write(spans=spans)
        (row,) = store.span_stats(T0, T0 + 3600)
        _check(row, spans)

    def test_zero_latency(self, store: Store) -> None:
        """Spans that took no time report 0 ms percentiles."""
        store.write(spans=[make_span(T0, 0.0) for _ in range(5)])
        (row,) = store.span_stats(T0, T0 + 60)
        assert (row.p50_latency_ms, row.p99_latency_ms, row.latency_ms_avg) == (0.0, 0.0, 0.0)


class TestRollupSumsNeverOverflow:
    """The largest count a span may carry still sums in a rollup without overflowing BIGINT.

    Schemathesis once sent two spans with token counts near 2**63 into one minute: each was
    in range, their rollup sum was not, and the whole batch failed (a 500 on the server).
    """

    def test_many_spans_of_the_largest_count_share_one_minute(self, store: Store) -> None:
        from llmpulse._rows import MAX_COUNT

        spans = [
            make_span(
                span_id=f"big-{i}",
                input_tokens=MAX_COUNT,
                output_tokens=MAX_COUNT,
                total_tokens=MAX_COUNT,
            )
            for i in range(64)
        ]
        result = store.write(spans=spans)
        assert result.rejected == 0, result.reasons
        (row,) = store.span_stats(T0, T0 + 3600)
        assert row.calls == 64
        assert row.input_tokens == 64 * MAX_COUNT

    def test_a_count_past_the_limit_is_refused_alone(self, store: Store) -> None:
        from llmpulse._rows import MAX_COUNT

        result = store.write(
            spans=[
                make_span(span_id="ok-1", input_tokens=10),
                make_span(span_id="too-big", input_tokens=MAX_COUNT + 1),
            ]
        )
        assert result.stored == 1 and result.rejected == 1
