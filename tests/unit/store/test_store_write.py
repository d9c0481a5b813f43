"""Writing batches: every field round-trips, one transaction per batch, poison costs one row."""

from __future__ import annotations

import enum

import numpy as np
import pytest

from llmpulse.errors import StoreError
from llmpulse.schema import MetricPoint, Run, Span, SpanEvent, SpanKind, SpanStatus
from llmpulse.store import Store, WriteResult
from tests.unit.store.conftest import T0, make_span


def _full_span() -> Span:
    return Span(
        trace_id="t-full",
        span_id="s-full",
        parent_id="s-parent",
        name="answer question",
        kind="llm",
        start_time=T0 + 1.25,
        end_time=T0 + 2.5,
        status="error",
        error_type="RateLimitError",
        error_message="429: slow down",
        model="gpt-4o",
        provider="openai",
        prompt_version="v7",
        input_tokens=1200,
        output_tokens=300,
        total_tokens=1500,
        cache_read_tokens=1000,
        cache_write_tokens=100,
        reasoning_tokens=50,
        cost_usd=0.0123,
        ttft_ms=180.5,
        session_id="sess-1",
        user_id="user-1",
        service="support-bot",
        input="Héllo, wörld ✓",
        output='Answer with\nnewlines and "quotes"',
        attributes={"gen_ai.request.temperature": 0.2, "nested": {"a": [1, 2, None]}, "flag": True},
        events=[SpanEvent("retry", T0 + 1.5, {"attempt": 1}), SpanEvent("fallback", T0 + 2.0)],
    )


class TestRoundTrip:
    def test_every_span_field(self, store: Store) -> None:
        """A span read back equals the span written, field by field."""
        span = _full_span()
        assert store.write(spans=[span]) == WriteResult(stored=1, spans=1)
        assert store.get_trace("t-full") == [span]
        assert store.get_span("s-full") == span

    def test_minimal_span(self, store: Store) -> None:
        """A span with only the required fields reads back with empty attributes and events."""
        span = Span(trace_id="t", span_id="s", name="step", start_time=T0, end_time=T0)
        store.write(spans=[span])
        assert store.get_trace("t") == [span]

    def test_metric_points(self, store: Store) -> None:
        """Metric points round-trip and filter by time, labels and run."""
        points = [
            MetricPoint("loss", 0.9, T0 + 1, {"split": "train"}, run_id="r1", step=1),
            MetricPoint("loss", 0.5, T0 + 2, {"split": "train"}, run_id="r1", step=2),
            MetricPoint("loss", 0.7, T0 + 3, {"split": "eval"}, run_id="r2", step=2),
            MetricPoint("gpu", 55.0, T0 + 3),
        ]
        assert store.write(points=points).points == 4
        assert store.metric_series("loss", T0, T0 + 10) == points[:3]
        assert store.metric_series("loss", T0, T0 + 10, labels={"split": "train"}) == points[:2]
        assert store.metric_series("loss", T0, T0 + 10, run_id="r2") == points[2:3]
        assert store.metric_series("loss", T0 + 2, T0 + 3) == points[1:2]
        assert store.metric_names(T0, T0 + 10) == ["gpu", "loss"]

    def test_runs_upsert_by_id(self, store: Store) -> None:
        """Writing a run again replaces its state; list_runs filters and orders by start."""
        run = Run(
            "r1", "bench", T0, kind="benchmark", experiment="exp", model="m", params={"lr": 0.1}
        )
        store.write(runs=[run, Run("r0", "older", T0 - 10)])
        done = Run("r1", "bench", T0, kind="benchmark", experiment="exp", model="m", status="finished",
                   ended_at=T0 + 60, params={"lr": 0.1}, metrics={"acc": 0.9}, tags={"git": "abc"})  # fmt: skip
        assert store.write(runs=[done]).runs == 1
        assert store.get_run("r1") == done
        assert store.get_run("missing") is None
        assert [r.run_id for r in store.list_runs()] == ["r0", "r1"]
        assert store.list_runs(kind="benchmark", experiment="exp", model="m") == [done]
        assert store.list_runs(since=T0 - 5) == [done]

    def test_same_run_twice_in_one_batch(self, store: Store) -> None:
        """The last state of a run in a batch wins."""
        store.write(runs=[Run("r", "a", T0), Run("r", "a", T0, status="finished")])
        assert store.get_run("r").status == "finished"  # type: ignore[union-attr]

    def test_empty_write(self, store: Store) -> None:
        """Writing nothing stores nothing and returns zero counts."""
        assert store.write() == WriteResult()

    def test_list_spans_filters_and_pages(self, store: Store) -> None:
        """list_spans returns the window's spans, newest first, by exact filters, with paging."""
        spans = [make_span(T0 + i, model="a" if i % 2 else "b") for i in range(10)]
        store.write(spans=spans)
        got = store.list_spans(T0, T0 + 100, model="a", limit=3)
        assert [s.start_time for s in got] == [T0 + 9, T0 + 7, T0 + 5]
        assert store.list_spans(T0, T0 + 100, model="a", limit=3, offset=3)[0].start_time == T0 + 3
        assert len(store.list_spans(T0 + 2, T0 + 4, newest_first=False)) == 2
        with pytest.raises(ValueError, match="cannot filter spans by 'colour'"):
            store.list_spans(T0, T0 + 1, colour="red")


