"""Llm calls converted straight to store rows (the embedded exporter's fast path).

The converter builds the store's (row, rollup key) pair itself only when the store would have
nothing to check or coerce; the pair must then equal ``span_row`` of the ``Span`` the same call
gives in the ordinary mode, field for field. Anything unusual stays a ``Span`` and takes the
store's careful path, exactly as before.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

import llmpulse
from llmpulse.pricing import PriceTable
from llmpulse.schema import Span
from llmpulse.sdk import _convert
from llmpulse.sdk._convert import Converter
from llmpulse.store import Store
from llmpulse.store._validate import span_row
from llmpulse.testing import InMemoryExporter

# fmt: off
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("plain", {"input_tokens": 120, "output_tokens": 30, "latency_ms": 812.5}),
    ("no tokens, no latency", {}),
    ("int latency", {"latency_ms": 40}),
    (
        "every field",
        {
            "input_tokens": 900, "output_tokens": 300, "latency_ms": 1500.0,
            "provider": "openai", "prompt_version": "answer-v3", "cache_read_tokens": 200,
            "cache_write_tokens": 50, "reasoning_tokens": 100, "ttft_ms": 210.0,
            "status": "error", "error_type": "RateLimitError", "error_message": "slow down",
            "input": "what is my order status?", "output": "It shipped.", "session_id": "s-1",
            "user_id": "u-7", "name": "answer",
            "attributes": {"gen_ai.request.temperature": 0.2, "tags": ["a", "b"], "deep": {"x": 1}},
        },
    ),
    ("given cost", {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.25}),
    ("structured prompt", {"input": [{"role": "user", "content": "hi"}], "output": {"a": 1}}),
    ("long text (cut)", {"input": "x" * 50_000, "output": "é" * 20_000}),
    ("non-ASCII attribute", {"attributes": {"note": "naïve café ✓"}}),
    ("NUL in prompt", {"input": "a\x00b"}),
    ("NUL in name", {"name": "ans\x00wer"}),
    ("NUL in attribute", {"attributes": {"k": "a\x00b"}}),
    ("NaN attribute", {"attributes": {"score": math.nan}}),
    ("NaN ttft", {"ttft_ms": math.nan}),
    ("negative cost", {"cost_usd": -1.0}),
    ("huge count", {"input_tokens": 2**63, "output_tokens": 1}),
    ("gen_ai attribute fills a column", {"attributes": {"gen_ai.system": "anthropic"}}),
    ("string tokens (coerced)", {"input_tokens": "12"}),
    ("explicit times", {"start_time": 1_700_000_000.0, "end_time": 1_700_000_001.5}),
]
# fmt: on
MODELS = ["gpt-4o-mini", "unpriced-model-xyz", None]


@pytest.fixture
def queued() -> Iterator[Any]:
    """The client's queue, which the export thread never drains: what the hot path enqueues."""
    client = llmpulse.init(exporter=InMemoryExporter(), instrument=())
    client._batcher.wake_at = -1  # the export thread is started by the first record: never
    yield client._batcher.queue  # type: ignore[misc]


