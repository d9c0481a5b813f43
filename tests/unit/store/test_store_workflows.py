"""Workflow runs from the store: outcome, totals and path per run, one run's costed steps, pages
keyed by time, and the branch-span index the listing reads (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import bindparam, text

from llmpulse.schema import Span
from llmpulse.store import Store
from llmpulse.store.queries.workflows import WorkflowRun
from tests.unit.store.conftest import T0, make_span

NO_LLM = {"model": None, "provider": None, "input_tokens": None, "output_tokens": None}


def chain(trace: str, sid: str, name: str, start: float, ms: float, parent: str | None,
          **fields: Any) -> Span:  # fmt: skip
    values = {**NO_LLM, "cost_usd": None, "kind": "chain", "name": name, **fields}
    return make_span(start, ms, trace_id=trace, span_id=sid, parent_id=parent, **values)


def llm(trace: str, sid: str, start: float, parent: str, cost: float, tokens: int) -> Span:
    return make_span(
        start, 100.0, trace_id=trace, span_id=sid, parent_id=parent, name="ChatOpenAI",
        input_tokens=tokens - 20, output_tokens=20, total_tokens=tokens, cost_usd=cost,
    )  # fmt: skip


def decide(trace: str, sid: str, at: float, parent: str, source: str, target: str,
           workflow: str = "support") -> Span:  # fmt: skip
    attrs = {"llmpulse.workflow": workflow, "llmpulse.branch": target,
             "llmpulse.branch.condition": "intent"}  # fmt: skip
    return chain(trace, sid, f"{workflow}:{source}", at, 0.0, parent, kind="branch",
                 attributes=attrs)  # fmt: skip


def plain_run(trace: str, t: float, route: str, fail: bool, cost: float) -> list[Span]:
    """A run through the plain workflow API: support > classify (decides) > route (an llm call
    under it, failing when ``fail``), then route decides the end."""
    root = f"{trace}-root"
    status = {"status": "error", "error_type": "RuntimeError"} if fail else {}
    return [
        chain(trace, root, "support", t, 3000.0, None, **status),
        chain(trace, f"{trace}-c", "classify", t + 0.1, 200.0, root),
        decide(trace, f"{trace}-d1", t + 0.25, f"{trace}-c", "classify", route),
        chain(trace, f"{trace}-r", route, t + 0.5, 2000.0, root, **status),
        llm(trace, f"{trace}-l", t + 0.6, f"{trace}-r", cost, 500),
        decide(trace, f"{trace}-d2", t + 2.6, root, route, "__end__"),
    ]


def graph_run(trace: str, t: float) -> list[Span]:
    """A LangGraph run: fetch (a plain edge, no decision) -> classify -> answer, which loops
    back to classify once, then answer again and the end."""
    root = f"{trace}-g"
    wf = {"llmpulse.workflow": "support"}
    spans = [chain(trace, root, "LangGraph", t, 5000.0, None, attributes=wf)]

    def node(i: int, name: str, at: float) -> str:
        sid = f"{trace}-n{i}"
        attrs = {**wf, "langgraph.node": name, "langgraph.step": i}
        spans.append(chain(trace, sid, name, at, 300.0, root, attributes=attrs))
        return sid

    node(1, "fetch", t + 0.1)
    c = node(2, "classify", t + 0.5)
    spans.append(decide(trace, f"{trace}-d1", t + 0.7, c, "classify", "answer"))
    a = node(3, "answer", t + 1.0)
    spans.append(llm(trace, f"{trace}-l1", t + 1.1, a, 0.01, 300))
    spans.append(decide(trace, f"{trace}-d2", t + 1.2, a, "answer", "classify"))
    c = node(4, "classify", t + 1.5)
    spans.append(decide(trace, f"{trace}-d3", t + 1.7, c, "classify", "answer"))
    a = node(5, "answer", t + 2.0)
    spans.append(llm(trace, f"{trace}-l2", t + 2.1, a, 0.03, 700))
    spans.append(decide(trace, f"{trace}-d4", t + 2.2, a, "answer", "__end__"))
    return spans


@pytest.fixture
def runs(store: Store) -> Store:
    spans = plain_run("ta", T0 + 100, "refund", True, 0.02)
    spans += plain_run("tb", T0 + 200, "answer", False, 0.001)
    spans += graph_run("tc", T0 + 300)
    spans += plain_run("old", T0 - 7200, "answer", False, 0.5)  # outside the window
    # Another workflow, and a trace with no decision at all.
    spans.append(decide("tx", "tx-d", T0 + 150, None, "start", "pay", workflow="billing"))  # type: ignore[arg-type]
    spans.append(chain("ty", "ty-root", "classify", T0 + 160, 10.0, None))
    store.write(spans=spans)
    return store


class TestWorkflowRuns:
    def test_runs_newest_first_with_outcome_totals_and_path(self, runs: Store) -> None:
        """Each run: its root's status and duration, every span's tokens and cost, its path."""
        page = runs.workflow_runs("support", T0, T0 + 3600)
        assert [r.trace_id for r, _ in page] == ["tc", "tb", "ta"]
        tc, tb, ta = (r for r, _ in page)
        assert (ta.outcome, ta.error_type, ta.errors) == ("error", "RuntimeError", 2)
        assert ta.duration_ms == pytest.approx(3000.0)
        assert ta.cost_usd == pytest.approx(0.02) and ta.total_tokens == 500
        assert ta.path == ("classify", "refund", "__end__")
        assert (tb.outcome, tb.path) == ("ok", ("classify", "answer", "__end__"))
        assert tc.outcome == "ok" and tc.name == "LangGraph"
        assert tc.path == ("fetch", "classify", "answer", "classify", "answer", "__end__")
        assert tc.cost_usd == pytest.approx(0.04) and tc.total_tokens == 1000
        assert not any(r.path_truncated for r, _ in page)

    def test_pages_are_keyed_by_time(self, runs: Store) -> None:
        """One run per page: the key of the last run gives the next, nothing twice or missed."""
        seen: list[str] = []
        after = None
        while True:
            page = runs.workflow_runs("support", T0, T0 + 3600, after=after, limit=1)
            if not page:
                break
            seen += [r.trace_id for r, _ in page]
            after = page[-1][1]
        assert seen == ["tc", "tb", "ta"]

    def test_runs_by_outcome(self, runs: Store) -> None:
        """Only the failed run, only the ones that ended well, paged one at a time; a run whose
        root is not stored is unknown."""
        window = (T0, T0 + 3600)
        assert [r.trace_id for r, _ in runs.workflow_runs("support", *window, outcome="error")] == [
            "ta"
        ]
        ok: list[str] = []
        after = None
        while page := runs.workflow_runs("support", *window, after=after, limit=1, outcome="ok"):
            ok += [r.trace_id for r, _ in page]
            after = page[-1][1]
        assert ok == ["tc", "tb"]
        assert runs.workflow_runs("support", *window, outcome="unknown") == []
        # A run still going: its decision's parent (the root) is not stored yet.
        runs.write(spans=[decide("tu", "tu-d", T0 + 170, "tu-root", "classify", "answer")])
        [(going, _)] = runs.workflow_runs("support", *window, outcome="unknown")
        assert (going.trace_id, going.outcome) == ("tu", "unknown")
        with pytest.raises(ValueError, match="outcome must be"):
            runs.workflow_runs("support", *window, outcome="failed")

    def test_other_workflows_and_windows_stay_apart(self, runs: Store) -> None:
        """billing has its own run; an unknown workflow has none; the old run is in its window."""
        assert [r.trace_id for r, _ in runs.workflow_runs("billing", T0, T0 + 3600)] == ["tx"]
        assert runs.workflow_runs("nope", T0, T0 + 3600) == []
        old = runs.workflow_runs("support", T0 - 7200, T0)
        assert [r.trace_id for r, _ in old] == ["old"]


class TestRunPath:
    def test_steps_are_costed_with_what_ran_under_them(self, runs: Store) -> None:
        """A LangGraph run: every node execution in order, each with the cost and tokens of
        the model calls under it; decisions with their condition."""
        got = runs.workflow_run("support", "tc")
        assert got is not None
        assert [s.node for s in got.steps] == ["fetch", "classify", "answer", "classify", "answer"]
        answers = [s for s in got.steps if s.node == "answer"]
        assert [s.cost_usd for s in answers] == [pytest.approx(0.01), pytest.approx(0.03)]
        assert [s.total_tokens for s in answers] == [300, 700]
        assert got.steps[0].cost_usd is None  # nothing priced ran under fetch
        assert [(d.source, d.target, d.condition) for d in got.decisions] == [
            ("classify", "answer", "intent"), ("answer", "classify", "intent"),
            ("classify", "answer", "intent"), ("answer", "__end__", "intent"),
        ]  # fmt: skip
        assert got.run.path == ("fetch", "classify", "answer", "classify", "answer", "__end__")
        assert not got.truncated

    def test_failed_step_carries_its_error(self, runs: Store) -> None:
        """The refund step failed: its status and error type are on the step."""
        got = runs.workflow_run("support", "ta")
        assert got is not None
        refund = next(s for s in got.steps if s.node == "refund")
        assert (refund.status, refund.error_type) == ("error", "RuntimeError")
        assert refund.latency_ms == pytest.approx(2000.0)

    def test_unknown_trace_or_other_workflow_is_none(self, runs: Store) -> None:
        """A trace that is not stored, or holds none of this workflow's decisions: None."""
        assert runs.workflow_run("support", "missing") is None
        assert runs.workflow_run("support", "ty") is None
        assert runs.workflow_run("support", "tx") is None

    def test_node_samples(self, runs: Store) -> None:
        """The latest runs' steps grouped by node, each costed (what the node ranking sums)."""
        samples, n = runs.workflow_node_samples("support", T0, T0 + 3600, runs=2)
        assert n == 2  # tc and tb
        assert sorted(samples) == ["answer", "classify", "fetch"]
        assert sum(s.cost_usd or 0 for s in samples["answer"]) == pytest.approx(0.041)
        assert len(samples["classify"]) == 3


