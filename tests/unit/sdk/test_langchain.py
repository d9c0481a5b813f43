"""The LangChain handler against real langchain-core and ChatOpenAI pointed at the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest

pytest.importorskip("langchain_core", reason="langchain-core is not installed (extra: langchain)")
pytest.importorskip("langchain_openai", reason="langchain-openai is not installed (extra: dev)")

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

import llmpulse
from llmpulse.pricing import default_price_table
from llmpulse.schema import Span
from llmpulse.sdk.instrumentation.langchain import CallbackHandler
from llmpulse.simulator import LLMSimulator
from llmpulse.testing import InMemoryExporter

pytestmark = pytest.mark.instrument("openai")

LONG_SYSTEM = "You are a careful assistant. " * 400  # > 1024 tokens: the simulator caches it


@pytest.fixture(scope="module")
def sim_seed() -> int:
    """This module's simulator seed."""
    return 11


@pytest.fixture
def chat(sim: LLMSimulator) -> Iterator[ChatOpenAI]:
    """ChatOpenAI at the simulator, with its own retries off."""
    yield ChatOpenAI(
        model="gpt-4o-mini", base_url=sim.base_url, api_key="sim", max_retries=0, temperature=0
    )


@contextlib.asynccontextmanager
async def _async_chat(sim: LLMSimulator) -> AsyncIterator[ChatOpenAI]:
    """ChatOpenAI with an async HTTP client of this event loop, closed at the end (langchain-openai
    otherwise shares one client across event loops, and a closed loop's client fails)."""
    async with httpx.AsyncClient() as http:
        yield ChatOpenAI(
            model="gpt-4o-mini", base_url=sim.base_url, api_key="sim", max_retries=0,
            http_async_client=http,
        )  # fmt: skip


def _spans(exporter: InMemoryExporter) -> list[Span]:
    assert llmpulse.flush(10)
    return sorted(exporter.spans, key=lambda s: s.start_time)


def _cost(span: Span) -> float | None:
    return default_price_table().cost(
        span.model, span.input_tokens, span.output_tokens, span.cache_read_tokens,
        span.cache_write_tokens, span.reasoning_tokens,
    )  # fmt: skip


def _assert_llm_matches(span: Span, sim: LLMSimulator, index: int = -1) -> None:
    """The llm span's tokens are what the simulator billed, and its cost is priced from them."""
    request = sim.requests[index]
    assert (span.kind, span.model, span.provider) == ("llm", "gpt-4o-mini", "openai")
    assert (span.input_tokens, span.output_tokens) == (
        request.prompt_tokens,
        request.completion_tokens,
    )
    assert span.total_tokens == request.prompt_tokens + request.completion_tokens
    assert span.cost_usd == _cost(span) and span.cost_usd is not None and span.cost_usd > 0


class _Docs(BaseRetriever):
    """A retriever over two fixed documents."""

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return [Document(page_content=f"{query} policy"), Document(page_content="faq")]


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


