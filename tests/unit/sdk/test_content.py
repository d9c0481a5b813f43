"""Prompt and response text: truncation with a marker, redaction, structured values."""

from __future__ import annotations

from typing import Any, ClassVar

import llmpulse
from llmpulse._rows import MAX_LABEL_CHARS
from llmpulse.sdk._content import DROPPED_ATTRIBUTES, bounded_attributes
from llmpulse.testing import InMemoryExporter


def _one_span(exporter: InMemoryExporter):  # noqa: ANN202
    assert llmpulse.flush(10)
    (span,) = exporter.spans
    return span


class TestTruncation:
    def test_huge_prompt_and_response_are_cut_with_a_marker(self) -> None:
        """Text over max_content_chars is cut there, and the marker says how much was cut."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=(), max_content_chars=1000)
        prompt, response = "p" * 124_456, "r" * 1000
        llmpulse.record_llm_call("gpt-4o", input=prompt, output=response)
        span = _one_span(exporter)
        assert span.input == "p" * 1000 + "...[truncated 123456 chars]"
        assert span.output == response  # exactly at the limit: untouched

    def test_long_attribute_values_are_cut(self) -> None:
        """Attribute strings obey the same limit."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=(), max_content_chars=10)
        with llmpulse.span("s", doc="x" * 50):
            pass
        assert _one_span(exporter).attributes["doc"] == "x" * 10 + "...[truncated 40 chars]"

    def test_structured_input_becomes_json(self, exporter: InMemoryExporter) -> None:
        """Lists and dicts (chat messages) are stored as JSON text."""
        llmpulse.record_llm_call(
            "gpt-4o", input=[{"role": "user", "content": "héllo"}], output={"a": 1}
        )
        span = _one_span(exporter)
        assert span.input == '[{"role": "user", "content": "héllo"}]' and span.output == '{"a": 1}'


class TestRedaction:
    def test_redact_stores_no_text(self) -> None:
        """redact=True keeps tokens and timings but no prompt, response or text attributes."""
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=(), redact=True)
        with llmpulse.span("call", kind="llm", **{"gen_ai.prompt": "secret", "team": "a"}) as s:
            s.set_input("secret prompt")
            s.set_output("secret answer")
        llmpulse.record_llm_call("gpt-4o", input_tokens=5, input="secret", output="secret")
        assert llmpulse.flush(10)
        for span in exporter.spans:
            assert span.input is None and span.output is None
            assert "secret" not in repr(span)
        assert exporter.spans[0].attributes == {"team": "a"}
        assert exporter.spans[1].input_tokens == 5

    def test_redact_from_the_environment(self, monkeypatch) -> None:  # noqa: ANN001
        """LLMPULSE_REDACT=true has the same effect."""
        monkeypatch.setenv("LLMPULSE_REDACT", "true")
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=())
        llmpulse.record_llm_call("gpt-4o", input="secret")
        assert _one_span(exporter).input is None

    def test_redact_function_masks_text(self) -> None:
        """A callable redact= rewrites the text before it is stored."""
        exporter = InMemoryExporter()
        llmpulse.init(
            exporter=exporter,
            instrument=(),
            redact=lambda text: text.replace("alice@example.com", "<email>"),
        )
        llmpulse.record_llm_call("gpt-4o", input="mail alice@example.com")
        assert _one_span(exporter).input == "mail <email>"

    def test_failing_redact_function_stores_nothing(self) -> None:
        """If the redact callable raises, the text is dropped rather than stored unredacted."""
        exporter = InMemoryExporter()

        def broken(text: str) -> str:
            raise ValueError("oops")

        llmpulse.init(exporter=exporter, instrument=(), redact=broken)
        llmpulse.record_llm_call("gpt-4o", input="secret")
        assert _one_span(exporter).input is None