class TestIndex:
    def test_the_listing_reads_the_branch_span_index(self, runs: Store) -> None:
        """Among 3,000 other spans of the window, the runs listing is an index range over
        branch spans (the partial index), not a scan of the window's spans."""
        from llmpulse.store.queries import workflows

        runs.write(spans=[make_span(T0 + i * 1.0) for i in range(3000)])
        with runs._write_tx() as conn:
            conn.execute(text("ANALYZE"))
        with runs._read("plan") as conn:
            shape = workflows.workflow_shape(conn, "support")
            assert shape.branch_names == ("support:answer", "support:classify", "support:refund")
            captured: list[str] = []
            real = conn.execute

            def spy(statement: Any, *args: Any, **kwargs: Any) -> Any:
                captured.append(
                    str(statement.compile(conn, compile_kwargs={"literal_binds": True}))
                )
                return real(statement, *args, **kwargs)

            conn.execute = spy  # type: ignore[method-assign]
            workflows.run_keys(conn, shape, T0, T0 + 3600, None, 10)
            conn.execute = real  # type: ignore[method-assign]
            if conn.dialect.name == "sqlite":
                plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + captured[0]).fetchall()
            else:
                plan = conn.exec_driver_sql("EXPLAIN " + captured[0]).fetchall()
        assert "ix_spans_branch_name_start_time" in " ".join(str(r) for r in plan)


