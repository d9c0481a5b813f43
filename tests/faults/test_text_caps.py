"""Memory is bounded for every kind of text, with the exporter stalled.

Before, 300 calls carrying 1 MiB in an attribute, an error message, a span attribute, a span
event or an exception message grew the process by ~300 MiB with 0 drops (prompts only were
cut). Now every text is cut at its cap before it is queued and counts against the queue's
byte budget (``max_queue_bytes``), so a stalled exporter cannot grow memory past it.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

import llmpulse
from llmpulse._rows import MAX_LABEL_CHARS, MAX_MESSAGE_CHARS
from llmpulse.sdk.exporters.store import StoreExporter
from llmpulse.store import Store
from tests.faults._accounting import assert_accounting

MIB = 1 << 20
CALLS = 300
BUDGET = 16 * MIB  # the queue's byte budget in these probes (the default is 64 MiB)


class StalledStore:
    """The embedded store exporter behind a gate: ``stall()`` holds every export until
    ``release()``, as a database that stopped answering would."""

    accepts_span_rows = True

    def __init__(self, url: str) -> None:
        self.inner = StoreExporter(url)
        self.gate = threading.Event()
        self.gate.set()
        self.held = threading.Event()  # an export is waiting at the closed gate

    def export(self, batch: list[Any]) -> Any:
        if not self.gate.is_set():
            self.held.set()
        self.gate.wait(60)
        return self.inner.export(batch)

    def stall(self) -> None:
        self.gate.clear()

    def wait_held(self) -> None:
        """Until the export thread sits in a held export (so nothing is mid-conversion)."""
        assert self.held.wait(30)

    def release(self) -> None:
        self.gate.set()

    def shutdown(self) -> None:
        self.gate.set()
        self.inner.shutdown()


def rss() -> int:
    """Resident set size of this process in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _llm(**fields: Any) -> Callable[[str], None]:
    def record(big: str) -> None:
        values = {
            k: (big if v is BIG else [big] if v is BIG_LIST else v) for k, v in fields.items()
        }
        if "attributes" in fields:
            values["attributes"] = {
                k: big if v is BIG else [big] if v is BIG_LIST else v
                for k, v in fields["attributes"].items()
            }
        if "input" in fields and fields["input"] is CHAT:
            values["input"] = [{"role": "system", "content": big}, {"role": "user", "content": big}]
        model = big if fields.get("model") is BIG else "gpt-4o-mini"
        values.pop("model", None)
        llmpulse.record_llm_call(model, input_tokens=10, output_tokens=2, **values)

    return record


def _span_attribute(big: str) -> None:
    with llmpulse.span("step", kind="chain", blob=big):
        pass


def _set_attribute(big: str) -> None:
    with llmpulse.span("step", kind="tool") as s:
        s.set_attribute("blob", big)


def _event(big: str) -> None:
    with llmpulse.span("step", kind="chain") as s:
        s.add_event("retry", detail=big)
        s.add_event(big)


def _exception(big: str) -> None:
    try:
        with llmpulse.span("step", kind="tool"):
            raise ValueError(big)
    except ValueError:
        pass


def _span_texts(big: str) -> None:
    with llmpulse.span(big, kind="llm") as s:
        s.set_input(big)
        s.set_output(big)
        s.set_session(big, big)
        s.set_model(big, provider=big, prompt_version=big)


def _metric(big: str) -> None:
    llmpulse.record_metric("loss", 0.5, labels={"big": big}, run_id=big)


BIG, BIG_LIST, CHAT = object(), object(), object()
FIELDS: dict[str, Callable[[str], None]] = {
    "prompt": _llm(input=BIG),
    "response": _llm(output=BIG),
    "chat messages": _llm(input=CHAT),
    "attribute": _llm(attributes={"blob": BIG}),
    "attribute list": _llm(attributes={"blobs": BIG_LIST}),
    "error message": _llm(status="error", error_type="ValueError", error_message=BIG),
    "session and user id": _llm(session_id=BIG, user_id=BIG),
    "name, model, provider, version": _llm(name=BIG, model=BIG, provider=BIG, prompt_version=BIG),
    "span attribute": _span_attribute,
    "span set_attribute": _set_attribute,
    "span event": _event,
    "exception message": _exception,
    "span texts": _span_texts,
    "metric labels": _metric,
}


