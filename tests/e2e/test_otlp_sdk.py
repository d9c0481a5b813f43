"""The real OpenTelemetry SDK and a JSON client send GenAI and OpenInference spans to a real
running server; what is stored matches what was sent, attribute for attribute."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmpulse.pricing import PriceTable
from llmpulse.schema import Span
from llmpulse.server.app import create_app
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store
from tests.e2e.live_server import serving
from tests.unit.server.otlp_payloads import json_body, request, span

PRICES = PriceTable.default()

GENAI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.max_tokens": 512,
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 1500,
    "gen_ai.usage.output_tokens": 240,
    "gen_ai.usage.cache_read.input_tokens": 1024,
    "gen_ai.usage.cache_creation.input_tokens": 64,
    "gen_ai.usage.reasoning.output_tokens": 100,
    "gen_ai.conversation.id": "conv-42",
    "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
    "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"yo"}]}]',
    "user.id": "alice",
    "server.address": "api.openai.com",
    "server.port": 443,
}
# Attribute -> the column it fills (the rest must be stored as attributes, unchanged).
GENAI_COLUMNS = {
    "gen_ai.provider.name": "provider", "gen_ai.response.model": "model",
    "gen_ai.usage.input_tokens": "input_tokens", "gen_ai.usage.output_tokens": "output_tokens",
    "gen_ai.usage.cache_read.input_tokens": "cache_read_tokens",
    "gen_ai.usage.cache_creation.input_tokens": "cache_write_tokens",
    "gen_ai.usage.reasoning.output_tokens": "reasoning_tokens",
    "gen_ai.conversation.id": "session_id", "gen_ai.input.messages": "input",
    "gen_ai.output.messages": "output", "user.id": "user_id",
}  # fmt: skip
OPENINFERENCE = {
    "openinference.span.kind": "LLM",
    "llm.model_name": "claude-3-5-haiku-20241022",
    "llm.provider": "anthropic",
    "llm.system": "anthropic",
    "llm.token_count.prompt": 800,
    "llm.token_count.completion": 50,
    "llm.token_count.total": 850,
    "llm.token_count.prompt_details.cache_read": 600,
    "llm.invocation_parameters": '{"temperature": 0}',
    "input.value": "Summarise the ticket",
    "input.mime_type": "text/plain",
    "output.value": "The user cannot log in.",
    "session.id": "sess-9",
    "user.id": "bob",
    "metadata": '{"team": "support"}',
}
OPENINFERENCE_COLUMNS = {
    "openinference.span.kind": "kind", "llm.model_name": "model", "llm.provider": "provider",
    "llm.token_count.prompt": "input_tokens", "llm.token_count.completion": "output_tokens",
    "llm.token_count.total": "total_tokens",
    "llm.token_count.prompt_details.cache_read": "cache_read_tokens",
    "input.value": "input", "output.value": "output", "session.id": "session_id",
    "user.id": "user_id",
}  # fmt: skip


def assert_matches(stored: Span, sent: dict[str, Any], columns: dict[str, str]) -> None:
    """Every sent attribute is either its column's value or kept unchanged as an attribute."""
    for key, value in sent.items():
        if key in columns:
            column = columns[key]
            got = getattr(stored, column)
            expected = value.lower() if column == "kind" else value
            assert got == expected, f"{key} -> {column}: {got!r} != {expected!r}"
            assert key not in stored.attributes
        else:
            expected = list(value) if isinstance(value, tuple) else value
            assert stored.attributes.get(key) == expected, key


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[str, Store]]:
    with Store.open(sqlite_url) as store, serving(create_app(ServerSettings(), store=store)) as url:
        yield url, store


def send_with_otel_sdk(url: str, compression: Compression = Compression.NoCompression) -> str:
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=compression, timeout=10)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e", "0.1")
    try:
        with tracer.start_as_current_span(
            "agent run", attributes={"openinference.span.kind": "AGENT"}
        ) as root:
            with tracer.start_as_current_span(
                "chat gpt-4o", kind=SpanKind.CLIENT, attributes=GENAI
            ):
                pass
            with tracer.start_as_current_span("summarise", attributes=OPENINFERENCE) as oi:
                oi.set_status(Status(StatusCode.ERROR, "upstream overloaded"))
                oi.add_event("exception", {"exception.type": "anthropic.OverloadedError"})
        return format(root.get_span_context().trace_id, "032x")
    finally:
        provider.shutdown()


class TestOpenTelemetrySdk:
    @pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
    def test_genai_and_openinference_spans_are_stored_as_sent(
        self, server: tuple[str, Store], compression: Compression
    ) -> None:
        """Three spans from the real SDK exporter (protobuf): columns and attributes as sent."""
        url, store = server
        trace = send_with_otel_sdk(url, compression)
        spans = {s.name: s for s in store.get_trace(trace)}
        assert set(spans) == {"agent run", "chat gpt-4o", "summarise"}
        root, chat, oi = spans["agent run"], spans["chat gpt-4o"], spans["summarise"]
        assert root.kind == "agent" and root.parent_id is None
        assert chat.parent_id == root.span_id == oi.parent_id
        assert {s.service for s in spans.values()} == {"support-bot"}

        assert_matches(chat, GENAI, GENAI_COLUMNS)
        assert (chat.kind, chat.total_tokens, chat.status) == ("llm", 1740, "ok")
        assert chat.cost_usd == PRICES.cost("gpt-4o-2024-08-06", 1500, 240, 1024, 64, 100)
        assert chat.attributes["otel.span.kind"] == "client"

        assert_matches(oi, OPENINFERENCE, OPENINFERENCE_COLUMNS)
        assert (oi.status, oi.error_message, oi.error_type) == (
            "error",
            "upstream overloaded",
            "anthropic.OverloadedError",
        )
        assert oi.cost_usd == PRICES.cost("claude-3-5-haiku-20241022", 800, 50, 600)
        assert [e.name for e in oi.events] == ["exception"]


class TestJsonClient:
    def test_otlp_json_over_http_is_stored_like_protobuf(self, server: tuple[str, Store]) -> None:
        """A plain HTTP client posting OTLP/JSON stores the same rows as the protobuf path."""
        url, store = server
        attrs = {**{k: v for k, v in GENAI.items() if not isinstance(v, tuple)}, "n": 3_000_000_000}
        req = request(span("chat json", span_id=5, attributes=attrs))
        r = httpx.post(f"{url}/v1/traces", content=json_body(req),
                       headers={"Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 200 and r.json() == {}
        [stored] = store.get_trace(req.resource_spans[0].scope_spans[0].spans[0].trace_id.hex())
        assert_matches(stored, attrs, GENAI_COLUMNS)
        assert stored.attributes["n"] == 3_000_000_000
