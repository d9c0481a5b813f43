"""OTLP/HTTP request bodies: protobuf and OTLP/JSON decode to the same spans; bad ones fail."""

from __future__ import annotations

import base64
import json

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from llmpulse.pricing import PriceTable
from llmpulse.server.otlp import OtlpDecodeError, decode_json, decode_protobuf
from tests.unit.server.otlp_payloads import TRACE, as_json, json_body, request, span

PRICES = PriceTable.default()


def sample():  # type: ignore[no-untyped-def]
    return request(
        span("agent", span_id=1, attributes={"openinference.span.kind": "AGENT"}),
        span("chat", span_id=2, parent=1, attributes={
            "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 3_000_000_000,
            "tags": ["a", "b"], "cfg": {"t": 0.5, "nested": {"ok": True}},
            "raw": b"\x00\x01", "ratio": 0.25,
        }, events=[("exception", {"exception.type": "E"})], error="boom"),
    )  # fmt: skip


class TestEncodingsAgree:
    def test_json_and_protobuf_give_identical_spans(self) -> None:
        """The same request as protobuf and as OTLP/JSON maps to equal Span records."""
        req = sample()
        pb = decode_protobuf(req.SerializeToString(), PRICES)
        js = decode_json(json_body(req), PRICES)
        assert pb.rejected == js.rejected == 0
        assert pb.spans == js.spans
        assert pb.spans[1].output_tokens == 3_000_000_000
        assert pb.spans[1].attributes["raw"] == base64.b64encode(b"\x00\x01").decode()

    def test_json_ids_are_hex_in_either_case(self) -> None:
        """Upper-case hex ids decode to the same spans as lower-case ones."""
        doc = as_json(sample())
        for sp in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
            sp["traceId"] = sp["traceId"].upper()
            sp["spanId"] = sp["spanId"].upper()
        spans = decode_json(json.dumps(doc).encode(), PRICES).spans
        assert spans[0].trace_id == TRACE.hex()
        assert spans == decode_protobuf(sample().SerializeToString(), PRICES).spans

    def test_base64_ids_are_refused_with_a_clear_message(self) -> None:
        """A base64 trace id (protobuf's JSON mapping, not OTLP's) fails the request."""
        doc = as_json(sample())
        doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = base64.b64encode(
            TRACE
        ).decode()
        with pytest.raises(OtlpDecodeError, match=r"traceId .* is not hex"):
            decode_json(json.dumps(doc).encode(), PRICES)

    def test_unknown_fields_are_ignored(self) -> None:
        """Fields this version does not know, at every level, are skipped (spec: MUST ignore)."""
        doc = as_json(sample())
        doc["futureTopLevel"] = {"x": 1}
        doc["resourceSpans"][0]["newResourceField"] = [1, 2]
        doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["brandNewField"] = "v"
        spans = decode_json(json.dumps(doc).encode(), PRICES).spans
        assert spans == decode_protobuf(sample().SerializeToString(), PRICES).spans

    def test_int64_as_string_or_number(self) -> None:
        """int64 values arrive as decimal strings (the spec) or as numbers; both are exact."""
        doc = as_json(request(span(attributes={"n": 3_000_000_000})))
        sp = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        assert sp["attributes"][0]["value"] == {"intValue": "3000000000"}
        assert (
            decode_json(json.dumps(doc).encode(), PRICES).spans[0].attributes["n"] == 3_000_000_000
        )
        sp["attributes"][0]["value"] = {"intValue": 3_000_000_000}
        sp["startTimeUnixNano"] = int(sp["startTimeUnixNano"])
        assert (
            decode_json(json.dumps(doc).encode(), PRICES).spans[0].attributes["n"] == 3_000_000_000
        )

    def test_double_nan_as_string(self) -> None:
        """doubleValue "NaN" (how JSON carries it) is stored as the text NaN."""
        doc = as_json(request(span()))
        sp = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        sp["attributes"] = [{"key": "x", "value": {"doubleValue": "NaN"}}]
        assert decode_json(json.dumps(doc).encode(), PRICES).spans[0].attributes["x"] == "NaN"

    def test_enums_as_integers_and_names(self) -> None:
        """Span kind and status code as integers (the spec) and as names (tolerated)."""
        doc = as_json(request(span(error="e")))
        sp = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        assert (sp["kind"], sp["status"]["code"]) == (3, 2)
        ints = decode_json(json.dumps(doc).encode(), PRICES).spans[0]
        sp["kind"], sp["status"]["code"] = "SPAN_KIND_CLIENT", "STATUS_CODE_ERROR"
        names = decode_json(json.dumps(doc).encode(), PRICES).spans[0]
        assert ints == names and ints.status == "error"


