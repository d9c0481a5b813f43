"""OTLP spans onto llmpulse columns: GenAI (every generation of names) and OpenInference."""

from __future__ import annotations

import json
import time

import pytest

import llmpulse
from llmpulse.pricing import PriceTable
from llmpulse.server.otlp import FLAG_CLAMPED, FLAG_TRUNCATED, Limits, decode_protobuf
from llmpulse.simulator import LLMSimulator
from llmpulse.testing import InMemoryExporter, reset_sdk
from tests.unit.server.otlp_payloads import START_NS, request, span

PRICES = PriceTable.default()


def one(pb_span, prices=PRICES, limits=None):  # type: ignore[no-untyped-def]
    batch = decode_protobuf(request(pb_span).SerializeToString(), prices, limits)
    assert batch.rejected == 0, batch.reasons
    assert len(batch.spans) == 1
    return batch.spans[0]


class TestGenAI:
    def test_current_names_fill_every_column(self) -> None:
        """semconv >= 1.37 names: provider.name, usage incl. cache and reasoning, conversation."""
        s = one(span(attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.cache_write.input_tokens": 100,
            "gen_ai.usage.reasoning.output_tokens": 120,
            "gen_ai.conversation.id": "conv-7",
            "user.id": "u-1",
            "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
            "gen_ai.output.messages": '[{"role":"assistant","parts":[]}]',
            "server.address": "api.openai.com",
        }))  # fmt: skip
        assert (s.kind, s.model, s.provider) == ("llm", "gpt-4o-2024-08-06", "openai")
        assert (s.input_tokens, s.output_tokens, s.total_tokens) == (1200, 300, 1500)
        assert (s.cache_read_tokens, s.cache_write_tokens, s.reasoning_tokens) == (1000, 100, 120)
        assert (s.session_id, s.user_id, s.service) == ("conv-7", "u-1", "checkout")
        assert s.input.startswith('[{"role":"user"') and s.output.startswith('[{"role":"assistant"')
        assert s.cost_usd == PRICES.cost("gpt-4o-2024-08-06", 1200, 300, 1000, 100, 120)
        assert s.cost_usd is not None and s.cost_usd > 0
        # The losing model name, the operation and unrelated attributes stay.
        assert s.attributes["gen_ai.request.model"] == "gpt-4o"
        assert s.attributes["gen_ai.operation.name"] == "chat"
        assert s.attributes["server.address"] == "api.openai.com"
        assert "gen_ai.usage.input_tokens" not in s.attributes
        assert "gen_ai.input.messages" not in s.attributes

    def test_a_count_past_the_store_limit_stays_an_attribute(self) -> None:
        """A token count the store would refuse (its rollup sums could overflow) does not cost
        the span: the column stays empty and the value is kept as sent."""
        from llmpulse._rows import MAX_COUNT

        s = one(span(attributes={
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": MAX_COUNT + 1,
            "gen_ai.usage.output_tokens": 7,
        }))  # fmt: skip
        assert (s.input_tokens, s.output_tokens) == (None, 7)
        assert s.attributes["gen_ai.usage.input_tokens"] == MAX_COUNT + 1

    def test_older_names_map_to_the_same_columns(self) -> None:
        """gen_ai.system, prompt/completion_tokens and cache_creation (semconv <= 1.36)."""
        s = one(span(attributes={
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-3-5-sonnet-20241022",
            "gen_ai.usage.prompt_tokens": 50,
            "gen_ai.usage.completion_tokens": 7,
            "gen_ai.usage.cache_creation.input_tokens": 20,
        }))  # fmt: skip
        assert (s.provider, s.model, s.kind) == ("anthropic", "claude-3-5-sonnet-20241022", "llm")
        assert (s.input_tokens, s.output_tokens, s.cache_write_tokens) == (50, 7, 20)
        # Every sent attribute went to a column: only what OTLP itself carries is left.
        assert s.attributes == {
            "otel.span.kind": "client",
            "otel.scope.name": "test.instrumentation",
            "otel.scope.version": "1.2.3",
        }

    def test_new_name_wins_and_old_one_is_kept(self) -> None:
        """provider.name wins over system, and input_tokens over prompt_tokens."""
        s = one(span(attributes={
            "gen_ai.system": "az.ai.openai", "gen_ai.provider.name": "openai",
            "gen_ai.usage.prompt_tokens": 1, "gen_ai.usage.input_tokens": 2,
        }))  # fmt: skip
        assert (s.provider, s.input_tokens) == ("openai", 2)
        assert s.attributes["gen_ai.system"] == "az.ai.openai"
        assert s.attributes["gen_ai.usage.prompt_tokens"] == 1

    @pytest.mark.parametrize(
        ("operation", "kind"),
        [("chat", "llm"), ("text_completion", "llm"), ("generate_content", "llm"),
         ("embeddings", "llm"), ("execute_tool", "tool"), ("invoke_agent", "agent"),
         ("create_agent", "agent"), ("retrieval", "retriever"), ("something_new", "span")],
    )  # fmt: skip
    def test_operation_name_gives_the_kind(self, operation: str, kind: str) -> None:
        """gen_ai.operation.name decides the kind when OpenInference does not."""
        assert one(span(attributes={"gen_ai.operation.name": operation})).kind == kind

    @pytest.mark.parametrize(
        ("sent", "stored"),
        [("gcp.vertex_ai", "google"), ("google", "google"), ("mistral_ai", "mistral"),
         ("mistralai", "mistral"), ("aws.bedrock", "aws"), ("aws", "aws"), ("OpenAI", "openai")],
    )  # fmt: skip
    def test_provider_names_are_normalised(self, sent: str, stored: str) -> None:
        """GenAI and OpenInference spell the same vendor differently; one name is stored."""
        assert one(span(attributes={"gen_ai.provider.name": sent})).provider == stored

    def test_message_events_of_old_semconv_fill_input_and_output(self) -> None:
        """gen_ai.user.message / gen_ai.choice events (semconv <= 1.36) give input and output."""
        s = one(span(
            attributes={"gen_ai.request.model": "gpt-4o-mini"},
            events=[("gen_ai.system.message", {"content": "be brief"}),
                    ("gen_ai.user.message", {"content": "hi"}),
                    ("gen_ai.choice", {"index": 0, "finish_reason": "stop",
                                       "message": '{"content":"hello"}'})],
        ))  # fmt: skip
        assert json.loads(s.input) == [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ]
        assert json.loads(s.output)[0]["finish_reason"] == "stop"
        assert [e.name for e in s.events] == [
            "gen_ai.system.message",
            "gen_ai.user.message",
            "gen_ai.choice",
        ]

    def test_structured_messages_are_stored_as_json_text(self) -> None:
        """gen_ai.input.messages as an AnyValue array (type any) becomes JSON text."""
        s = one(span(attributes={"gen_ai.input.messages": [{"role": "user", "parts": []}]}))
        assert json.loads(s.input) == [{"role": "user", "parts": []}]

    def test_openllmetry_flattened_prompt_and_completion(self) -> None:
        """gen_ai.prompt.<i>.* and gen_ai.completion.<i>.* become message lists."""
        s = one(span(attributes={
            "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "2+2?",
            "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "math",
            "gen_ai.completion.0.content": "4",
        }))  # fmt: skip
        assert json.loads(s.input) == [
            {"role": "system", "content": "math"},
            {"role": "user", "content": "2+2?"},
        ]
        assert json.loads(s.output) == [{"content": "4"}]
        assert not any(k.startswith("gen_ai.prompt") for k in s.attributes)

    def test_embeddings_arrive_as_the_sdk_records_them(self, sim: LLMSimulator) -> None:
        """One embeddings call recorded by the SDK's openai instrumentation and the same call
        sent over OTLP with its GenAI attributes get one kind, model, tokens and cost."""
        import openai

        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=("openai",))
        try:
            with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as client:
                client.embeddings.create(model="text-embedding-3-small", input=["a", "b c"])
            assert llmpulse.flush(10)
            (recorded,) = exporter.spans
        finally:
            reset_sdk()
        received = one(span(recorded.name, attributes={
            **recorded.attributes,
            "gen_ai.usage.input_tokens": recorded.input_tokens,
        }))  # fmt: skip
        assert recorded.attributes["gen_ai.operation.name"] == "embeddings"
        fields = ("kind", "name", "model", "input_tokens", "output_tokens", "cost_usd")
        assert [getattr(received, f) for f in fields] == [getattr(recorded, f) for f in fields]
        assert received.kind == "llm" and received.cost_usd is not None