def _fresh(i: int) -> str:
    """A new 1 MiB string each call (the caller lets go of it; only the SDK could keep it)."""
    return chr(0x41 + i % 26) * MIB


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_a_stalled_exporter_cannot_grow_memory_past_the_budget(
    database_url: str, store: Store, field: str
) -> None:
    """300 records with 1 MiB in ``field``: RSS grows by less than the byte budget."""
    exporter = StalledStore(database_url)
    client = llmpulse.init(
        exporter=exporter, instrument=(), max_queue_bytes=BUDGET, max_content_chars=2048
    )
    record = FIELDS[field]
    record("warm-up")  # opens and migrates the store, starts the export thread
    assert client.flush(30)
    warm = client.stats().recorded

    exporter.stall()
    gc.collect()
    before = rss()
    for i in range(CALLS):
        record(_fresh(i))
    gc.collect()
    growth = rss() - before
    assert growth < BUDGET, f"{field}: grew {growth / MIB:.1f} MiB, budget {BUDGET / MIB:.0f}"
    assert client._batcher.queued_bytes <= BUDGET
    exporter.wait_held()
    stats = assert_accounting(client, store, flush=None)  # while stalled: all still in flight
    assert stats.recorded > warm

    exporter.release()
    stats = assert_accounting(client, store, flush=30)
    assert stats.queue_depth == 0 and stats.in_flight == 0


def test_the_budget_drops_and_counts_what_does_not_fit(database_url: str, store: Store) -> None:
    """With a 1 MiB budget, records past it are dropped as queue_full: counted, never held."""
    exporter = StalledStore(database_url)
    client = llmpulse.init(exporter=exporter, instrument=(), max_queue_bytes=MIB)
    llmpulse.record_llm_call("gpt-4o-mini", input_tokens=1, output_tokens=1)
    assert client.flush(30)
    exporter.stall()
    for i in range(CALLS):
        llmpulse.record_llm_call("gpt-4o-mini", attributes={"blob": _fresh(i)}, input_tokens=1)
    assert client._batcher.queued_bytes <= MIB
    exporter.wait_held()
    stalled = assert_accounting(client, store, flush=None)
    assert 0 < stalled.dropped["queue_full"] < CALLS
    exporter.release()
    stats = assert_accounting(client, store, flush=30, expect_recorded=CALLS + 1)
    assert stats.dropped["queue_full"] == stalled.dropped["queue_full"]


def test_what_is_stored_is_cut_with_a_marker(database_url: str, store: Store) -> None:
    """Each kept text says how much was cut; nothing is stored whole."""
    client = llmpulse.init(database_url, instrument=(), max_content_chars=1000)
    big = "x" * MIB
    llmpulse.record_llm_call(
        big, name=big, input=big, session_id=big, error_message=big, status="error",
        attributes={"blob": big, "many": [big, big]},
    )  # fmt: skip
    _event(big)
    _exception(big)
    assert_accounting(client, store, expect_recorded=3)
    spans = store.list_spans(0, 4e9, limit=10)
    llm = next(s for s in spans if s.kind == "llm")
    assert llm.input is not None and llm.input.endswith(f"[truncated {MIB - 1000} chars]")
    for text, cap in [
        (llm.name, MAX_LABEL_CHARS), (llm.model, MAX_LABEL_CHARS),
        (llm.session_id, MAX_LABEL_CHARS), (llm.error_message, MAX_MESSAGE_CHARS),
    ]:  # fmt: skip
        assert text is not None and text.startswith("xxx") and text.endswith("chars]")
        assert len(text) < cap + 40
    assert llm.attributes["blob"].endswith(f"[truncated {MIB - 1000} chars]")
    assert "truncated" in str(llm.attributes["many"])
    chain = next(s for s in spans if s.kind == "chain")
    assert chain.events[0].attributes["detail"].endswith("chars]")
    assert len(chain.events[1].name) < MAX_LABEL_CHARS + 40
    tool = next(s for s in spans if s.kind == "tool")
    assert tool.error_message is not None and len(tool.error_message) < MAX_MESSAGE_CHARS + 40
