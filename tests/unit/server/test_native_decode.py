"""The native ingest fast path gives exactly pydantic's records, or declines and lets pydantic
answer: never a record pydantic would refuse, never a value pydantic would convert otherwise."""

from __future__ import annotations

import gzip
import json
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmpulse.server.native_decode import Decoder
from llmpulse.server.routers.ingest import (
    _DECODER,
    EventIn,
    IngestBatch,
    MetricPointIn,
    RunIn,
    SpanIn,
    _records,
)
from tests.unit.server.test_ingest import batch, span


def pydantic_records(body: bytes) -> Any:
    """What the route builds without the fast path, or the ValidationError it answers with."""
    try:
        return _records(IngestBatch.model_validate_json(body))
    except ValidationError as exc:
        return exc


def check(body: bytes) -> Any:
    """The fast path's answer, after checking it against pydantic's."""
    fast = _DECODER.decode(body)
    slow = pydantic_records(body)
    if fast is not None:
        assert not isinstance(slow, ValidationError), f"accepted what pydantic refuses: {slow}"
        # repr: 1 and 1.0 compare equal but print apart, and NaN is not equal to itself.
        assert repr(fast) == repr(slow)
    return fast


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()


class TestSameRecords:
    def test_sdk_batch_takes_the_fast_path(self) -> None:
        """The batch the SDK sends (spans with events, a metric point, a run) is decoded here."""
        records = check(encode(batch(20)))
        assert records is not None
        spans, points, runs = records
        assert (len(spans), len(points), len(runs)) == (20, 1, 1)
        assert spans[0].events[0].name == "retry"

    def test_minimal_and_full_records(self) -> None:
        minimal = {"trace_id": "t", "span_id": "s", "name": "n", "start_time": 1, "end_time": 2}
        full = span(1, status="error", error_type="E", error_message="m", prompt_version="v",
                    total_tokens=1100, cache_read_tokens=0, cache_write_tokens=3,
                    reasoning_tokens=4, cost_usd=0.25, ttft_ms=12, session_id="s", user_id="u",
                    service="svc", input="hi", output="ho")  # fmt: skip
        run = {"run_id": "r", "name": "n", "started_at": 1, "status": "finished", "ended_at": 2,
               "params": {"lr": [1, 2]}, "metrics": {"acc": 1, "f1": 0.5}, "tags": {"a": "b"},
               "experiment": None, "model": "m", "kind": "benchmark"}  # fmt: skip
        point = {"name": "loss", "value": 3, "timestamp": 1.5, "labels": {"a": "b"}, "step": 0}
        for document in (
            {"spans": [minimal, full]},
            {"runs": [run]},
            {"metric_points": [point]},
            {},
            {"spans": [], "metric_points": [], "runs": []},
        ):
            assert check(encode(document)) is not None, document

    def test_integers_become_floats_as_pydantic_makes_them(self) -> None:
        spans, _, runs = check(encode({
            "spans": [span(0, start_time=5, end_time=6, ttft_ms=0, cost_usd=0)],
            "runs": [{"run_id": "r", "name": "n", "started_at": 7, "metrics": {"acc": 1}}],
        }))  # fmt: skip
        assert type(spans[0].start_time) is float and type(runs[0].started_at) is float
        assert type(runs[0].metrics["acc"]) is float

    def test_attributes_keep_what_pydantic_keeps(self) -> None:
        """Any JSON in attributes, including NaN and huge numbers pydantic lets through."""
        body = b'{"spans":[{"trace_id":"t","span_id":"s","name":"n","start_time":1,"end_time":2,'
        body += b'"attributes":{"nan":NaN,"big":1e999,"deep":{"a":[1,{"b":null}]},"x":1,"x":2}}]}'
        spans, _, _ = check(body)
        assert spans[0].attributes["x"] == 2 and spans[0].attributes["deep"]["a"][1] == {"b": None}

    def test_spans_built_by_position_equal_keyword_built_ones(self) -> None:
        """The positional builder gives the record Span(**fields) gives, defaults included,
        and a fresh attributes dict and events list to each span that sent none."""
        from llmpulse.schema import Span
        from llmpulse.server.native_decode import _builder

        build = _builder(Span)
        least = {"trace_id": "t", "span_id": "s", "name": "n", "start_time": 1.0, "end_time": 2.0}
        full = {**span(1), "attributes": {"a": 1}, "events": []}
        for fields in (least, full):
            assert build(dict(fields)) == Span(**fields)
        one, two = build(dict(least)), build(dict(least))
        assert one.attributes == {} and one.events == []
        assert one.attributes is not two.attributes and one.events is not two.events