class TestOpenInference:
    def test_llm_span_fills_every_column(self) -> None:
        """llm.*, openinference.span.kind, input/output.value, session and user ids."""
        s = one(span(attributes={
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.provider": "openai",
            "llm.system": "openai",
            "llm.token_count.prompt": 40,
            "llm.token_count.completion": 10,
            "llm.token_count.total": 50,
            "llm.token_count.prompt_details.cache_read": 32,
            "llm.token_count.prompt_details.cache_write": 4,
            "llm.token_count.completion_details.reasoning": 3,
            "llm.prompt_template.version": "v3",
            "input.value": "What is 2+2?",
            "input.mime_type": "text/plain",
            "output.value": "4",
            "session.id": "sess-1",
            "user.id": "user-9",
            "metadata": '{"tier": "gold"}',
        }))  # fmt: skip
        assert (s.kind, s.model, s.provider, s.prompt_version) == (
            "llm",
            "gpt-4o-mini",
            "openai",
            "v3",
        )
        assert (s.input_tokens, s.output_tokens, s.total_tokens) == (40, 10, 50)
        assert (s.cache_read_tokens, s.cache_write_tokens, s.reasoning_tokens) == (32, 4, 3)
        assert (s.input, s.output, s.session_id, s.user_id) == (
            "What is 2+2?",
            "4",
            "sess-1",
            "user-9",
        )
        assert s.cost_usd == PRICES.cost("gpt-4o-mini", 40, 10, 32, 4, 3)
        assert s.attributes["llm.system"] == "openai"  # llm.provider won; the vendor stays
        assert s.attributes["input.mime_type"] == "text/plain"
        assert s.attributes["metadata"] == '{"tier": "gold"}'

    @pytest.mark.parametrize(
        ("oi", "kind"),
        [("LLM", "llm"), ("EMBEDDING", "llm"), ("CHAIN", "chain"),
         ("RETRIEVER", "retriever"), ("TOOL", "tool"), ("AGENT", "agent"),
         ("RERANKER", "span"), ("GUARDRAIL", "span"), ("EVALUATOR", "span"), ("PROMPT", "span")],
    )  # fmt: skip
    def test_span_kind(self, oi: str, kind: str) -> None:
        """Kinds llmpulse has are mapped; the others stay as the attribute, with kind span."""
        s = one(span(attributes={"openinference.span.kind": oi}))
        assert s.kind == kind
        assert ("openinference.span.kind" in s.attributes) == (kind == "span")

    def test_embedding_is_an_llm_call_said_as_genai_says_it(self) -> None:
        """An OpenInference EMBEDDING span is kind llm, priced, and keeps what it was as
        gen_ai.operation.name = embeddings (as the SDK records embeddings)."""
        s = one(span("CreateEmbeddingResponse", attributes={
            "openinference.span.kind": "EMBEDDING",
            "embedding.model_name": "text-embedding-3-small",
            "llm.token_count.prompt": 120,
        }))  # fmt: skip
        assert (s.kind, s.model, s.input_tokens) == ("llm", "text-embedding-3-small", 120)
        assert s.cost_usd == PRICES.cost("text-embedding-3-small", 120, None) > 0
        assert s.attributes["gen_ai.operation.name"] == "embeddings"

    def test_openinference_kind_wins_over_operation(self) -> None:
        """openinference.span.kind comes before gen_ai.operation.name."""
        s = one(
            span(attributes={"openinference.span.kind": "CHAIN", "gen_ai.operation.name": "chat"})
        )
        assert s.kind == "chain"

    def test_flattened_messages_in_index_order(self) -> None:
        """llm.input_messages.<i>.message.* become one JSON list, ordered by index."""
        s = one(span(attributes={
            "llm.input_messages.10.message.role": "user",
            "llm.input_messages.10.message.content": "second",
            "llm.input_messages.2.message.role": "system",
            "llm.input_messages.2.message.content": "first",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "ok",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "f",
        }))  # fmt: skip
        assert json.loads(s.input) == [
            {"role": "system", "content": "first"},
            {"role": "user", "content": "second"},
        ]
        assert json.loads(s.output) == [{
            "role": "assistant", "content": "ok", "tool_calls.0.tool_call.function.name": "f",
        }]  # fmt: skip
        assert not any(k.startswith("llm.") for k in s.attributes)

    def test_input_value_wins_over_flattened_messages(self) -> None:
        """input.value comes first; the flattened messages are then kept as attributes."""
        s = one(span(attributes={
            "input.value": "q", "llm.input_messages.0.message.content": "q as a message",
        }))  # fmt: skip
        assert s.input == "q"
        assert s.attributes["llm.input_messages.0.message.content"] == "q as a message"

    def test_huge_flattened_index_stays_bounded(self) -> None:
        """An index of 99,999,999 is one message, not a list of a hundred million slots."""
        began = time.process_time()
        s = one(span(attributes={"llm.input_messages.99999999.message.content": "x"}))
        assert json.loads(s.input) == [{"content": "x"}]
        assert time.process_time() - began < 5  # generous: the point is "not 10^8 steps"