class TestRequestsThatFail:
    @pytest.mark.parametrize(
        "body",
        [b"\xff\xff\xff\xff", b"\x0a\x05abc", b"\x0a\xff\xff\xff\xff\x0f"],
    )
    def test_invalid_protobuf(self, body: bytes) -> None:
        """Bytes that are not an ExportTraceServiceRequest raise OtlpDecodeError."""
        with pytest.raises(OtlpDecodeError, match="not a protobuf"):
            decode_protobuf(body, PRICES)

    @pytest.mark.parametrize(
        ("body", "message"),
        [(b"{not json", "not JSON"), (b"[1, 2]", "JSON object"),
         (b'{"resourceSpans": 5}', "not an OTLP/JSON"),
         (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 12}]}]}]}', "hex string"),
         (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5, "traceId": "ab"}]}]}]}',
          "not an OTLP/JSON")],
    )  # fmt: skip
    def test_invalid_json(self, body: bytes, message: str) -> None:
        """Malformed JSON, wrong shapes and wrong types raise OtlpDecodeError naming the fault."""
        with pytest.raises(OtlpDecodeError, match=message):
            decode_json(body, PRICES)


class TestSpansThatAreRejected:
    def test_empty_request_is_no_spans_and_no_rejection(self) -> None:
        """An empty request (protobuf b'' or JSON {}) decodes to nothing, successfully."""
        for batch in (decode_protobuf(b"", PRICES), decode_json(b"{}", PRICES)):
            assert (batch.spans, batch.rejected) == ([], 0)

    @pytest.mark.parametrize(
        ("mutate", "reason"),
        [(lambda s: setattr(s, "trace_id", b"\x00" * 16), "trace_id"),
         (lambda s: setattr(s, "trace_id", b"\x01" * 12), "trace_id"),
         (lambda s: setattr(s, "span_id", b""), "span_id"),
         (lambda s: setattr(s, "parent_span_id", b"\x01\x02"), "parent_span_id"),
         (lambda s: setattr(s, "start_time_unix_nano", 0), "start_time")],
    )  # fmt: skip
    def test_invalid_ids_and_times_reject_the_span_only(self, mutate, reason) -> None:  # type: ignore[no-untyped-def]
        """A bad span is counted with its reason; the good one beside it is kept."""
        bad = span("bad", span_id=9)
        mutate(bad)
        batch = decode_protobuf(request(span("good"), bad).SerializeToString(), PRICES)
        assert [s.name for s in batch.spans] == ["good"]
        assert batch.rejected == 1 and reason in batch.reasons[0]

    def test_logs_posted_to_traces_store_nothing(self) -> None:
        """A logs request parses as spans without ids: every one is rejected, none kept."""
        logs = ExportLogsServiceRequest()
        rec = logs.resource_logs.add().scope_logs.add().log_records.add()
        rec.time_unix_nano, rec.severity_text = 1_767_225_600_000_000_000, "INFO"
        rec.body.string_value = "hello"
        batch = decode_protobuf(logs.SerializeToString(), PRICES)
        assert batch.spans == [] and batch.rejected == 1

    def test_duplicates_in_one_request_are_kept_once(self) -> None:
        """The same (trace_id, span_id) twice in a request is one span, and not a rejection."""
        batch = decode_protobuf(request(span(), span()).SerializeToString(), PRICES)
        assert (len(batch.spans), batch.duplicates, batch.rejected) == (1, 1, 0)

    def test_reasons_are_bounded(self) -> None:
        """A thousand bad spans count 1000 but echo at most five distinct reasons."""
        spans = [span(f"s{i}", span_id=i + 1, trace_id=b"\x01" * i) for i in range(1000)]
        batch = decode_protobuf(request(*spans).SerializeToString(), PRICES)
        assert batch.rejected == 1000 - 1  # the one with 16 bytes is fine
        assert len(batch.reasons) == 5