class TestWorkflowQueries:
    def test_list_shares_and_ranking(self, runs: Store) -> None:
        """Workflows busiest first; each route's share per bucket; nodes ranked with p95 from
        the rollups and the cost of what ran under them from the sampled runs."""
        from llmpulse.flow import branch_shares, list_workflows, node_ranking

        listed = list_workflows(runs, T0, T0 + 3600)
        assert [(w.name, w.decisions, w.decision_points, w.nodes) for w in listed] == [
            ("support", 8, 3, 4),  # classify, answer, refund and __end__ (fetch decides nothing)
            ("billing", 1, 1, 2),
        ]
        shares = branch_shares(runs, "support", T0, T0 + 3600, 60)
        assert shares.buckets[0] == T0 and len(shares.buckets) == 60
        by_route = {(r.source, r.target): r for r in shares.routes}
        classify = [by_route[("classify", t)] for t in ("answer", "refund")]
        # T0+100: classify -> refund; T0+200: -> answer; T0+300: -> answer twice (a loop).
        assert classify[1].counts[1] == 1 and classify[1].shares[1] == 1.0
        assert classify[0].counts[3] == 1 and classify[0].shares[5] == 1.0
        assert classify[0].counts[5] == 2 and classify[0].shares[0] is None
        ranked, n_runs = node_ranking(runs, "support", T0, T0 + 3600)
        nodes = {r.name: r for r in ranked}
        assert n_runs == 3 and "__end__" not in nodes
        assert nodes["answer"].calls == 3 and nodes["answer"].sampled_calls == 3
        assert nodes["answer"].sampled_cost_usd == pytest.approx(0.041)
        assert nodes["refund"].errors == 1 and nodes["refund"].cost_per_call_usd == pytest.approx(
            0.02
        )
        with pytest.raises(ValueError, match="'nope'"):
            branch_shares(runs, "nope", T0, T0 + 3600, 60)