class TestSpanShape:
    def test_ids_times_parent_and_otel_kind(self) -> None:
        """Hex ids, Unix seconds, the parent, and OTel's span kind kept as an attribute."""
        s = one(span(span_id=0xABC, parent=0x1, duration_ms=1500))
        assert s.trace_id == "5b8efff798038103d269b633813fc60c"
        assert (s.span_id, s.parent_id) == ("0000000000000abc", "0000000000000001")
        assert s.start_time == START_NS / 1e9 and s.latency_ms == pytest.approx(1500)
        assert s.attributes["otel.span.kind"] == "client"
        assert s.attributes["otel.scope.name"] == "test.instrumentation"

    def test_root_span_has_no_parent(self) -> None:
        """An empty parent_span_id is a root span."""
        assert one(span()).parent_id is None

    def test_error_status_and_exception_event(self) -> None:
        """STATUS_CODE_ERROR gives status error, its message, and the exception type."""
        s = one(span(error="rate limited", events=[
            ("exception", {"exception.type": "openai.RateLimitError", "exception.message": "429"})
        ]))  # fmt: skip
        assert (s.status, s.error_message, s.error_type) == (
            "error",
            "rate limited",
            "openai.RateLimitError",
        )

    def test_error_type_attribute_wins(self) -> None:
        """error.type, when present, is the error type."""
        s = one(span(error="x", attributes={"error.type": "timeout"}))
        assert s.error_type == "timeout" and "error.type" not in s.attributes

    def test_end_before_start_is_clamped_and_flagged(self) -> None:
        """Clock skew: the end is clamped to the start and the sent end is kept in a flag."""
        pb = span()
        pb.end_time_unix_nano = pb.start_time_unix_nano - 5_000_000
        s = one(pb)
        assert s.end_time == s.start_time and s.latency_ms == 0
        assert s.attributes[FLAG_CLAMPED] == pb.end_time_unix_nano

    def test_very_large_values_are_truncated_and_flagged(self) -> None:
        """A 5 MB message is cut to the limit and the field named in llmpulse.truncated."""
        big = "x" * 5_000_000
        s = one(
            span(attributes={"input.value": big, "blob": big}), limits=Limits(max_text_chars=1000)
        )
        assert len(s.input) == 1000 and len(s.attributes["blob"]) == 1000
        assert s.attributes[FLAG_TRUNCATED] == ["input", "blob"]

    def test_int64_and_non_finite_doubles(self) -> None:
        """3000000000 stays exact; NaN and infinities (which JSON cannot hold) become text."""
        s = one(span(attributes={"big": 3_000_000_000, "nan": float("nan"),
                                 "inf": float("-inf"), "arr": [1.5, float("inf")]}))  # fmt: skip
        assert s.attributes["big"] == 3_000_000_000
        assert (s.attributes["nan"], s.attributes["inf"]) == ("NaN", "-Infinity")
        assert s.attributes["arr"] == [1.5, "Infinity"]

    def test_token_counts_as_strings_or_floats(self) -> None:
        """Counts sent as "12" or 12.0 are read; a negative or fractional one is left alone."""
        s = one(span(attributes={
            "gen_ai.usage.input_tokens": "12", "gen_ai.usage.output_tokens": 3.0,
            "gen_ai.usage.reasoning.output_tokens": -1,
        }))  # fmt: skip
        assert (s.input_tokens, s.output_tokens, s.reasoning_tokens) == (12, 3, None)
        assert s.attributes["gen_ai.usage.reasoning.output_tokens"] == -1

    def test_unknown_model_costs_none(self) -> None:
        """A model without a price has no cost (never a silent 0)."""
        s = one(span(attributes={"gen_ai.request.model": "my-finetune-xyz",
                                 "gen_ai.usage.input_tokens": 5}))  # fmt: skip
        assert s.model == "my-finetune-xyz" and s.cost_usd is None

    def test_resource_attributes_are_kept(self) -> None:
        """service.name is the service column; other resource attributes stay, nested."""
        pb = request(span(), service="svc", resource={"deployment.environment": "prod"})
        s = decode_protobuf(pb.SerializeToString(), PRICES).spans[0]
        assert s.service == "svc"
        assert s.attributes["otel.resource"] == {"deployment.environment": "prod"}

    def test_every_span_of_a_scope_carries_its_resource_cleaned(self) -> None:
        """Resource and scope are cleaned once per scope and given to each of its spans: a
        non-finite double spelled out, a long value cut and flagged on every span; a span's own
        attribute of the same name gives way to the scope's (as before)."""
        pb = request(
            span(span_id=1, attributes={"otel.scope.name": "mine", "x": 1}), span(span_id=2),
            resource={"host.load": float("nan"), "host.tags": ["a", float("inf")],
                      "host.note": "n" * 50},
        )  # fmt: skip
        batch = decode_protobuf(pb.SerializeToString(), PRICES, Limits(max_text_chars=20))
        first, second = batch.spans
        for s in (first, second):
            assert s.attributes["otel.resource"] == {
                "host.load": "NaN",
                "host.tags": ["a", "Infinity"],
                "host.note": "n" * 50,
            }  # nested values are not cut, as before; the scope name is
            assert s.attributes["otel.scope.name"] == "test.instrumentation"
            assert s.attributes["otel.span.kind"] == "client"
        assert first.attributes["x"] == 1 and "x" not in second.attributes
        assert FLAG_TRUNCATED not in first.attributes
        pb.resource_spans[0].scope_spans[0].scope.name = "s" * 30
        first, second = decode_protobuf(pb.SerializeToString(), PRICES, Limits(20)).spans
        for s in (first, second):
            assert s.attributes["otel.scope.name"] == "s" * 20
            assert s.attributes[FLAG_TRUNCATED] == ["otel.scope.name"]

    def test_precedence_does_not_depend_on_attribute_order(self) -> None:
        """The first name of a column's list holding a usable value wins wherever it comes in
        the span; a name holding an unusable value (empty, negative count) is skipped and kept."""
        names = [
            ("llm.token_count.prompt", 7), ("gen_ai.usage.prompt_tokens", -1),
            ("gen_ai.usage.input_tokens", 5), ("llm.model_name", "oi-model"),
            ("gen_ai.response.model", ""), ("gen_ai.request.model", "req-model"),
        ]  # fmt: skip
        for attributes in (dict(names), dict(reversed(names))):
            s = one(span(attributes=attributes))
            assert (s.input_tokens, s.model) == (5, "req-model")
            assert s.attributes["llm.token_count.prompt"] == 7
            assert s.attributes["gen_ai.usage.prompt_tokens"] == -1
            assert s.attributes["llm.model_name"] == "oi-model"
            assert s.attributes["gen_ai.response.model"] == ""