@pytest.fixture
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same trace and span ids for every conversion, so two conversions can be compared."""
    monkeypatch.setattr(_convert, "new_trace_id", lambda: 0x0123456789ABCDEF0123456789ABCDEF)
    monkeypatch.setattr(_convert, "new_span_id", lambda: 0x1122334455667788)


def _converters(**options: Any) -> tuple[Converter, Converter]:
    common: dict[str, Any] = {
        "prices": PriceTable.default(), "threshold": 1 << 64, "max_content_chars": 16384,
        **options,
    }  # fmt: skip
    return Converter(rows=True, **common), Converter(rows=False, **common)


def _record(queued: Any, model: str | None, fields: dict[str, Any]) -> Any:
    queued.clear()
    llmpulse.record_llm_call(model, **fields)
    assert len(queued) == 1
    return queued.pop()


class TestSpanRows:
    @pytest.mark.usefixtures("fixed_ids")
    @pytest.mark.parametrize("model", MODELS)
    @pytest.mark.parametrize(("case", "fields"), CALLS, ids=[c[0] for c in CALLS])
    def test_row_equals_span_row_of_the_span(
        self, queued: Any, case: str, fields: dict[str, Any], model: str | None
    ) -> None:
        """A direct row equals span_row of the Span; a call that needs checks stays a Span."""
        item = _record(queued, model, fields)
        fast, ordinary = _converters(service="checkout")
        as_row, as_span = fast(item), ordinary(item)
        assert type(as_span) is Span
        if type(as_row) is Span:
            assert as_row == as_span
            unusual = ("NUL", "NaN", "negative", "huge", "gen_ai", "string tokens", "explicit")
            assert case.startswith(unusual), f"{case}: expected a direct row"
        else:
            assert as_row == span_row(as_span)
            # Attributes are repaired while they are cleaned, so those rows may be direct;
            # a column that needs repair goes through the Span (repaired, then checked).
            assert not case.startswith(("NUL", "NaN", "negative", "huge")) or case.endswith(
                "attribute"
            )

    @pytest.mark.usefixtures("fixed_ids")
    def test_redaction_and_a_child_call(self, queued: Any) -> None:
        """Redacted text and a parent span give the same row both ways."""
        with llmpulse.span("pipeline", kind="chain"):
            item = _record(queued, "gpt-4o", {"input": "secret", "output": "secret", "name": "x"})
        fast, ordinary = _converters(redact=True)
        row, key = fast(item)
        assert (row, key) == span_row(ordinary(item))
        assert row[2] is not None and row[25] is None and row[26] is None  # parent; no text

    def test_each_call_gets_its_own_ids(self, queued: Any) -> None:
        """Without fixed ids, direct rows carry fresh span and trace ids like Spans do."""
        fast, _ = _converters()
        rows = [fast(_record(queued, "gpt-4o-mini", {}))[0] for _ in range(3)]
        assert len({r[0] for r in rows}) == 3 and len({r[1] for r in rows}) == 3
        assert all(len(r[0]) == 16 and len(r[1]) == 32 for r in rows)


def _plain(s: Any) -> None:
    pass


def _attributes(s: Any) -> None:
    s.set_attributes({"docs": 3, "score": 0.5, "tags": ["a", "b"], "note": "naïve ✓", "ok": True})


def _long_attribute(s: Any) -> None:
    s.set_attribute("blob", "x" * 40_000)


def _branch(s: Any) -> None:
    s.set_branch("human_review")


def _int_branch(s: Any) -> None:
    s.set_attribute("llmpulse.branch", 2)


def _error(s: Any) -> None:
    s.set_status_error(ValueError("bad ticket"))


def _event(s: Any) -> None:
    s.add_event("cache_miss", key="k")


def _model(s: Any) -> None:
    s.set_model("gpt-4o-mini")


def _genai(s: Any) -> None:
    s.set_attribute("gen_ai.request.model", "gpt-4o")


def _nan_attribute(s: Any) -> None:
    s.set_attribute("score", math.nan)


def _nul_attribute(s: Any) -> None:
    s.set_attribute("k", "a\x00b")


SPANS = [
    ("plain", "chain", _plain), ("attributes", "tool", _attributes),
    ("long attribute (cut)", "retriever", _long_attribute), ("branch", "branch", _branch),
    ("int branch (coerced)", "branch", _int_branch), ("error", "chain", _error),
    ("event", "chain", _event), ("llm columns", "llm", _model),
    ("gen_ai attribute", "chain", _genai), ("NaN attribute", "tool", _nan_attribute),
    ("NUL attribute", "tool", _nul_attribute), ("NUL in name\x00", "chain", _plain),
]  # fmt: skip
# Spans that need the store's checks or the converter's full path stay Spans. (A NaN or NUL
# attribute is repaired while the attributes are cleaned, so its span is a direct row.)
STAY_SPANS = {"int branch (coerced)", "event", "llm columns", "gen_ai attribute",
              "NUL in name\x00"}  # fmt: skip


class TestPlainSpanRows:
    @pytest.mark.parametrize(("name", "kind", "shape"), SPANS, ids=[s[0] for s in SPANS])
    def test_row_equals_span_row_of_the_span(
        self, queued: Any, name: str, kind: str, shape: Any
    ) -> None:
        """A chain, tool or branch span as a direct row equals span_row of its Span."""
        queued.clear()
        with llmpulse.span("outer", kind="chain"), llmpulse.span(name, kind=kind) as s:
            shape(s)
        handle = queued.popleft()  # the inner span ends first
        fast, ordinary = _converters(service="checkout")
        as_row, as_span = fast(handle), ordinary(handle)
        assert type(as_span) is Span
        if name in STAY_SPANS:
            assert as_row == as_span
        else:
            assert type(as_row) is tuple
            assert as_row == span_row(as_span)
            assert as_row[0][2] is not None  # the parent is kept

    def test_a_root_span_has_no_parent(self, queued: Any) -> None:
        """A span with no enclosing span: parent column NULL, same as the Span's row."""
        queued.clear()
        with llmpulse.span("root", kind="agent"):
            pass
        handle = queued.popleft()
        fast, ordinary = _converters()
        row, key = fast(handle)
        assert (row, key) == span_row(ordinary(handle))
        assert row[2] is None and key == ("agent", "root", "", "", "", "")