class TestDeclines:
    @pytest.mark.parametrize(
        "over",
        [
            {"start_time": True},  # a bool is not a number in strict mode
            {"input_tokens": 1.0},  # a float is not an int
            {"input_tokens": -1},
            {"input_tokens": 2**32},  # past MAX_COUNT
            {"cost_usd": -0.5},
            {"kind": ""},
            {"kind": "k" * 33},
            {"trace_id": "t" * 65},
            {"status": "OK"},
            {"status": None},
            {"attributes": None},
            {"attributes": []},
            {"events": [{"name": "e"}]},
            {"events": [{"name": "e", "time": 1, "extra": 1}]},
            {"events": {}},
            {"unknown": 1},
            {"name": 3},
            {"parent_id": 5},
            {"start_time": "1"},
        ],
    )
    def test_what_pydantic_refuses(self, over: dict[str, Any]) -> None:
        body = encode({"spans": [span(0), span(1, **over)]})
        assert _DECODER.decode(body) is None
        assert isinstance(pydantic_records(body), ValidationError)

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"[]",
            b'{"spans": {}}',
            b'{"spans": [1]}',
            b'{"other": []}',
            b'{"spans": [{"trace_id": "t"}]}',
            b'{"spans":[{"trace_id":"t","span_id":"s","name":"n","start_time":1e999,"end_time":1}]}',
            b'{"spans":[{"trace_id":"t","span_id":"s","name":"n","start_time":NaN,"end_time":1}]}',
            b'{"spans":[{"trace_id":"t","span_id":"s","name":"n","start_time":'
            + b"9" * 400
            + b',"end_time":1}]}',
            b'{"spans":[{"trace_id":"\\ud800","span_id":"s","name":"n","start_time":1,'
            b'"end_time":1}]}',
            '{"spans": []}'.encode("utf-16"),
            b"\xef\xbb\xbf{}",
            b'{"metric_points":[{"name":"m","value":1,"timestamp":1,"labels":{"a":1}}]}',
            b'{"runs":[{"run_id":"r","name":"n","started_at":1,"metrics":{"a":"1"}}]}',
            b'{"runs":[{"run_id":"r","name":"n","started_at":1,"status":"done"}]}',
        ],
    )
    def test_malformed_bodies(self, body: bytes) -> None:
        """Each is answered by pydantic (400/422 with its wording); the fast path stays out."""
        assert _DECODER.decode(body) is None
        assert isinstance(pydantic_records(body), ValidationError)

    def test_a_valid_surrogate_pair_takes_pydantic_path_and_is_accepted(self) -> None:
        body = encode({"spans": [span(0, input="\U0001f600")]})  # json.dumps escapes as a pair
        assert b"\\ud83d" in body
        assert _DECODER.decode(body) is None
        assert pydantic_records(body)[0][0].input == "\U0001f600"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
_field_values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2**33), st.sampled_from([0.0, 1.5, -2.0, 1e300]),
    st.sampled_from(["", "ok", "error", "x" * 70, "span"]), st.just({}), st.just([]),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2), _json_values,
    st.lists(st.fixed_dictionaries({"name": st.sampled_from(["", "e"]),
                                    "time": st.sampled_from([1, 1.5, "1"])}), max_size=2),
)  # fmt: skip
_span_keys = st.sampled_from([*SpanIn.model_fields, "bogus"])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(changes=st.dictionaries(_span_keys, _field_values, max_size=4), drop=st.booleans())
def test_any_mutation_of_a_span_is_pydantics_answer_or_declined(
    changes: dict[str, Any], drop: bool
) -> None:
    """Whatever a field holds, the fast path agrees with pydantic or leaves it to pydantic."""
    node = span(0) | changes
    if drop:
        node.pop("name", None)
    check(encode({"spans": [node]}))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    point=st.dictionaries(
        st.sampled_from([*MetricPointIn.model_fields, "x"]), _field_values, max_size=6
    ),
    run=st.dictionaries(st.sampled_from([*RunIn.model_fields, "x"]), _field_values, max_size=8),
)
def test_any_point_or_run_is_pydantics_answer_or_declined(
    point: dict[str, Any], run: dict[str, Any]
) -> None:
    check(encode({"metric_points": [point]}))
    check(encode({"runs": [run]}))


class TestBuiltFromTheModels:
    def test_an_unknown_field_type_refuses_to_build(self) -> None:
        """A field this path cannot check makes the decoder fail at import, not check less."""

        class Odd(EventIn):
            when: list[int] = Field(default_factory=list)

        with pytest.raises(TypeError, match="unknown to the fast path"):
            Decoder(IngestBatch, SpanIn, Odd, MetricPointIn, RunIn)

    def test_a_list_other_than_events_refuses_to_build(self) -> None:
        class Tagged(SpanIn):
            tags: list[str] = Field(default_factory=list)

        with pytest.raises(TypeError, match="unknown to the fast path"):
            Decoder(IngestBatch, Tagged, EventIn, MetricPointIn, RunIn)

    def test_a_different_default_refuses_to_build(self) -> None:
        class Other(SpanIn):
            kind: str = Field(default="llm", min_length=1, max_length=32)

        with pytest.raises(TypeError, match="default differs"):
            Decoder(IngestBatch, Other, EventIn, MetricPointIn, RunIn)

    def test_a_lax_model_refuses_to_build(self) -> None:
        class Lax(BaseModel):
            model_config = ConfigDict(extra="ignore")
            name: str
            time: float
            attributes: dict[str, Any] = Field(default_factory=dict)

        with pytest.raises(TypeError, match="extra='forbid'"):
            Decoder(IngestBatch, SpanIn, Lax, MetricPointIn, RunIn)

    def test_literal_choices_come_from_the_model(self) -> None:
        class Statuses(SpanIn):
            status: Literal["ok", "error", "unset"] = "ok"

        decoder = Decoder(IngestBatch, Statuses, EventIn, MetricPointIn, RunIn)
        records = decoder.decode(encode({"spans": [span(0, status="unset")]}))
        assert records is not None and records[0][0].status == "unset"


def test_the_route_answers_the_same_errors(client: Any) -> None:
    """Through the route: a refused batch gets pydantic's problem, gzip or not."""
    body = encode({"spans": [span(0), span(1, input_tokens=1.5)]})
    for data, headers in (
        (body, {"Content-Type": "application/json"}),
        (gzip.compress(body), {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
    ):
        r = client.post("/api/v1/ingest", content=data, headers=headers)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "spans[1].input_tokens"
