"""One bad value never drops a call: it is repaired on the export thread and counted.

Before, a NaN or infinite attribute (also inside a list), a lone surrogate in any text, or an
infinite cost made the store refuse the whole span, so its tokens, cost and latency vanished
from the rollups (counted only as ``rejected_by_store``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

import llmpulse
from llmpulse.store import Store
from tests.faults._accounting import assert_accounting

NAN, INF = math.nan, math.inf

# (name, record_llm_call fields, repairs expected by reason)
CALLS: list[tuple[str, dict[str, Any], dict[str, int]]] = [
    ("nan attribute", {"attributes": {"score": NAN}}, {"non_finite_number": 1}),
    ("inf attribute", {"attributes": {"a": INF, "b": -INF}}, {"non_finite_number": 2}),
    ("nan in a list", {"attributes": {"scores": [1.0, NAN, -INF]}}, {"non_finite_number": 2}),
    ("surrogate prompt", {"input": "hi \ud800 there", "output": "ok \udfff"}, {"invalid_text": 2}),
    ("surrogate attribute", {"attributes": {"k\udc00": "v\ud801"}}, {"invalid_text": 2}),
    ("surrogate session", {"session_id": "s-\udc80", "user_id": "u-\ud834"}, {"invalid_text": 2}),
    ("surrogate error", {"status": "error", "error_message": "boom \udca0"}, {"invalid_text": 1}),
    ("surrogate in a list", {"attributes": {"tags": ["a", "b\ud800"]}}, {"invalid_text": 1}),
    ("infinite cost", {"cost_usd": INF}, {"non_finite_number": 1}),
    ("nan cost", {"cost_usd": NAN}, {"non_finite_number": 1}),
    ("nan ttft", {"ttft_ms": NAN}, {"non_finite_number": 1}),
    ("negative cost", {"cost_usd": -0.5}, {"negative_number": 1}),
]  # fmt: skip

# The kinds of bad value, each amid good calls in one batch (the first test covers every case).
MIXED = [c for c in CALLS if c[0] in ("nan attribute", "surrogate prompt", "infinite cost")]


def _expected(cases: list[tuple[str, dict[str, Any], dict[str, int]]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for _, _, repairs in cases:
        for reason, count in repairs.items():
            total[reason] = total.get(reason, 0) + count
    return total


class TestBadValuesInLlmCalls:
    def test_every_call_is_stored_with_its_numbers(self, database_url: str, store: Store) -> None:
        """Each bad call is stored, its tokens and latency rolled up, each repair counted."""
        client = llmpulse.init(database_url, instrument=())
        for name, fields, _ in CALLS:
            llmpulse.record_llm_call(
                "gpt-4o-mini", input_tokens=100, output_tokens=10, latency_ms=250.0,
                name=name, **fields,
            )  # fmt: skip
        stats = assert_accounting(client, store, expect_recorded=len(CALLS))
        assert stats.dropped_total == 0
        assert {r: n for r, n in stats.repaired.items() if n} == _expected(CALLS)

        spans = {s.name: s for s in store.list_spans(0, 4e9, limit=100)}
        assert set(spans) == {name for name, _, _ in CALLS}
        assert spans["nan attribute"].attributes == {"score": None}
        assert spans["inf attribute"].attributes == {"a": None, "b": None}
        assert spans["nan in a list"].attributes == {"scores": [1.0, None, None]}
        assert spans["surrogate prompt"].input == "hi \ufffd there"
        assert spans["surrogate attribute"].attributes == {"k\ufffd": "v\ufffd"}
        assert spans["surrogate session"].session_id == "s-\ufffd"
        assert spans["surrogate error"].error_message == "boom \ufffd"
        assert spans["infinite cost"].cost_usd is None
        assert spans["nan ttft"].ttft_ms is None
        for span in spans.values():
            assert span.input_tokens == 100 and span.latency_ms == pytest.approx(250.0)

        (totals,) = store.span_stats(0, 4e9)
        assert totals.calls == len(CALLS)
        assert totals.input_tokens == 100 * len(CALLS)
        assert totals.output_tokens == 10 * len(CALLS)

    @pytest.mark.parametrize(("name", "fields", "repairs"), MIXED, ids=[c[0] for c in MIXED])
    def test_one_bad_call_in_a_batch_of_good_ones(
        self, database_url: str, store: Store, name: str, fields: dict[str, Any],
        repairs: dict[str, int],
    ) -> None:  # fmt: skip
        """A bad call amid good ones: the whole batch is stored, one repair counted."""
        client = llmpulse.init(database_url, instrument=())
        for i in range(20):
            extra = fields if i == 7 else {}
            llmpulse.record_llm_call("gpt-4o-mini", input_tokens=5, output_tokens=1, **extra)
        stats = assert_accounting(client, store, expect_recorded=20)
        assert stats.dropped_total == 0
        assert {r: n for r, n in stats.repaired.items() if n} == repairs
        ((totals),) = store.span_stats(0, 4e9)
        assert totals.calls == 20 and totals.input_tokens == 100


class TestBadValuesInSpans:
    def test_spans_events_and_usage(self, database_url: str, store: Store) -> None:
        """Span attributes, event attributes and names, usage and names: repaired, stored."""
        client = llmpulse.init(database_url, instrument=())
        with llmpulse.span("pipeline\udc00", kind="chain", ratio=NAN) as outer:
            outer.set_attribute("limits", [INF, 2.0])
            outer.add_event("retry\ud800", delay=-INF, why="rate \udfff")
            with llmpulse.span("answer", kind="llm") as inner:
                inner.set_model("gpt-4o-mini")
                inner.set_usage(40, 4, cost_usd=NAN)
                inner.set_input("prompt \ud800")
                inner.set_session("sess\udc01")
            with llmpulse.span("tool", kind="tool") as tool:
                tool.set_status_error(ValueError("bad \udc99 value"))
        stats = assert_accounting(client, store, expect_recorded=3)
        assert stats.dropped_total == 0
        assert {r: n for r, n in stats.repaired.items() if n} == {
            "non_finite_number": 4,  # ratio, limits[0], the event's delay, the cost
            "invalid_text": 6,  # span name, event name, event text, prompt, session, error
        }
        spans = {s.kind: s for s in store.list_spans(0, 4e9, limit=10)}
        chain, llm, tool = spans["chain"], spans["llm"], spans["tool"]
        assert chain.name == "pipeline\ufffd"
        assert chain.attributes == {"ratio": None, "limits": [None, 2.0]}
        assert chain.events[0].name == "retry\ufffd"
        assert chain.events[0].attributes == {"delay": None, "why": "rate \ufffd"}
        assert llm.input_tokens == 40 and llm.cost_usd is None and llm.input == "prompt \ufffd"
        assert llm.session_id == "sess\ufffd"
        assert tool.status == "error" and tool.error_message == "bad \ufffd value"
        totals = {t.group["kind"]: t for t in store.span_stats(0, 4e9, group_by=("kind",))}
        assert totals["llm"].input_tokens == 40 and totals["tool"].errors == 1
