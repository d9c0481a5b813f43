"""@observe on sync, async, generator and async generator functions."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Iterator

import pytest

import llmpulse
from llmpulse.sdk import _spans
from llmpulse.testing import InMemoryExporter

from .conftest import FailingExporter


def _spans_of(exporter: InMemoryExporter) -> dict[str, object]:
    assert llmpulse.flush(10)
    return {s.name: s for s in exporter.spans}


class TestSync:
    def test_records_input_output_and_nesting(self, exporter: InMemoryExporter) -> None:
        """Nested decorated calls become parent and child spans with their arguments and result."""

        @llmpulse.observe(kind="tool")
        def search(query: str, limit: int = 3) -> list[str]:
            return [query] * limit

        @llmpulse.observe("pipeline")
        def pipeline(question: str) -> int:
            return len(search(question, limit=2))

        assert pipeline("llm") == 2
        spans = _spans_of(exporter)
        outer, inner = spans["pipeline"], spans[search.__qualname__]
        assert inner.parent_id == outer.span_id and inner.trace_id == outer.trace_id
        assert outer.kind == "chain" and inner.kind == "tool"
        assert inner.input == '{"query": "llm", "limit": 2}' and inner.output == '["llm", "llm"]'
        assert outer.output == "2"

    def test_bare_decorator_and_methods(self, exporter: InMemoryExporter) -> None:
        """@observe without parentheses works, and self is not captured as input."""

        class Agent:
            @llmpulse.observe
            def act(self, step: int) -> str:
                return f"step {step}"

        assert Agent().act(1) == "step 1"
        (span,) = _spans_of(exporter).values()
        assert span.name.endswith("Agent.act") and span.input == '{"step": 1}'

    def test_capture_flags(self, exporter: InMemoryExporter) -> None:
        """capture_input/capture_output=False keep arguments and results out of the span."""

        @llmpulse.observe("secret", capture_input=False, capture_output=False)
        def secret(password: str) -> str:
            return password[::-1]

        secret("hunter2")
        span = _spans_of(exporter)["secret"]
        assert span.input is None and span.output is None

    def test_exception_is_reraised_unchanged(self, exporter: InMemoryExporter) -> None:
        """The user's exception is the same object, with the frame that raised it in its traceback."""
        original = ValueError("bad input")

        @llmpulse.observe("fails")
        def fails() -> None:
            raise original

        with pytest.raises(ValueError) as info:
            fails()
        assert info.value is original
        frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
        assert frames[-1] == "fails"
        span = _spans_of(exporter)["fails"]
        assert (span.status, span.error_type, span.error_message) == (
            "error",
            "ValueError",
            "bad input",
        )

    def test_function_runs_when_tracing_breaks(
        self, exporter: InMemoryExporter, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If starting the span fails, the decorated function still runs and returns its result."""

        def broken() -> int:
            raise RuntimeError("tracing bug")

        monkeypatch.setattr(_spans, "new_span_id", broken)

        @llmpulse.observe("step")
        def step(x: int) -> int:
            return x + 1

        assert step(1) == 2

    def test_function_runs_when_the_exporter_is_down(self) -> None:
        """An exporter that always fails never affects the decorated function."""
        llmpulse.init(exporter=FailingExporter(), instrument=(), export_attempts=1)

        @llmpulse.observe("step")
        def step() -> str:
            return "ok"

        assert [step() for _ in range(5)] == ["ok"] * 5
        assert llmpulse.flush(10)
        stats = llmpulse.get_client().stats()
        assert stats.dropped["export_failed"] == 5 and stats.export_failures >= 1

    def test_unserialisable_arguments(self, exporter: InMemoryExporter) -> None:
        """Arguments that are neither JSON nor printable still yield a span."""

        class Weird:
            def __repr__(self) -> str:
                raise RuntimeError("no repr")

        @llmpulse.observe("w")
        def w(obj: object) -> None:
            return None

        w(Weird())
        assert "unprintable Weird" in _spans_of(exporter)["w"].input


class TestAsync:
    def test_async_nesting_and_concurrency(self, exporter: InMemoryExporter) -> None:
        """Concurrent async calls each get their own child span under the right parent."""

        @llmpulse.observe("leaf")
        async def leaf(i: int) -> int:
            await asyncio.sleep(0)
            return i

        @llmpulse.observe("root")
        async def root() -> int:
            return sum(await asyncio.gather(*(leaf(i) for i in range(5))))

        assert asyncio.run(root()) == 10
        assert llmpulse.flush(10)
        roots = [s for s in exporter.spans if s.name == "root"]
        leaves = [s for s in exporter.spans if s.name == "leaf"]
        assert len(roots) == 1 and len(leaves) == 5
        assert {s.parent_id for s in leaves} == {roots[0].span_id}

    def test_async_exception_unchanged(self, exporter: InMemoryExporter) -> None:
        """An async function's exception propagates as the same object."""
        original = TimeoutError("slow")

        @llmpulse.observe("a")
        async def a() -> None:
            raise original

        with pytest.raises(TimeoutError) as info:
            asyncio.run(a())
        assert info.value is original
        assert _spans_of(exporter)["a"].error_type == "TimeoutError"


class TestGenerators:
    def test_generator_span_covers_iteration_only(self, exporter: InMemoryExporter) -> None:
        """A generator's span counts its items; the consumer's spans are not its children."""

        @llmpulse.observe("produce")
        def produce(n: int) -> Iterator[int]:
            for i in range(n):
                with llmpulse.span("inside"):
                    pass
                yield i

        with llmpulse.span("consumer"):
            for _ in produce(2):
                with llmpulse.span("between"):
                    pass
        assert llmpulse.flush(10)
        by_name: dict[str, list] = {}
        for s in exporter.spans:
            by_name.setdefault(s.name, []).append(s)
        (gen,), (consumer,) = by_name["produce"], by_name["consumer"]
        assert gen.attributes["llmpulse.items"] == 2 and gen.parent_id == consumer.span_id
        assert {s.parent_id for s in by_name["inside"]} == {gen.span_id}
        assert {s.parent_id for s in by_name["between"]} == {consumer.span_id}

    def test_generator_send_throw_and_early_close(self, exporter: InMemoryExporter) -> None:
        """send() and throw() reach the generator; closing it early ends its span."""

        @llmpulse.observe("echo")
        def echo() -> Iterator[object]:
            received = None
            while True:
                try:
                    received = yield received
                except KeyError:
                    received = "caught"

        gen = echo()
        next(gen)
        assert gen.send("a") == "a"
        assert gen.throw(KeyError("k")) == "caught"
        gen.close()
        span = _spans_of(exporter)["echo"]
        assert span.status == "ok" and span.attributes["llmpulse.items"] == 3

    def test_generator_exception_unchanged(self, exporter: InMemoryExporter) -> None:
        """An exception inside a generator propagates unchanged and marks the span failed."""
        original = RuntimeError("broken stream")

        @llmpulse.observe("g")
        def g() -> Iterator[int]:
            yield 1
            raise original

        with pytest.raises(RuntimeError) as info:
            list(g())
        assert info.value is original
        assert _spans_of(exporter)["g"].status == "error"

    def test_async_generator(self, exporter: InMemoryExporter) -> None:
        """Async generators are observed the same way."""

        @llmpulse.observe("tokens")
        async def tokens() -> AsyncIterator[str]:
            for t in ("a", "b", "c"):
                yield t

        async def main() -> list[str]:
            return [t async for t in tokens()]

        assert asyncio.run(main()) == ["a", "b", "c"]
        assert _spans_of(exporter)["tokens"].attributes["llmpulse.items"] == 3

    def test_generator_return_value(self, exporter: InMemoryExporter) -> None:
        """A generator's return value reaches `yield from` callers."""

        @llmpulse.observe("inner")
        def inner() -> Iterator[int]:
            yield 1
            return 42

        def outer() -> Iterator[int]:
            result = yield from inner()
            yield result

        assert list(outer()) == [1, 42]