class Colour(enum.Enum):
    RED = "red"


class TestPoison:
    @pytest.mark.parametrize(
        ("fields", "reason"),
        [
            ({"cost_usd": float("nan")}, "invalid cost_usd"),
            ({"cost_usd": -1.0}, "invalid cost_usd"),
            ({"input_tokens": "many"}, "invalid input_tokens"),
            ({"output_tokens": -3}, "invalid output_tokens"),
            ({"total_tokens": 2**70}, "invalid total_tokens"),
            ({"attributes": {"x": object()}}, "invalid attributes"),
            ({"attributes": {"x": float("inf")}}, "invalid attributes"),
            ({"attributes": ["not", "a", "dict"]}, "invalid attributes"),
            ({"status": "meh"}, "invalid status"),
            ({"span_id": ""}, "missing span_id"),
            ({"span_id": "x" * 65}, "invalid span_id"),
            ({"model": ["gpt"]}, "invalid model"),
            ({"ttft_ms": "fast"}, "invalid ttft_ms"),
            ({"events": ["not an event"]}, "invalid events"),
        ],
    )
    def test_bad_field_costs_one_row(self, sqlite_store: Store, fields: dict, reason: str) -> None:
        """A span with one bad field is rejected with a reason; the rest of the batch is stored."""
        good = [make_span(T0 + i) for i in range(3)]
        result = sqlite_store.write(spans=[good[0], make_span(T0 + 9, **fields), *good[1:]])
        assert (result.spans, result.rejected, result.reasons) == (3, 1, {reason: 1})
        assert sqlite_store.span_stats(T0, T0 + 60)[0].calls == 3

    def test_mixed_poison_batch(self, store: Store) -> None:
        """A batch with several poison rows stores exactly the good ones, with rollups to match."""
        spans = [make_span(T0 + i) for i in range(10)]
        spans[2] = make_span(T0 + 2, cost_usd=float("nan"))
        spans[5] = make_span(T0 + 5, input_tokens="12x")
        spans[7] = make_span(T0 + 7, attributes={"x": {1, 2}})
        result = store.write(spans=spans)
        assert (result.spans, result.rejected) == (7, 3)
        assert store.span_stats(T0, T0 + 60)[0].calls == 7 == len(store.list_spans(T0, T0 + 60))

    def test_bad_times(self, store: Store) -> None:
        """A start time that is not a finite number rejects the span."""
        bad = Span(trace_id="t", span_id="s", name="n", start_time=float("nan"), end_time=T0)
        assert store.write(spans=[bad, make_span()]).reasons == {"invalid start_time": 1}

    def test_not_a_span(self, store: Store) -> None:
        """Something that is not a Span is counted, not crashed on."""
        result = store.write(spans=[{"span_id": "x"}, make_span()])  # type: ignore[list-item]
        assert (result.spans, result.reasons) == (1, {"not a span": 1})

    def test_duplicate_span_id_in_database(self, store: Store) -> None:
        """A span already stored counts as stored (idempotent), not refused, and is not
        counted twice in the rollups."""
        first = make_span(T0)
        store.write(spans=[first])
        result = store.write(spans=[make_span(T0 + 1), first, make_span(T0 + 2)])
        assert (result.spans, result.duplicates, result.stored) == (2, 1, 3)
        assert (result.rejected, result.reasons) == (0, {})
        stats = store.span_stats(T0, T0 + 60)
        assert stats[0].calls == 3 and len(store.list_spans(T0, T0 + 60)) == 3

    def test_point_already_stored_by_point_id(self, store: Store) -> None:
        """A point whose point_id is stored counts as stored, not refused, and is not stored
        twice; points without a point_id are stored every time they are written."""
        keyed = [MetricPoint("loss", float(i), T0 + i, point_id=f"p{i}") for i in range(3)]
        plain = MetricPoint("loss", 7.0, T0)
        store.write(points=[*keyed[:2], plain])
        result = store.write(points=[*keyed, plain])
        assert (result.points, result.point_duplicates, result.stored) == (2, 2, 4)
        assert (result.rejected, result.reasons) == (0, {})
        series = store.metric_series("loss", T0 - 1, T0 + 60)
        assert sorted(p.value for p in series) == [0.0, 1.0, 2.0, 7.0, 7.0]
        assert {p.point_id for p in series} == {"p0", "p1", "p2", None}

    def test_duplicate_in_same_batch(self, store: Store) -> None:
        """Two spans with one id in a batch: the first is stored, the second refused."""
        a = make_span(T0)
        b = make_span(T0 + 1, span_id=a.span_id)
        result = store.write(spans=[a, b])
        assert (result.spans, result.rejected) == (1, 1)
        assert result.reasons == {"duplicate span_id in batch": 1}
        assert store.span_stats(T0, T0 + 60)[0].calls == 1

    def test_bad_point_and_run(self, store: Store) -> None:
        """Bad metric points and runs are counted per reason alongside good ones."""
        result = store.write(
            points=[
                MetricPoint("x", float("nan"), T0),
                MetricPoint("x", 1.0, T0),
                MetricPoint("", 1.0, T0),
            ],
            runs=[Run("", "r", T0), Run("r1", "r", T0, params={"bad": {1, 2}})],
        )
        assert result.points == 1 and result.runs == 0 and result.rejected == 4
        assert result.reasons == {
            "invalid metric value": 1,
            "missing metric name": 1,
            "missing run_id": 1,
            "invalid run params": 1,
        }