class TestRunPages:
    def test_pages_match_the_runs_ordered_by_their_last_decision(self, store: Store) -> None:
        """200 runs whose decisions interleave across three decision points, some sharing one
        instant, some looping: every page size walks them newest first by (last decision in
        the window, trace id), each once, also with a window that cuts runs in two."""
        import random

        rng = random.Random(4)
        spans: list[Span] = []
        last: dict[str, list[float]] = {}
        for i in range(200):
            trace = f"r{i:03d}"
            t = T0 + rng.choice([rng.uniform(0, 3000), 1500.0])  # 1 in 2 at one instant
            for k in range(rng.randint(1, 4)):
                at = t + k * rng.choice([0.0, 7.5, 30.0])
                source = rng.choice(["classify", "answer", "refund"])
                spans.append(decide(trace, f"{trace}-{k}", at, None, source, "x"))  # type: ignore[arg-type]
                last.setdefault(trace, []).append(at)
        store.write(spans=spans)
        for lo, hi in ((T0, T0 + 3600), (T0 + 1000, T0 + 1510)):
            keys = {tr: max(t for t in ts if lo <= t < hi) for tr, ts in last.items()
                    if any(lo <= t < hi for t in ts)}  # fmt: skip
            expected = sorted(keys, key=lambda tr: (keys[tr], tr), reverse=True)
            for size in (1, 7, 50, 500):
                seen: list[str] = []
                after = None
                while page := store.workflow_runs("support", lo, hi, after=after, limit=size):
                    assert len(page) <= size
                    seen += [r.trace_id for r, _ in page]
                    after = page[-1][1]
                    assert after == (keys[page[-1][0].trace_id], page[-1][0].trace_id)
                assert seen == expected, (lo, hi, size)


class TestLongRuns:
    def test_a_run_longer_than_the_bounds_is_cut_and_says_so(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A run of 60 loops: the list shows its first MAX_PATH nodes, its own page its first
        MAX_RUN_SPANS steps and decisions, both flagged as cut."""
        from llmpulse.store.queries import workflows

        monkeypatch.setattr(workflows, "MAX_PATH", 10)
        monkeypatch.setattr(workflows, "MAX_RUN_SPANS", 50)
        spans = [chain("tl", "tl-root", "support", T0, 60_000.0, None)]
        for i in range(60):
            node = chain("tl", f"tl-n{i}", "classify", T0 + i, 500.0, "tl-root")
            spans += [
                node,
                decide("tl", f"tl-d{i}", T0 + i + 0.6, "tl-root", "classify", "classify"),
            ]
        store.write(spans=spans)
        [(run, _)] = store.workflow_runs("support", T0, T0 + 3600)
        assert run.path_truncated and run.path == ("classify",) * 10
        got = store.workflow_run("support", "tl")
        assert got is not None and got.truncated and got.run.path_truncated
        assert len(got.steps) + len(got.decisions) == 50


def _span_totals(store: Store, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """The definition of a run's totals, grouped from its spans (what the runs read before the
    ``traces`` table): first start, last end, spans, errors, tokens and cost per trace, with
    its earliest root's name, status, error type, start and end (``None`` without a root)."""
    params = {"ids": ids}
    grouped = text(
        "SELECT trace_id, min(start_time), max(end_time), count(*),"
        " sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END), coalesce(sum(input_tokens), 0),"
        " coalesce(sum(output_tokens), 0), coalesce(sum(total_tokens), 0), sum(cost_usd)"
        " FROM spans WHERE trace_id IN :ids GROUP BY trace_id"
    ).bindparams(bindparam("ids", expanding=True))
    roots = text(
        "SELECT trace_id, name, status, error_type, start_time, end_time FROM spans"
        " WHERE trace_id IN :ids AND parent_id IS NULL ORDER BY start_time DESC, id DESC"
    ).bindparams(bindparam("ids", expanding=True))
    with store._read("test") as conn:
        root = {r[0]: r[1:] for r in conn.execute(roots, params)}  # the earliest wins
        return {r[0]: (*r[1:], root.get(r[0])) for r in conn.execute(grouped, params)}


