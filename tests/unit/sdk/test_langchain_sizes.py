"""The LangChain handler measures a node span's attributes as it builds them (instead of
measuring them all again at the span's end): the size it keeps must be what
``bounded_attributes`` would count, and anything that needs cutting must still be cut."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="langchain-core is not installed (extra: langchain)")

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import llmpulse
from llmpulse._rows import MAX_LABEL_CHARS
from llmpulse.sdk._content import bounded_attributes
from llmpulse.sdk._context import current_span
from llmpulse.sdk._spans import SpanHandle
from llmpulse.sdk.instrumentation.langchain import CallbackHandler
from llmpulse.testing import InMemoryExporter

LIMIT = 200


class Colour(str, enum.Enum):
    RED = "red"


def _node(
    handler: CallbackHandler, user_metadata: dict[str, Any], state: Any, node: str = "n0"
) -> SpanHandle:
    """Start a graph run and one node of it; the node's open span handle."""
    graph_id, node_id = uuid.uuid4(), uuid.uuid4()
    handler.on_chain_start(None, {"q": 1}, run_id=graph_id, name="graph")
    metadata = {
        "langgraph_step": 1, "langgraph_node": node, "langgraph_triggers": ("branch:to:" + node,),
        "langgraph_checkpoint_ns": f"{node}:{uuid.uuid4()}", **user_metadata,
    }  # fmt: skip
    handler.on_chain_start(
        None, state, run_id=node_id, parent_run_id=graph_id, tags=["graph:step:1"],
        metadata=metadata, name=node,
    )  # fmt: skip
    return handler._runs[node_id.int].handle


@pytest.fixture
def recorded() -> Iterator[InMemoryExporter]:
    """Recording into memory; the node spans these tests leave open (and current) are not
    left current for the tests after them."""
    exporter = InMemoryExporter()
    llmpulse.init(exporter=exporter, instrument=(), max_content_chars=LIMIT)
    token = current_span.set(None)
    yield exporter
    current_span.reset(token)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(max_size=3 * LIMIT), st.just(Colour.RED),
)  # fmt: skip
metadata_keys = st.text(min_size=1, max_size=1200).filter(
    lambda k: not k.startswith(("langgraph_", "ls_", "checkpoint_"))
)


class TestMeasuredAttributes:
    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        user=st.dictionaries(metadata_keys, scalars, max_size=5),
        state=st.dictionaries(st.text(max_size=30), st.integers(), max_size=4),
        node=st.text(min_size=1, max_size=300),
    )
    # Ours within the cap, but not with the checkpoint namespace (the node's name and a task
    # id) added: the namespace is capped on its own, so the size is still measured.
    @example(user={}, state={"a": 1}, node="x" * 60)
    def test_size_kept_is_what_bounding_counts(
        self, recorded: InMemoryExporter, user: dict[str, Any], state: dict[str, int], node: str
    ) -> None:
        handle = _node(CallbackHandler(), user, state, node)
        size = handle.attributes_size
        ours = len("graph") + len(node) + len("branch:to:" + node) + len(",".join(state))
        plain = all(
            (type(v) is str and len(v) <= LIMIT) or v is None or type(v) in (bool, int, float)
            for v in user.values()
        )
        short_keys = all(len("langchain.metadata." + k) <= MAX_LABEL_CHARS for k in user)
        assert (size >= 0) == (plain and short_keys and ours <= LIMIT)
        if size >= 0:  # measured: nothing needs cutting, and the count is bounding's own
            kept, counted = bounded_attributes(dict(handle.attributes), LIMIT, owned=True)
            assert kept == handle.attributes
            assert counted == size
            handle.set_measured_attribute("langgraph.update.keys", "a,b")
            assert (
                handle.attributes_size
                == bounded_attributes(dict(handle.attributes), LIMIT, owned=True)[1]
            )

    def test_plain_metadata_is_measured(self, recorded: InMemoryExporter) -> None:
        handle = _node(CallbackHandler(), {"tenant": "acme", "retries": 2, "x": None}, {"n": 0})
        assert handle.attributes_size == bounded_attributes(dict(handle.attributes), LIMIT)[1]

    @pytest.mark.parametrize(
        "user",
        [
            {"tenant": "x" * (LIMIT + 1)},  # a value over the cap
            {"k" * 1100: "v"},  # a key over the label cap
            {"colour": Colour.RED},  # a str subclass: copied as text when bounded
        ],
    )
    def test_what_needs_cutting_is_left_to_the_end(
        self, recorded: InMemoryExporter, user: dict[str, Any]
    ) -> None:
        handle = _node(CallbackHandler(), user, {"n": 0})
        assert handle.attributes_size < 0

    def test_a_long_value_is_still_cut_when_stored(self, recorded: InMemoryExporter) -> None:
        handler = CallbackHandler()
        handle = _node(handler, {"tenant": "x" * 10_000}, {"n": 0})
        run_id = next(k for k, r in handler._runs.items() if r.handle is handle)
        handler.on_chain_end({"n": 1}, run_id=run_id)
        assert llmpulse.flush(10)
        (node,) = [s for s in recorded.spans if s.name == "n0"]
        stored = node.attributes["langchain.metadata.tenant"]
        assert len(stored) < 10_000 and "truncated" in stored

    def test_set_attribute_after_start_is_measured_at_the_end(
        self, recorded: InMemoryExporter
    ) -> None:
        handle = _node(CallbackHandler(), {}, {"n": 0})
        assert handle.attributes_size >= 0
        handle.set_attribute("big", "y" * 10_000)
        assert handle.attributes_size < 0
        handle.end()
        assert len(handle.attributes["big"]) <= LIMIT + 64  # cut at the end, as before

    def test_measured_text_over_the_cap_unmeasures(self, recorded: InMemoryExporter) -> None:
        handle = _node(CallbackHandler(), {}, {"n": 0})
        handle.set_measured_attribute("langgraph.update.keys", "k" * (LIMIT + 1))
        assert handle.attributes_size < 0

    def test_a_chain_run_is_measured_as_it_starts(self, recorded: InMemoryExporter) -> None:
        """Not only graph nodes: any run's tags-free, plain metadata is measured when built."""
        handler = CallbackHandler()
        run_id = uuid.uuid4()
        handler.on_chain_start(
            None, {"q": 1}, run_id=run_id, name="chain", metadata={"tenant": "acme", "n": 3}
        )
        handle = handler._runs[run_id.int].handle
        assert handle.attributes_size >= 0
        assert handle.attributes_size == bounded_attributes(dict(handle.attributes), LIMIT)[1]
        orphan_id = uuid.uuid4()
        handler.on_chain_start(
            None, {}, run_id=orphan_id, parent_run_id=uuid.uuid4(), name="orphan", metadata={}
        )
        orphan = handler._runs[orphan_id.int].handle
        assert orphan.attributes["llmpulse.orphan"] is True
        assert orphan.attributes_size < 0  # set after measuring: measured again at the end