class TestCoercion:
    def test_lossless_coercions(self, store: Store) -> None:
        """Enums, numpy numbers, integral floats and int timestamps are stored as plain values."""
        span = Span(
            trace_id="t", span_id="s", name="n", start_time=int(T0), end_time=np.float64(T0 + 1),
            kind=SpanKind.TOOL, status=SpanStatus.ERROR, input_tokens=np.int64(5), output_tokens=7.0,
            cost_usd=np.float32(0.5), prompt_version=3, attributes={"colour": "red"},
        )  # fmt: skip
        assert store.write(spans=[span]).spans == 1
        got = store.get_span("s")
        assert got is not None
        assert (got.kind, got.status, got.input_tokens, got.output_tokens, got.prompt_version) == (
            "tool",
            "error",
            5,
            7,
            "3",
        )
        assert got.start_time == T0 and got.end_time == T0 + 1 and got.cost_usd == 0.5
        assert type(got.input_tokens) is int

    def test_nul_characters_replaced(self, store: Store) -> None:
        """NUL characters, which PostgreSQL cannot store, become U+FFFD on both backends."""
        span = make_span(input="a\x00b", attributes={"k": "v\x00"}, name="x\x00y")
        assert store.write(spans=[span]).spans == 1
        got = store.get_span(span.span_id)
        assert got is not None and got.input == "a\ufffdb" and got.name == "x\ufffdy"
        assert got.attributes == {"k": "v\ufffd"}

    def test_fast_and_careful_paths_agree(self) -> None:
        """The fast validation path builds exactly the row the careful path builds."""
        from llmpulse.store._validate import _careful_span_row, span_row
        from tests.unit.store.conftest import random_spans

        for span in [*random_spans(200, T0, T0 + 3600), _full_span(), make_span(parent_id="p")]:
            assert span_row(span) == _careful_span_row(span)

    def test_unencodable_text(self, store: Store) -> None:
        """Text the database cannot encode (a lone surrogate) is stored as U+FFFD, like NUL."""
        bad = make_span(output="bad \udc80", attributes={"k\ud800": "v\udfff"})
        result = store.write(spans=[bad, make_span()])
        assert result.spans == 2 and result.rejected == 0
        stored = store.get_span(bad.span_id)
        assert stored is not None and stored.output == "bad \ufffd"
        assert stored.attributes == {"k\ufffd": "v\ufffd"}