def _expected(totals: tuple[Any, ...]) -> dict[str, Any]:
    first, last, spans, errors, inp, out, tot, cost, root = totals
    name, status, error_type, start, end = root or (None, None, None, first, last)
    outcome = "unknown" if root is None else ("error" if status == "error" else "ok")
    return {
        "name": name, "start_time": start, "end_time": end, "outcome": outcome,
        "error_type": error_type, "spans": spans, "errors": errors, "input_tokens": inp,
        "output_tokens": out, "total_tokens": tot, "cost_usd": cost,
    }  # fmt: skip


class TestRunTotals:
    def test_every_field_is_what_grouping_the_spans_says(self, store: Store) -> None:
        """60 runs written as an exporter sends them (children before their parent, in
        shuffled batches, one batch twice): every run's totals on every page, and on its own
        page, equal the spans grouped, field by field. The counts, tokens and times come from
        the ``traces`` rows; the cost stays a sum of the spans, which ``tf`` shows: its row
        adds 0.1 and a later batch's 0.2 + 0.3 (0.6), SUM() over its spans says
        0.6000000000000001, and the run says what the spans say."""
        import dataclasses
        import random

        rng = random.Random(7)
        spans: list[Span] = []
        for i in range(60):
            run = plain_run(f"r{i:02d}", T0 + 30 * i, rng.choice(["answer", "refund"]),
                            rng.random() < 0.3, round(rng.random() / 100, 6))  # fmt: skip
            extra = [
                llm(f"r{i:02d}", f"r{i:02d}-x{k}", T0 + 30 * i + 0.7 + k, f"r{i:02d}-c",
                    rng.choice([round(rng.random() / 1000, 7), 1 / 3]), rng.randint(30, 900))
                for k in range(rng.randint(0, 4))
            ]  # fmt: skip
            if i % 7 == 3:  # a run without prices
                run = [dataclasses.replace(s, cost_usd=None) for s in run + extra]
                extra = []
            if i % 11 == 5:  # a run still going: its root not stored yet
                run = run[1:]
            spans += sorted(run + extra, key=lambda s: s.end_time)  # as they end
        batches = [spans[j : j + 37] for j in range(0, len(spans), 37)]
        rng.shuffle(batches)
        batches.insert(3, batches[1])  # a batch sent again
        first, later = plain_run("tf", T0 + 1900, "answer", False, 0.0), []
        for k, cost in enumerate((0.1, 0.2, 0.3)):
            (first if k == 0 else later).append(
                llm("tf", f"tf-p{k}", T0 + 1900.6 + k / 10, "tf-c", cost, 100)
            )
        for batch in [*batches[:4], first, *batches[4:], later]:
            store.write(spans=batch)

        with store._read("test") as conn:
            row = conn.execute(text("SELECT cost_usd FROM traces WHERE trace_id = 'tf'")).scalar()
        want = _span_totals(store, ["tf"])["tf"]
        assert (row, want[7]) == (0.6, 0.6000000000000001)  # the row cannot give the cost

        listed: list[WorkflowRun] = []
        after = None
        while page := store.workflow_runs("support", T0, T0 + 3600, after=after, limit=9):
            ids = [r.trace_id for r, _ in page]
            truth = _span_totals(store, ids)
            for run, _ in page:
                for key, value in _expected(truth[run.trace_id]).items():
                    assert getattr(run, key) == value, (run.trace_id, key)
            listed += [r for r, _ in page]
            after = page[-1][1]
        assert len(listed) == 61
        assert {r.outcome for r in listed} == {"ok", "error", "unknown"}
        assert any(r.cost_usd is None for r in listed) and any(r.errors > 1 for r in listed)
        for run in listed:
            got = store.workflow_run("support", run.trace_id)
            assert got is not None and got.run == run