class TestSpanRowsStored:
    def test_direct_rows_and_spans_store_the_same(self, database_url: str) -> None:
        """Through the embedded exporter, usual and unusual calls are stored and rolled up."""
        llmpulse.init(database_url, instrument=())
        for case, fields in CALLS:
            llmpulse.record_llm_call("gpt-4o-mini", **{"name": case, **fields})
        assert llmpulse.flush(30)
        stats = llmpulse.get_client().stats()
        with Store.open(database_url) as store:
            spans = store.list_spans(0, 4e9, limit=1000)
            totals = store.span_stats(0, 4e9)
        # What the store cannot hold is repaired on the export thread and counted: no call lost.
        assert len(spans) == len(CALLS) == stats.exported
        assert stats.dropped_total == 0
        assert stats.repaired["non_finite_number"] == 2  # NaN attribute, NaN ttft
        assert stats.repaired["negative_number"] == 1
        assert stats.repaired["out_of_range"] == 2  # the input and the total count
        assert stats.repaired["invalid_text"] == 3  # NUL in prompt, name and attribute
        by_name = {s.name: s for s in spans}
        assert by_name["NaN attribute"].attributes == {"score": None}
        assert by_name["huge count"].input_tokens is None
        assert by_name["huge count"].output_tokens == 1
        assert by_name["answer"].cache_read_tokens == 200  # "every field" names itself
        assert by_name["answer"].attributes["deep"] == '{"x": 1}'  # nested: as JSON text
        assert by_name["ans\ufffdwer"].status == "ok"  # NUL replaced, as for any Span
        assert by_name["plain"].cost_usd is not None
        assert totals[0].calls == len(spans)  # rollups of exactly the stored rows
        assert totals[0].input_tokens == sum(s.input_tokens or 0 for s in spans)
        assert totals[0].errors == sum(s.status == "error" for s in spans)

    def test_direct_span_rows_are_stored_with_their_rollups(self, database_url: str) -> None:
        """Chain, tool and branch spans through the embedded exporter: stored, branch counted."""
        llmpulse.init(database_url, instrument=())
        with llmpulse.span("outer", kind="chain"):
            for name, kind, shape in SPANS:
                with llmpulse.span(name, kind=kind) as s:
                    shape(s)
        assert llmpulse.flush(30)
        stats = llmpulse.get_client().stats()
        with Store.open(database_url) as store:
            spans = store.list_spans(0, 4e9, limit=1000)
            branches = store.branch_counts(0, 4e9)
            totals = store.span_stats(0, 4e9, group_by=("kind",))
        assert stats.dropped_total == 0
        assert stats.repaired["non_finite_number"] == 1  # the NaN attribute, now null
        assert len(spans) == len(SPANS) + 1 == stats.exported  # and the outer span
        by_name = {s.name: s for s in spans}
        assert by_name["error"].status == "error" and by_name["error"].error_type == "ValueError"
        assert by_name["attributes"].attributes["tags"] == ["a", "b"]
        assert len(by_name["long attribute (cut)"].attributes["blob"]) < 40_000
        assert {(b.name, b.branch): b.count for b in branches} == {
            ("branch", "human_review"): 1, ("int branch (coerced)", "2"): 1,
        }  # fmt: skip
        assert sum(t.calls for t in totals) == len(spans)


class _Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize(
    "value",
    [
        0, -7, 2**70, 2.5, -0.0, 1e300, math.nan, math.inf, -math.inf, True, False, "é\n\"",
        {"a": [1, {"b": None}], "é": 2.5}, (1, "x"), {3, 1}, b"xyz", {"when": object}, [math.nan],
    ],
    ids=repr,
)  # fmt: skip
def test_stored_input_text_is_what_json_dumps_writes(value: Any) -> None:
    """An input or output is stored as ``json.dumps`` would write it (non-ASCII kept, what JSON
    cannot say as its repr), whichever shortcut the converter takes for a plain number."""
    import json

    expected = json.dumps(value, default=_convert._jsonable, ensure_ascii=False)
    assert _convert._to_json(value) == expected


def test_unencodable_input_text_falls_back_to_repr() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert _convert._to_json(cyclic) == "[[...]]"
    assert _convert._to_json([_Unprintable()]) == '["<unprintable _Unprintable>"]'