class TestTransactions:
    def test_failed_batch_stores_nothing(self, store: Store) -> None:
        """When the database fails mid-batch the whole batch rolls back and StoreError is raised."""
        store.write(spans=[make_span(T0)])
        store.close()
        # Dropping a table under the store makes the rollup upsert fail after the spans insert.
        import sqlalchemy as sa

        with store._engine.begin() as conn:  # noqa: SLF001 - the test breaks the schema on purpose
            conn.execute(sa.text("DROP TABLE rollups"))
        with pytest.raises(StoreError, match="write failed"):
            store.write(spans=[make_span(T0 + 1), make_span(T0 + 2)])
        assert len(store.list_spans(T0, T0 + 60)) == 1


class TestBulkInsert:
    @pytest.mark.parametrize("n", [1, 3, 512, 513, 1100])
    def test_batches_of_any_size(self, store: Store, n: int) -> None:
        """Every span of a batch is stored, whatever its size (SQLite inserts many rows per statement)."""
        spans = [make_span(T0 + i * 0.01) for i in range(n)]
        assert store.write(spans=spans).spans == n
        got = store.list_spans(T0, T0 + 60, limit=n + 1, newest_first=False)
        assert [s.span_id for s in got] == [s.span_id for s in spans]
        assert store.span_stats(T0, T0 + 60)[0].calls == n

    def test_poison_row_deep_in_a_large_batch(self, store: Store) -> None:
        """An already stored span deep in a large batch: the rest is stored, rollups count it once."""
        stored = make_span(T0)
        store.write(spans=[stored])
        spans = [make_span(T0 + 1 + i * 0.01) for i in range(1100)]
        spans[700] = stored
        result = store.write(spans=spans)
        assert (result.spans, result.duplicates, result.reasons) == (1099, 1, {})
        assert store.span_stats(T0, T0 + 60)[0].calls == 1100

    def test_low_variable_limit(self, sqlite_store: Store) -> None:
        """A SQLite built with few bound variables per statement gets smaller statements."""
        import sqlite3

        from sqlalchemy import event

        if not hasattr(sqlite3.Connection, "setlimit"):
            pytest.skip("sqlite3.Connection.setlimit needs Python 3.11")
        engine = sqlite_store._engine  # noqa: SLF001 - the test lowers the driver's limit

        @event.listens_for(engine, "connect")
        def _limit(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)

        engine.dispose()
        spans = [make_span(T0 + i * 0.01) for i in range(50)]
        points = [MetricPoint("loss", float(i), T0 + i) for i in range(40)]
        result = sqlite_store.write(spans=spans, points=points)
        assert (result.spans, result.points) == (50, 40)
        assert len(sqlite_store.metric_series("loss", T0, T0 + 60)) == 40

    def test_absent_values_are_null(self, sqlite_store: Store) -> None:
        """Columns a span leaves empty are stored as NULL on SQLite (not as a number or text)."""
        import sqlalchemy as sa

        span = make_span(provider=None, cost_usd=None, input_tokens=None)
        assert sqlite_store.write(spans=[span]).spans == 1
        with sqlite_store._engine.connect() as conn:  # noqa: SLF001 - checks the stored types
            types = conn.execute(
                sa.text(
                    "SELECT typeof(provider), typeof(cost_usd), typeof(input_tokens),"
                    " typeof(parent_id), typeof(output_tokens) FROM spans"
                )
            ).one()
        assert tuple(types) == ("null", "null", "null", "null", "integer")