class TestChains:
    def test_chain_with_a_tool(
        self, recorded: InMemoryExporter, chat: ChatOpenAI, sim: LLMSimulator
    ) -> None:
        """prompt | model | parser | tool: one trace, every run a child of the sequence."""
        prompt = ChatPromptTemplate.from_messages([("human", "Explain {topic}")])
        chain = prompt | chat | StrOutputParser() | word_count
        handler = CallbackHandler()
        result = chain.invoke(
            {"topic": "jitter"},
            config={"callbacks": [handler], "tags": ["docs"], "metadata": {"team": "search"}},
        )
        spans = _spans(recorded)
        assert [(s.name, s.kind) for s in spans] == [
            ("RunnableSequence", "chain"),
            ("ChatPromptTemplate", "chain"),
            ("ChatOpenAI", "llm"),
            ("StrOutputParser", "chain"),
            ("word_count", "tool"),
        ]
        root, _tmpl, llm, parser, tool_span = spans
        assert root.parent_id is None
        assert {s.parent_id for s in spans[1:]} == {root.span_id}
        assert {s.trace_id for s in spans} == {root.trace_id}
        assert all(s.status == "ok" for s in spans)
        _assert_llm_matches(llm, sim)
        assert len(sim.requests) == 1  # and only one llm span: the openai client did not count it
        assert llm.attributes["langchain.tags"] == ["docs"]
        assert llm.attributes["langchain.metadata.team"] == "search"
        assert parser.attributes["langchain.run_type"] == "parser"
        assert (tool_span.input, tool_span.output) == (parser.output, str(result))
        assert tool_span.attributes["gen_ai.tool.name"] == "word_count"
        assert '"role": "user"' in llm.input and "jitter" in llm.input
        assert handler.open_runs == 0 and handler.errors == 0

    def test_retriever(self, recorded: InMemoryExporter) -> None:
        """A retriever run is a retriever span with its query and the number of documents."""
        handler = CallbackHandler()
        docs = _Docs().invoke("refund", config={"callbacks": [handler]})
        (span,) = _spans(recorded)
        assert (span.name, span.kind, span.status) == ("_Docs", "retriever", "ok")
        assert span.attributes["retriever.documents"] == len(docs) == 2
        assert span.input == "refund" and span.output == '["refund policy", "faq"]'

    def test_streamed_call(
        self, recorded: InMemoryExporter, chat: ChatOpenAI, sim: LLMSimulator
    ) -> None:
        """A streamed call has its time to first token and its usage from the final result."""
        chat.stream_usage = True
        handler = CallbackHandler()
        text = "".join(
            c.content for c in chat.stream("Stream please", config={"callbacks": [handler]})
        )
        (span,) = _spans(recorded)
        _assert_llm_matches(span, sim)
        assert sim.requests[-1].stream is True
        assert span.ttft_ms is not None and 0 < span.ttft_ms <= span.latency_ms
        assert span.attributes["llmpulse.stream.chunks"] >= 1
        assert span.output == text

    def test_stream_without_usage_is_unknown(
        self, recorded: InMemoryExporter, chat: ChatOpenAI
    ) -> None:
        """A stream that never reports usage leaves the tokens unknown (None), never 0."""
        chat.stream_usage = False
        list(chat.stream("Stream please", config={"callbacks": [CallbackHandler()]}))
        (span,) = _spans(recorded)
        assert (span.input_tokens, span.output_tokens, span.cost_usd) == (None, None, None)
        assert span.ttft_ms is not None

    def test_failing_call(
        self, recorded: InMemoryExporter, chat: ChatOpenAI, sim: LLMSimulator
    ) -> None:
        """A provider error is an ERROR llm span under an ERROR chain; the error reaches the user."""
        sim.fail_next(1, status=500)
        chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | chat
        with pytest.raises(Exception) as caught:
            chain.invoke({"q": "hi"}, config={"callbacks": [CallbackHandler()]})
        root, tmpl, llm = _spans(recorded)
        assert (root.status, tmpl.status, llm.status) == ("error", "ok", "error")
        assert llm.error_type == type(caught.value).__name__
        assert type(caught.value.__cause__).__name__ == "InternalServerError"
        assert llm.attributes["http.response.status_code"] == 500
        assert llm.parent_id == root.span_id and llm.input_tokens is None

    async def test_async_chain(self, recorded: InMemoryExporter, sim: LLMSimulator) -> None:
        """ainvoke gives the same tree, and inside an async step the current span is that step's."""
        seen: list[str | None] = []

        async def inspect_step(text: str) -> str:
            seen.append(llmpulse.get_current_span().span_id)
            return text

        async with _async_chat(sim) as chat:
            chain = chat | StrOutputParser() | RunnableLambda(inspect_step, name="inspect")
            await chain.ainvoke("async please", config={"callbacks": [CallbackHandler()]})
        root, llm, parser, step = _spans(recorded)
        assert [s.name for s in (root, llm, parser, step)] == [
            "RunnableSequence", "ChatOpenAI", "StrOutputParser", "inspect",
        ]  # fmt: skip
        assert {llm.parent_id, parser.parent_id, step.parent_id} == {root.span_id}
        _assert_llm_matches(llm, sim)
        assert seen == [step.span_id]

    async def test_gathered_and_sequential_runs_are_separate_traces(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """10 gathered and 10 sequential ainvoke calls on one handler make 20 traces."""
        handler = CallbackHandler()
        config: Any = {"callbacks": [handler]}
        async with _async_chat(sim) as chat:
            chain = chat | StrOutputParser()
            await asyncio.gather(*(chain.ainvoke(f"q{i}", config=config) for i in range(10)))
            for i in range(10):
                await chain.ainvoke(f"s{i}", config=config)
        spans = _spans(recorded)
        roots = [s for s in spans if s.parent_id is None]
        assert len(roots) == 20 and len({s.trace_id for s in spans}) == 20
        by_id = {s.span_id: s for s in spans}
        for span in spans:
            if span.parent_id is not None:
                assert by_id[span.parent_id].trace_id == span.trace_id
                assert by_id[span.parent_id].name == "RunnableSequence"
        assert handler.open_runs == 0

    def test_cached_and_reasoning_tokens(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """usage_metadata's cache_read and reasoning details fill their columns; cost uses them."""
        model = ChatOpenAI(model="o3-mini", base_url=sim.base_url, api_key="sim", max_retries=0)
        messages = [("system", LONG_SYSTEM), ("human", "Why?")]
        config: Any = {"callbacks": [CallbackHandler()]}
        model.invoke(messages, config=config)
        answer = model.invoke(messages, config=config)
        span = _spans(recorded)[-1]
        usage = answer.usage_metadata
        assert usage is not None
        cached = usage["input_token_details"]["cache_read"]
        reasoning = usage["output_token_details"]["reasoning"]
        assert cached > 0 and reasoning > 0
        assert (span.input_tokens, span.output_tokens) == (
            usage["input_tokens"],
            usage["output_tokens"],
        )
        assert (span.cache_read_tokens, span.reasoning_tokens) == (cached, reasoning)
        assert span.cost_usd == _cost(span)

    def test_llm_cache_hit_costs_nothing(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """With LangChain's InMemoryCache the second, cached answer keeps its tokens and costs $0."""
        from langchain_core.caches import InMemoryCache

        model = ChatOpenAI(
            model="gpt-4o-mini", base_url=sim.base_url, api_key="sim", max_retries=0,
            cache=InMemoryCache(),
        )  # fmt: skip
        config: Any = {"callbacks": [CallbackHandler()]}
        model.invoke("cache me", config=config)
        model.invoke("cache me", config=config)
        first, second = _spans(recorded)
        assert len(sim.requests) == 1
        assert first.cost_usd is not None and first.cost_usd > 0
        assert second.input_tokens == first.input_tokens and second.cost_usd == 0.0
        assert second.attributes["llmpulse.llm_cache_hit"] is True


class TestProcessWide:
    def test_instrument_langchain_records_without_config(
        self, recorded: InMemoryExporter, chat: ChatOpenAI, sim: LLMSimulator
    ) -> None:
        """After instrument_langchain() every run is recorded, also from another thread."""
        handler = llmpulse.instrument_langchain()
        assert isinstance(handler, CallbackHandler)
        chain = chat | StrOutputParser()
        chain.invoke("one")
        chain.batch(["two", "three"])  # batch runs on a thread pool
        llmpulse.uninstrument_langchain()
        chain.invoke("not recorded")
        spans = _spans(recorded)
        assert len(sim.requests) == 4
        # Three calls recorded by the handler; the last one only by the openai instrumentation.
        assert sorted(s.name for s in spans if s.kind == "llm") == [
            "ChatOpenAI", "ChatOpenAI", "ChatOpenAI", "chat gpt-4o-mini",
        ]  # fmt: skip
        assert sorted(s.name for s in spans if s.parent_id is None) == [
            "RunnableSequence", "RunnableSequence", "RunnableSequence", "chat gpt-4o-mini",
        ]  # fmt: skip

    def test_explicit_handler_and_process_handler_record_once(
        self, recorded: InMemoryExporter, chat: ChatOpenAI
    ) -> None:
        """A run given its own handler while instrument_langchain() is on is recorded once."""
        process = llmpulse.instrument_langchain()
        mine = CallbackHandler()
        chat.invoke("hi", config={"callbacks": [mine]})
        assert [s.name for s in _spans(recorded)] == ["ChatOpenAI"]
        assert process.errors == mine.errors == 0

    def test_root_run_nests_under_the_callers_span(
        self, recorded: InMemoryExporter, chat: ChatOpenAI
    ) -> None:
        """A chain invoked inside llmpulse.span(...) is a child of that span."""
        with llmpulse.span("request") as outer:
            chat.invoke("hi", config={"callbacks": [CallbackHandler()]})
        llm = next(s for s in _spans(recorded) if s.kind == "llm")
        assert llm.parent_id == outer.span_id and llm.trace_id == outer.trace_id


class RaisingExporter(InMemoryExporter):
    """A store that raises on every write."""

    def export(self, batch: list[Any]) -> None:
        raise RuntimeError("store is down")


class TestNeverBreaksTheChain:
    def test_store_that_raises(self, chat: ChatOpenAI) -> None:
        """With an exporter that always raises, the chain still returns its answer."""
        llmpulse.init(exporter=RaisingExporter(), instrument=("openai",), export_attempts=1)
        handler = CallbackHandler()
        out = (chat | StrOutputParser()).invoke("hi", config={"callbacks": [handler]})
        assert isinstance(out, str) and out
        llmpulse.flush(10)
        assert llmpulse.get_client().stats().export_failures >= 1
        assert handler.errors == 0

    def test_handler_internal_failure(
        self, recorded: InMemoryExporter, chat: ChatOpenAI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If recording itself fails inside a callback, the chain's result is unchanged."""
        from llmpulse.sdk._spans import SpanHandle

        def broken(self: Any, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("recording bug")

        monkeypatch.setattr(SpanHandle, "open", broken)
        handler = CallbackHandler()
        out = (chat | StrOutputParser()).invoke("hi", config={"callbacks": [handler]})
        assert isinstance(out, str) and out
        assert handler.errors >= 3 and handler.open_runs == 0

    def test_events_for_unknown_runs_are_ignored(self, recorded: InMemoryExporter) -> None:
        """End, error and token callbacks for a run the handler never saw do nothing."""
        handler = CallbackHandler()
        run_id = uuid4()
        handler.on_chain_end({}, run_id=run_id)
        handler.on_llm_error(RuntimeError("x"), run_id=run_id)
        handler.on_tool_error(RuntimeError("x"), run_id=run_id)
        handler.on_llm_new_token("t", run_id=run_id)
        assert handler.errors == 0 and _spans(recorded) == []


class TestBoundedMemory:
    def test_runs_that_never_end_are_evicted_and_counted(self, recorded: InMemoryExporter) -> None:
        """Past max_open_runs the oldest open runs are ended as evicted; memory stays bounded."""
        handler = CallbackHandler(max_open_runs=100)

        def never_ending_runs() -> None:  # in a context of its own: they stay current there
            for i in range(1_000):
                handler.on_chain_start({}, {"i": i}, run_id=uuid4(), name=f"r{i}")

        contextvars.copy_context().run(never_ending_runs)
        assert handler.open_runs == 100 and handler.evicted_runs == 900
        spans = _spans(recorded)
        assert len(spans) == 900 and all(s.attributes["llmpulse.evicted"] for s in spans)
        assert [s.name for s in spans[:2]] == ["r0", "r1"]

    def test_abandoned_stream_closes_as_cancelled(
        self, recorded: InMemoryExporter, chat: ChatOpenAI
    ) -> None:
        """Breaking out of a stream and dropping it closes the span as cancelled, not failed."""
        handler = CallbackHandler()
        stream = chat.stream("a long answer please", config={"callbacks": [handler]})
        chunks = iter(stream)
        for _ in range(3):
            next(chunks)
        stream.close()
        del stream
        gc.collect()
        (span,) = _spans(recorded)
        assert span.status == "ok" and span.attributes["llmpulse.cancelled"] is True
        assert span.output and handler.open_runs == 0

    async def test_abandoned_async_stream_closes_as_cancelled(
        self, recorded: InMemoryExporter, sim: LLMSimulator
    ) -> None:
        """aclose() on an async stream read part way ends its span as cancelled, not failed."""
        handler = CallbackHandler()
        async with _async_chat(sim) as chat:
            stream = chat.astream("a long answer please", config={"callbacks": [handler]})
            for _ in range(3):
                await stream.__anext__()
            await stream.aclose()
        (span,) = _spans(recorded)
        assert span.status == "ok" and span.attributes["llmpulse.cancelled"] is True
        assert span.ttft_ms is not None and handler.open_runs == 0
