"""Reading raw spans for the CLI: counting, keyset pages, raw aggregates and trace lists."""

from __future__ import annotations

import pytest

from llmpulse.store import Store
from tests.unit.store.conftest import T0, make_span, random_spans


def test_iter_spans_returns_every_span_once_in_start_order_across_pages(store: Store) -> None:
    spans = random_spans(257, T0, T0 + 3600)
    # Spans sharing one start time straddle a page boundary: the key must include the row id.
    spans += [make_span(T0 + 100.0, span_id=f"same{i}", trace_id=f"same{i}") for i in range(7)]
    store.write(spans=spans)
    got = list(store.iter_spans(T0, T0 + 3600, page_size=10))
    assert sorted(s.span_id for s in got) == sorted(s.span_id for s in spans)
    assert [s.start_time for s in got] == sorted(s.start_time for s in spans)
    assert store.count_spans(T0, T0 + 3600) == len(spans)


def test_iter_spans_pages_are_bounded_queries(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmpulse.store.queries import browse as queries

    store.write(spans=random_spans(95, T0, T0 + 600))
    sizes: list[int] = []
    real = queries.span_page

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        page = real(*args, **kwargs)
        sizes.append(len(page))
        return page

    monkeypatch.setattr(queries, "span_page", spy)
    assert sum(1 for _ in store.iter_spans(T0, T0 + 600, page_size=20)) == 95
    assert sizes == [20, 20, 20, 20, 15]


def test_iter_spans_and_count_apply_filters_and_window(store: Store) -> None:
    store.write(
        spans=[
            make_span(T0 + 1, model="a", status="error", session_id="s1"),
            make_span(T0 + 2, model="a", status="ok", session_id="s2"),
            make_span(T0 + 3, model="b", status="error", session_id="s1"),
            make_span(T0 + 7200, model="a", status="error", session_id="s1"),  # outside
        ]
    )
    got = list(store.iter_spans(T0, T0 + 3600, page_size=1, model="a", status="error"))
    assert [s.start_time for s in got] == [T0 + 1]
    assert store.count_spans(T0, T0 + 3600, session_id="s1") == 2
    with pytest.raises(ValueError, match="cannot filter spans by 'colour'"):
        store.count_spans(T0, T0 + 3600, colour="red")


def test_raw_span_stats_group_by_service_sum_tokens_cost_and_errors(store: Store) -> None:
    store.write(
        spans=[
            make_span(T0 + 1, service="web", input_tokens=10, output_tokens=1, cost_usd=0.5),
            make_span(T0 + 2, service="web", input_tokens=20, output_tokens=2, cost_usd=None,
                      status="error", latency_ms=300.0),
            make_span(T0 + 3, service="batch", input_tokens=5, output_tokens=5, cost_usd=None),
            make_span(T0 + 4, service=None, input_tokens=None, output_tokens=None, cost_usd=None),
        ]
    )  # fmt: skip
    rows = {r.group["service"]: r for r in store.raw_span_stats(T0, T0 + 60, group_by=["service"])}
    assert set(rows) == {"web", "batch", None}
    web = rows["web"]
    assert (web.calls, web.errors, web.input_tokens, web.output_tokens) == (2, 1, 30, 3)
    assert web.cost_usd == pytest.approx(0.5) and web.priced_calls == 1
    assert web.latency_ms_avg == pytest.approx(275.0)
    assert web.p95_latency_ms is None
    assert rows["batch"].cost_usd is None  # no priced call: unknown, not zero
    assert rows[None].input_tokens == 0
    with pytest.raises(ValueError, match="cannot group spans by 'colour'"):
        store.raw_span_stats(T0, T0 + 60, group_by=["colour"])


def test_list_traces_newest_first_with_totals_over_all_spans(store: Store) -> None:
    root1 = make_span(
        T0 + 10,
        trace_id="t1",
        span_id="r1",
        name="ticket",
        kind="chain",
        model=None,
        input_tokens=None,
        output_tokens=None,
        cost_usd=None,
        latency_ms=5000.0,
    )
    child1 = make_span(
        T0 + 11,
        trace_id="t1",
        span_id="c1",
        parent_id="r1",
        model="m-x",
        input_tokens=100,
        output_tokens=10,
        cost_usd=0.25,
    )
    child2 = make_span(
        T0 + 12,
        trace_id="t1",
        span_id="c2",
        parent_id="r1",
        model="m-y",
        status="error",
        input_tokens=50,
        output_tokens=0,
        cost_usd=None,
    )
    root2 = make_span(T0 + 20, trace_id="t2", span_id="r2", name="other", model="m-y")
    store.write(spans=[root1, child1, child2, root2])  # fmt: skip
    traces = store.list_traces(T0, T0 + 3600)
    assert [t.trace_id for t in traces] == ["t2", "t1"]
    t1 = traces[1]
    assert (t1.name, t1.spans, t1.errors, t1.input_tokens, t1.output_tokens) == (
        "ticket", 3, 1, 150, 10,
    )  # fmt: skip
    assert t1.cost_usd == pytest.approx(0.25)
    assert t1.latency_ms == pytest.approx(5000.0)
    # A filter picks traces by any of their spans, and totals still cover the whole trace.
    only = store.list_traces(T0, T0 + 3600, model="m-x")
    assert [t.trace_id for t in only] == ["t1"] and only[0].spans == 3
    assert [t.trace_id for t in store.list_traces(T0, T0 + 3600, limit=1)] == ["t2"]
