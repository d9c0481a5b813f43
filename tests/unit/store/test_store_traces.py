"""The trace search over the per-trace totals ingest keeps (the ``traces`` table).

Its answers must be what grouping the spans said: a trace matches when any of its spans in the
window matches every filter, its totals and duration are over all its spans, minimums apply to
those totals, ordered by (first start, trace id) newest first. These tests compare every page
against that definition computed here from the spans, with spans that arrive out of order, in
later batches and twice, traces that begin before the window or have a gap over it, and after a
retention cleanup that cuts traces in two; and read the query plans on both databases.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import pytest
from sqlalchemy import text

from llmpulse.schema import Span
from llmpulse.store import Store
from llmpulse.store.queries import browse
from tests.unit.store.conftest import T0, make_span

_FILTERS = ("name", "kind", "status", "model", "prompt_version", "session_id", "user_id", "service")


def _traces(n: int, seed: int) -> list[Span]:
    """``n`` traces of 1-6 spans over T0 .. T0 + 2 h; some last long or pause over an hour."""
    rng = random.Random(seed)
    spans: list[Span] = []
    for t in range(n):
        begin = T0 + rng.uniform(0, 7200)
        root = f"s{seed}-{t}-0"
        for k in range(rng.randint(1, 6)):
            gap = rng.choice([0.0, 0.5, 30.0, 1800.0]) * k  # some traces pause for half an hour
            llm = rng.random() < 0.6
            spans.append(
                make_span(
                    begin + gap + (rng.uniform(-1, 3) if k else 0.0),  # a child may start first
                    rng.lognormvariate(6, 1.2),
                    trace_id=f"tr{seed}-{t:04d}",
                    span_id=f"s{seed}-{t}-{k}",
                    parent_id=None if k == 0 else root,
                    name=rng.choice(["chat", "ticket", "search"]),
                    kind="llm" if llm else rng.choice(["chain", "tool"]),
                    status="error" if rng.random() < 0.1 else "ok",
                    model=rng.choice(["m-a", "m-b"]) if llm else None,
                    prompt_version=rng.choice(["v1", "v2", None]),
                    session_id=rng.choice(["sa", "sb", None]),
                    user_id=rng.choice(["ua", "ub", None]),
                    service=rng.choice(["api", "worker"]),
                    input_tokens=rng.randint(1, 500) if llm else None,
                    output_tokens=rng.randint(1, 100) if llm else None,
                    total_tokens=None,
                    cost_usd=rng.choice([None, round(rng.random() / 100, 6)]) if llm else None,
                )
            )
    return spans


def _expected(
    spans: Iterable[Span],
    start: float,
    end: float,
    filters: dict[str, Any],
    min_latency_ms: float | None = None,
    min_cost_usd: float | None = None,
) -> list[tuple[Any, ...]]:
    """The trace search's definition, from the spans: (id, first start, last end, spans,
    errors, input tokens, output tokens, cost) newest first."""
    by_trace: dict[str, list[Span]] = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    out = []
    for trace_id, group in by_trace.items():
        if not any(
            start <= s.start_time < end and all(getattr(s, k) == v for k, v in filters.items())
            for s in group
        ):
            continue
        first, last = min(s.start_time for s in group), max(s.end_time for s in group)
        costs = [s.cost_usd for s in group if s.cost_usd is not None]
        cost = sum(costs) if costs else None
        if min_latency_ms is not None and (last - first) * 1000.0 < min_latency_ms:
            continue
        if min_cost_usd is not None and (cost is None or cost < min_cost_usd):
            continue
        out.append((
            trace_id, first, last, len(group), sum(s.status == "error" for s in group),
            sum(s.input_tokens or 0 for s in group), sum(s.output_tokens or 0 for s in group),
            None if cost is None else round(cost, 9),
        ))  # fmt: skip
    return sorted(out, key=lambda r: (r[1], r[0]), reverse=True)


def _rounded(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows]


def _walk(
    store: Store, start: float, end: float, limit: int, **kwargs: Any
) -> list[tuple[Any, ...]]:
    """Every page of the search, following the cursor (the last row's key)."""
    rows: list[tuple[Any, ...]] = []
    after = None
    filters = {k: kwargs.pop(k) for k in _FILTERS if k in kwargs}
    while True:
        page = store.trace_page(start, end, filters=filters, after=after, limit=limit, **kwargs)
        rows += [
            (t.trace_id, t.start_time, t.end_time, t.spans, t.errors, t.input_tokens,
             t.output_tokens, None if t.cost_usd is None else round(t.cost_usd, 9))
            for t in page
        ]  # fmt: skip
        if len(page) < limit:
            return rows
        after = (page[-1].start_time, page[-1].trace_id)


_CASES: list[dict[str, Any]] = [
    {},
    {"model": "m-a"},
    {"status": "error"},
    {"kind": "tool", "service": "worker"},
    {"session_id": "sa", "user_id": "ub"},
    {"name": "ticket", "prompt_version": "v2"},
    {"min_latency_ms": 2000.0},
    {"min_cost_usd": 0.008},
    {"min_latency_ms": 1500.0, "min_cost_usd": 0.004, "model": "m-b"},
]


def test_every_page_is_what_grouping_the_spans_says(store: Store) -> None:
    """Spans written shuffled over several batches, one batch sent twice and a few spans
    again alone: every window, filter, minimum and page size gives the defined traces."""
    spans = _traces(300, seed=11)
    shuffled = spans[:]
    random.Random(2).shuffle(shuffled)
    batches = [shuffled[i : i + 170] for i in range(0, len(shuffled), 170)]
    for batch in batches:
        store.write(spans=batch)
    assert store.write(spans=batches[1]).duplicates == len(batches[1])  # a retried batch
    assert store.write(spans=shuffled[:3] + shuffled[-2:]).spans == 0
    windows = [(T0, T0 + 7200), (T0 + 1800, T0 + 3600), (T0 + 3000, T0 + 3100), (T0 - 60, T0)]
    for start, end in windows:
        for case in _CASES:
            args = dict(case)
            mins = {k: args.pop(k) for k in ("min_latency_ms", "min_cost_usd") if k in args}
            want = _expected(spans, start, end, args, **mins)
            for limit in (7, 1000):
                got = _walk(store, start, end, limit, **case)
                assert [r[0] for r in got] == [r[0] for r in want], (start, end, case, limit)
                assert _rounded(got) == _rounded(want), (start, end, case)
    summary = store.trace_summary(spans[0].trace_id)
    one = _expected(spans, T0 - 1e6, T0 + 1e6, {}, None, None)
    assert summary is not None
    assert next(r for r in one if r[0] == summary.trace_id)[3] == summary.spans


def test_a_trace_begun_before_the_window_is_found_by_a_span_in_it(store: Store) -> None:
    """A long trace whose root began an hour before the window is listed (last, by its first
    start) when one of its spans is in the window; one that pauses over the window is not."""
    store.write(spans=[
        make_span(T0, 100.0, trace_id="long", span_id="l0"),
        make_span(T0 + 3700, 100.0, trace_id="long", span_id="l1", parent_id="l0"),
        make_span(T0 + 10, 100.0, trace_id="gap", span_id="g0"),
        make_span(T0 + 7300, 100.0, trace_id="gap", span_id="g1", parent_id="g0"),
        make_span(T0 + 3650, 100.0, trace_id="inside", span_id="i0"),
    ])  # fmt: skip
    page = store.trace_page(T0 + 3600, T0 + 7200, filters={})
    assert [t.trace_id for t in page] == ["inside", "long"]
    assert page[1].latency_ms == pytest.approx(3700_100.0)
    assert [t.trace_id for t in store.trace_page(T0 + 3600, T0 + 7200, filters={}, limit=1)] == [
        "inside"
    ]
    after = (page[0].start_time, page[0].trace_id)
    rest = store.trace_page(T0 + 3600, T0 + 7200, filters={}, after=after, limit=1)
    assert [t.trace_id for t in rest] == ["long"]


def test_cleanup_keeps_the_totals_of_what_is_left(store: Store) -> None:
    """Retention that deletes all of one trace and the first half of another: the first is
    gone from the search and its summary, the second's totals are those of its spans left."""
    day = 86400.0
    old = T0 - 10 * day
    store.write(spans=[
        make_span(old, 100.0, trace_id="gone", span_id="a0", cost_usd=0.5),
        make_span(old + 5, 100.0, trace_id="cut", span_id="b0", cost_usd=0.25),
        make_span(T0 + 5, 300.0, trace_id="cut", span_id="b1", parent_id="b0", cost_usd=0.125),
        make_span(T0 + 6, 100.0, trace_id="kept", span_id="c0", cost_usd=None),
    ])  # fmt: skip
    assert store.cleanup(5.0, now=T0 + 100, chunk_rows=1).spans == 2
    assert store.trace_summary("gone") is None
    cut = store.trace_summary("cut")
    assert cut is not None
    assert (cut.spans, cut.start_time, cut.cost_usd) == (1, T0 + 5, pytest.approx(0.125))
    assert cut.latency_ms == pytest.approx(300.0)
    listed = store.trace_page(old - 1, T0 + 3600, filters={})
    assert [t.trace_id for t in listed] == ["kept", "cut"]
    assert listed[0].cost_usd is None


def _plans(store: Store, filters: dict[str, Any], **kwargs: Any) -> list[str]:
    """The query plans of the trace search's statements (the root-name look-up left out)."""
    with store._read("plan") as conn:
        conn.execute(text("ANALYZE"))
        captured: list[str] = []
        real = conn.execute

        def spy(statement: Any, *args: Any, **kw: Any) -> Any:
            captured.append(str(statement.compile(conn, compile_kwargs={"literal_binds": True})))
            return real(statement, *args, **kw)

        conn.execute = spy  # type: ignore[method-assign]
        browse.trace_page(conn, T0, T0 + 3600, filters, None, 50, **kwargs)
        conn.execute = real  # type: ignore[method-assign]
        explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
        return [
            " ".join(str(r) for r in conn.exec_driver_sql(explain + q).fetchall())
            for q in captured
            if "FROM traces" in q
        ]


def test_the_search_reads_the_traces_index_not_the_window_s_spans(store: Store) -> None:
    """Among 9,300 one-span traces (300 in the window), a search with minimums reads the traces
    index by first start (in which it checks the minimums); the traces that began before the
    window are read by their last start; neither groups spans."""
    store.write(spans=[make_span(T0 - 9000 + i * 1.0, float(i % 97)) for i in range(9000)])
    store.write(spans=[make_span(T0 + i * 10.0, float(i % 97)) for i in range(300)])
    store.write(spans=[  # a trace begun before the window with a span in it
        make_span(T0 - 60.0, 90_000.0, trace_id="across", span_id="x0"),
        make_span(T0 + 10.0, 100.0, trace_id="across", span_id="x1", parent_id="x0"),
    ])  # fmt: skip
    plans = _plans(store, {}, min_latency_ms=96.5, min_cost_usd=0.0005)  # 3 of 300
    assert len(plans) == 3
    began_inside, straddling, began_before = plans
    assert "ix_traces_start_time_trace_id_end_time_cost_usd" in began_inside
    assert "ix_traces_last_start_start_time_trace_id" in straddling
    assert "pk_traces" in began_before or "USING PRIMARY KEY (trace_id=?)" in began_before
    assert "USE TEMP B-TREE FOR ORDER BY" not in began_inside  # the index gives the order
    for plan in plans:
        assert "GROUP BY" not in plan.upper() and "Aggregate" not in plan
    # With a span filter the window's matching spans (by the start index) name the traces.
    (filtered,) = _plans(store, {"model": "gpt-4o-mini"}, min_latency_ms=90.0)
    assert "ix_spans_start_time" in filtered
    assert "GROUP BY" not in filtered.upper() and "Aggregate" not in filtered


def test_the_migration_fills_the_totals_of_spans_stored_before_it(database_url: str) -> None:
    """A database at revision 0006 (spans, no ``traces``) brought to 0007 lists the same
    traces, with the same totals, as one that kept them from the start."""
    spans = _traces(40, seed=5)
    with Store.open(database_url) as store:
        store.write(spans=spans)
        want = _walk(store, T0, T0 + 7200, 1000)
        with store._write_tx() as conn:
            conn.execute(text("DROP TABLE traces"))
            conn.execute(text("UPDATE llmpulse_alembic_version SET version_num = '0006'"))
    with Store.open(database_url) as store:
        assert _rounded(_walk(store, T0, T0 + 7200, 1000)) == _rounded(want)
        assert len(want) == 40