class TestQueueMemory:
    def test_text_budget_bounds_the_queue(self) -> None:
        """With the exporter stuck, huge prompts stop being queued once the byte budget is spent."""
        from .conftest import BlockingExporter

        exporter = BlockingExporter()
        client = llmpulse.init(
            exporter=exporter, instrument=(), max_content_chars=10_000, max_queue_bytes=100_000
        )
        llmpulse.record_llm_call("gpt-4o")
        assert exporter.entered.wait(10)
        for i in range(50):
            llmpulse.record_llm_call(
                "gpt-4o", input="x" * 30_000 + str(i)
            )  # cut to 10,000 chars each
        stats = client.stats()
        assert stats.queue_depth == 10 and stats.dropped["queue_full"] == 40
        exporter.release()
        assert llmpulse.flush(10)
        stored = [s for s in exporter.spans if s.input]
        assert len(stored) == 10 and all(
            s.input.endswith("...[truncated 20001 chars]") for s in stored
        )
        stats = client.stats()
        assert stats.recorded == stats.exported + stats.dropped_total == 51

    def test_budget_frees_up_after_export(self) -> None:
        """Exported text gives its budget back, so recording continues after a burst."""
        exporter = InMemoryExporter()
        client = llmpulse.init(
            exporter=exporter, instrument=(), max_content_chars=1000, max_queue_bytes=5_000
        )
        for _ in range(20):
            for _ in range(4):
                llmpulse.record_llm_call("gpt-4o", input="y" * 1000)
            assert llmpulse.flush(10)
        assert client.stats().dropped_total == 0 and len(exporter.spans) == 80

    def test_redacted_text_is_not_even_queued(self) -> None:
        """With redact=True, prompts take no room in the queue at all."""
        exporter = InMemoryExporter()
        client = llmpulse.init(exporter=exporter, instrument=(), redact=True, max_queue_bytes=10)
        for _ in range(5):
            llmpulse.record_llm_call("gpt-4o", input="z" * 1000)
        assert llmpulse.flush(10)
        assert client.stats().dropped_total == 0 and len(exporter.spans) == 5


class TestBoundedAttributes:
    """bounded_attributes: a span's own attributes are kept as they are when nothing needs
    cutting; anything a caller still holds is copied."""

    PLAIN: ClassVar[dict[str, Any]] = {
        "llmpulse.workflow": "bench",
        "langgraph.step": 6,
        "ratio": 0.5,
        "ok": True,
        "x": None,
    }

    def test_an_owned_plain_dict_is_kept_with_the_same_size(self) -> None:
        """Owned and plain: the same dict back, counted exactly as the copy would be."""
        attributes = dict(self.PLAIN)
        kept, size = bounded_attributes(attributes, 100, owned=True)
        assert kept is attributes
        assert size == bounded_attributes(dict(self.PLAIN), 100)[1] > 0

    def test_an_owned_dict_with_something_to_cut_is_copied_and_cut(self) -> None:
        """A long value, a list or a long key sends an owned dict down the copying path."""
        for extra in ({"long": "x" * 101}, {"list": ["a"]}, {"k" * (MAX_LABEL_CHARS + 1): 1}):
            attributes = {**self.PLAIN, **extra}
            kept, _ = bounded_attributes(attributes, 100, owned=True)
            assert kept is not attributes
        kept, _ = bounded_attributes({"long": "x" * 101}, 100, owned=True)
        assert len(kept["long"]) == 100

    def test_an_owned_dict_over_the_total_is_cut_down(self) -> None:
        """Past the record's total the rest is left out and counted, owned or not."""
        attributes = {f"k{i}": "v" * 50 for i in range(10)}
        kept, _ = bounded_attributes(attributes, 100, total=300, owned=True)
        assert kept is not attributes and kept[DROPPED_ATTRIBUTES] > 0

    def test_a_callers_dict_is_always_copied(self) -> None:
        """Labels or attributes a caller passed are copied: changing them later changes nothing
        queued."""
        labels = dict(self.PLAIN)
        kept, _ = bounded_attributes(labels, 100)
        labels["langgraph.step"] = 7
        assert kept is not labels and kept["langgraph.step"] == 6
