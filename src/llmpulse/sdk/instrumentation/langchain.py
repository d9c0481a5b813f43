"""Record LangChain and LangGraph runs as llmpulse spans, with a LangChain callback handler.

``CallbackHandler()`` goes in ``config={"callbacks": [...]}``; ``instrument_langchain()``
installs one for every run in the process (a langchain-core configure hook, read on every
``invoke``, in every thread). Each LangChain run becomes a span: chains and output parsers
``chain``, chat models and LLMs ``llm`` (model, tokens, cost, time to first token), tools
``tool``, retrievers ``retriever`` (documents count). LangChain's ``parent_run_id`` is the span
tree; a root run nests under the caller's current llmpulse span. LangGraph runs get one span
per node execution, a branch decision per route taken (``langgraph.py`` says how they are
recognised), interrupts as events rather than errors, and the state's keys and size.

Why it is built this way:

* ``run_inline = True``: LangChain then calls the handler in the task or thread of the run
  itself, not on an executor with a copied context, so the span made current at a run's start
  is the current span inside it (an ``@observe`` function or a raw client call in a node
  nests under the node).
* Double counting: a chat model's span is current while the model calls its client, and the
  openai instrumentation records nothing under an ``llm`` span: the call counts once.
* A LangGraph node's span is a ``SpanRecord`` and is not written to the context variable:
  a graph of trivial nodes pays LangChain's callbacks per node and little else. Code inside a
  node that asks for the current span gets the node's (the graph run's handle looks up the
  run LangChain's own context says the code runs under), as a full handle made then.
* Bounded memory: runs that never end (an abandoned stream, a crashed worker) are ended and
  dropped once ``max_open_runs`` are open, oldest first, marked ``llmpulse.evicted`` and
  counted in ``evicted_runs``.
* The handler never raises into the user's chain: every callback swallows its own failure
  (logged once per callback, counted in ``errors``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables.config import var_child_runnable_config

from llmpulse._rows import MAX_ATTRIBUTES_CHARS, MAX_LABEL_CHARS
from llmpulse.sdk import _state
from llmpulse.sdk._content import ITEM_OVERHEAD, bounded_attributes, text_size
from llmpulse.sdk._context import current_span
from llmpulse.sdk._spans import SpanHandle, SpanRecord
from llmpulse.sdk._workflow import BRANCH_CONDITION, BRANCH_FROM, WORKFLOW, branch_name
from llmpulse.sdk.instrumentation import langgraph as lg
from llmpulse.sdk.instrumentation._langchain_usage import usage_from_result

__all__ = ["CallbackHandler", "instrument_langchain", "uninstrument_langchain"]

log = logging.getLogger("llmpulse.sdk")

# Open runs kept before the oldest is evicted: far above any real run's nesting and fan-out.
DEFAULT_MAX_OPEN_RUNS = 10_000
# Root runs remembered (open, or ended but maybe still current in their caller's context).
_MAX_ROOTS = 1024
_NOISE_TAG_PREFIXES = ("seq:step:", "graph:step:", "langsmith:")
_SKIP_METADATA_PREFIXES = ("langgraph_", "ls_", "checkpoint_")


class _Run:
    """One open LangChain run: its span, what was current before it, and what it is."""

    __slots__ = ("handle", "prev", "kind", "graph", "t0", "first", "chunks", "text")

    def __init__(self, handle: SpanHandle, prev: Any, kind: str) -> None:
        self.handle, self.prev, self.kind = handle, prev, kind
        self.graph: str | None = None  # the workflow, when this run is a LangGraph graph
        self.t0 = 0.0
        self.first: float | None = None
        self.chunks = 0
        self.text: list[str] | None = None


class _NodeRun(SpanRecord):
    """One open LangGraph node execution: its span as a record, and which node it is.

    What the node's attributes are made of is kept as it came and turned into attributes by
    ``finish``, on the export thread, in batches: measured in a graph of trivial nodes, the
    same work costs about half there of what it costs between LangGraph's own steps.

    What is kept is chosen for the garbage collector as much as for time. A record waits in
    the export queue, and every container it keeps alive counts toward the collector's next
    pass as if just allocated: the objects a node kept (a tags tuple, a metadata copy, the
    attributes dict, a tuple of them) made its records trigger a young collection every ~100
    nodes and a full one (tens of ms in a process that imported LangChain) every few thousand
    (docs/benchmarks.md). So the start keeps text and numbers (the checkpoint namespace, the
    triggers joined) and containers only when they hold something of the user's: tags other
    than LangGraph's own, metadata keys of the user's (copied: LangGraph shares metadata dicts).
    The input state is copied (shallow: a node may change its input in place); of the update
    the node returns, only its keys are kept, as text.

    The span becomes a ``SpanHandle`` (``handle``, the same span, finished then) only when
    something needs one: code inside the node asking for the current span (an llm call,
    ``llmpulse.span``), a failure, an interrupt, captured state. A trivial node never does.
    """

    __slots__ = (
        "node", "step", "graph", "_handle", "_pending", "_tags", "_metadata", "_ns",
        "_triggers", "_state", "_attempt", "_update_keys", "attributes_checked",
    )  # fmt: skip

    def __init__(
        self, name: str, parent: SpanHandle, start_time: float, step: int, graph: str,
        tags: list[Any] | None, metadata: dict[str, Any] | None, ns: Any, triggers: str | None,
        state: Any, attempt: int | None,
    ) -> None:  # fmt: skip
        SpanRecord.__init__(self, name, "chain", _NO_ATTRIBUTES, 0, parent, start_time)
        self.node, self.step, self.graph = name, step, graph
        self._handle: SpanHandle | None = None
        self._pending = True  # what follows is still to become attributes
        self._tags = tags  # the user's tags, when there are any
        self._metadata = metadata  # a copy, when it holds the user's keys
        self._ns = ns  # the task's checkpoint namespace
        self._triggers = triggers
        self._state = state  # the input state (a dict copied)
        self._attempt = attempt
        self._update_keys: str | None = None  # of the update the node returned
        self.attributes_checked = False

    @property
    def handle(self) -> SpanHandle:
        """The node's span as a handle, made on first need (then ended instead of the record)."""
        h = self._handle
        if h is None:
            with _adopt_lock:  # two threads of one node must get the same handle
                h = self._handle
                if h is None:
                    self._build()  # the handle's end cuts them, as any handle's
                    h = self._handle = SpanHandle.adopt(_state._client, self)
        return h

    def finish(self) -> None:
        """The node's attributes from what was kept, cut to their caps (on the export thread,
        before conversion)."""
        self._build()
        size = self.attributes_size
        if size < 0 or size > MAX_ATTRIBUTES_CHARS:
            limit = _state._client._batcher.max_chars
            self.attributes, self.attributes_size = bounded_attributes(
                self.attributes, limit, owned=True
            )

    def _build(self) -> None:
        """The node's attributes and what they count (-1: to be measured), once."""
        if not self._pending:
            return
        self._pending = False
        self.attributes = {}  # the shared empty dict is never written, even if this fails
        state, self._state = self._state, None
        limit = _state._client._batcher.max_chars
        self.attributes, self.attributes_size, self.attributes_checked = _node_attributes(
            self, state, limit
        )


# A node record's attributes until they are built (never written: ``_build`` replaces it).
_NO_ATTRIBUTES: dict[str, Any] = {}
_adopt_lock = threading.Lock()


class CallbackHandler(BaseCallbackHandler):
    """A LangChain callback handler recording every run as an llmpulse span.

    >>> import llmpulse
    >>> from llmpulse.sdk.instrumentation.langchain import CallbackHandler
    >>> handler = CallbackHandler()
    >>> # chain.invoke(inputs, config={"callbacks": [handler]})

    ``capture_io``: keep chain, tool and model inputs and outputs (subject to the client's
    redaction and size limits). ``capture_state``: keep LangGraph node state values too (keys
    and size are always kept). ``max_open_runs``: runs held before the oldest is evicted.
    """

    run_inline = True
    raise_error = False

    def __init__(
        self,
        *,
        capture_io: bool = True,
        capture_state: bool = False,
        max_open_runs: int = DEFAULT_MAX_OPEN_RUNS,
    ) -> None:
        super().__init__()
        self.capture_io = capture_io
        self.capture_state = capture_state
        self.max_open_runs = max(1, int(max_open_runs))
        self._runs: dict[Any, _Run | _NodeRun] = {}  # by _key(run_id)
        self._evict_lock = threading.Lock()
        self._retries: dict[str, int] = {}  # task checkpoint ns -> failed attempts so far
        self._roots: dict[Any, Any] = {}  # recent root spans -> what was current before each
        self.evicted_runs = 0
        self.errors = 0
        self._warned: set[str] = set()

    @property
    def open_runs(self) -> int:
        """How many runs have started and not ended yet."""
        return len(self._runs)

    # -- chains, LangGraph graphs and nodes ------------------------------------------------------
    def on_chain_start(
        self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        """A chain, output parser, graph or graph node started."""
        try:
            name = kwargs.get("name")
            if type(name) is not str or not name:
                name = _name(serialized, kwargs)
            # A LangGraph node of a graph run of ours: the run most worth making cheap (a
            # graph of trivial nodes pays this once per node), so it has its own path.
            if parent_run_id is not None and metadata and metadata.get("langgraph_node") == name:
                graph_run = self._runs.get(_key(parent_run_id))
                if type(graph_run) is _Run:
                    step = lg.node_of(name, tags, metadata)
                    if step is not None:
                        self._start_node(run_id, graph_run, name, step, tags, metadata, inputs)
                        return
            run = self._start(run_id, parent_run_id, name, "chain", tags, metadata)
            if run is None:
                return
            if kwargs.get("run_type") == "parser":
                run.handle.set_attribute("langchain.run_type", "parser")
            if self.capture_io:
                run.handle.set_input(inputs)
        except Exception:
            self._failed("on_chain_start")

    def _start_node(  # noqa: C901 - once per graph node: kept flat, measured in bench/
        self, run_id: UUID, graph_run: _Run, name: str, step: int, tags: Sequence[str] | None,
        metadata: Mapping[str, Any], inputs: Any,
    ) -> None:  # fmt: skip
        """Open a node execution's span under its graph run's, with its attributes in one go.

        The node's span is a record and is not made the current span (the context variable is
        left alone): the graph run's handle names the node running in a context when asked
        (``_current_node``), which costs only code that asks.
        """
        client = _state._client
        if not client.enabled:
            return
        graph = graph_run.graph
        if graph is None:  # the first node tells us its parent is a graph run
            graph_run.graph = graph = graph_run.handle.name
            graph_run.handle.set_attribute(WORKFLOW, graph)
            graph_run.handle._inner = self._current_node
            if not self.capture_state:  # a graph's input is its state: kept only when allowed
                _drop_input(graph_run.handle)
        now = client._now()
        attempt = None
        if self._retries:  # a failed attempt of this task before: this one retries it
            ns = metadata.get("langgraph_checkpoint_ns")
            failed = self._retries.get(ns) if isinstance(ns, str) else None
            attempt = failed + 1 if failed else None
        # LangGraph's own step tags alone, most often: nothing is kept
        kept_tags = list(tags) if tags and _has_user_tag(tags) else None
        plan = _plan_of(metadata)
        triggers = metadata.get("langgraph_triggers")
        run = _NodeRun(
            name, graph_run.handle, now, step, graph, kept_tags,
            dict(metadata) if plan else None,  # keys of the user's beside LangGraph's
            metadata.get("langgraph_checkpoint_ns"),
            _joined(triggers) if isinstance(triggers, (list, tuple)) else None,
            dict(inputs) if type(inputs) is dict else inputs,
            attempt,
        )  # fmt: skip
        if "session_id" in metadata or "thread_id" in metadata or "user_id" in metadata:
            run.fields = _session_fields(metadata)
        if len(self._runs) >= self.max_open_runs:
            self._evict()
        self._runs[_key(run_id)] = run
        if self.capture_state:
            run.handle.set_input(inputs)

    def _current_node(self, graph: SpanHandle) -> SpanHandle:
        """What is current inside ``graph``'s run here: the node running in this context (the
        run LangChain's context says code here runs under), else the graph run itself."""
        try:
            config = var_child_runnable_config.get()
            if config:
                run_id = getattr(config.get("callbacks"), "parent_run_id", None)
                if run_id is not None:
                    run = self._runs.get(_key(run_id))
                    if type(run) is _NodeRun:
                        return run.handle
        except Exception:
            self._failed("current node")
        return graph

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A chain, parser, graph or node ended."""
        try:
            key = _key(run_id)
            run = self._runs.get(key)
            if run is None:  # unknown or already evicted: nothing to end
                return
            if type(run) is _NodeRun:
                self._end_node(key, run, outputs)
                return
            h = run.handle
            parent_id = kwargs.get("parent_run_id")
            parent = self._runs.get(_key(parent_id)) if parent_id is not None else None
            if type(parent) is _NodeRun and lg.is_router(kwargs.get("tags")):
                routes = lg.router_routes(outputs)
                if routes:
                    self._branch(parent, parent.node, routes, h.name)
                    h.set_attribute("langgraph.routes", routes)
            elif run.graph is not None:  # a graph run: its output is the state
                self._retries.clear()
                if self.capture_state:
                    h.set_output(outputs)
            elif self.capture_io:
                h.set_output(outputs)
            self._end(run_id)
        except Exception:
            self._failed("on_chain_end")

    def _end_node(self, key: Any, run: _NodeRun, outputs: Any) -> None:
        """End a node execution: the route of a ``Command`` it returned, the keys it updated."""
        if self._runs.pop(key, None) is None:  # evicted meanwhile
            return
        if type(outputs) is not dict:  # a Command, maybe (a state update is a dict)
            routes = lg.command_routes(outputs)
            if routes:
                self._branch(run, run.node, routes, "Command.goto")
        h = run._handle
        if h is None:  # the record: the update's keys as text (keeping the dict alive until
            # the export thread reads it would count it toward the collector's next pass)
            if type(outputs) is dict or isinstance(outputs, Mapping):
                try:
                    run._update_keys = keys = _joined(outputs)
                    run.text_bytes = len(keys)  # counted in the queue's budget with the name
                except Exception:  # a key whose str() fails: the span without the update's keys
                    self._failed("update keys")
            run.end(_state._client)
            return
        if self.capture_state:
            h.set_output(outputs)
        elif type(outputs) is dict or isinstance(outputs, Mapping):
            h.set_measured_attribute("langgraph.update.keys", _joined(outputs))
        h.end()

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A chain, graph or node raised; an interrupt is recorded as control flow, not failure."""
        try:
            run = self._runs.get(_key(run_id))
            if run is None:
                return
            h = run.handle
            if lg.is_control_flow(error):
                kind = "interrupt" if "Interrupt" in type(error).__name__ else "bubble_up"
                h.set_attribute(
                    "langgraph.interrupted" if kind == "interrupt" else "langgraph.bubble_up", True
                )
                if kind == "interrupt":
                    h.add_event("interrupt", values=lg.interrupt_values(error))
            else:
                h.set_status_error(error)
                if type(run) is _NodeRun:
                    self._remember_failure(run)
            self._end(run_id)
        except Exception:
            self._failed("on_chain_error")

    def _remember_failure(self, run: _NodeRun) -> None:
        ns = run._ns
        if isinstance(ns, str):
            self._retries[ns] = self._retries.get(ns, 0) + 1

    def _branch(self, run: _Run | _NodeRun, node: str, routes: list[str], condition: str) -> None:
        client = _state._client
        for route in routes:
            attrs = {WORKFLOW: run.graph or "", BRANCH_FROM: node, BRANCH_CONDITION: condition}
            attrs["llmpulse.branch"] = route
            h = SpanHandle(client, branch_name(run.graph or "", node), "branch", attrs)
            h.open(run if type(run) is _NodeRun else run.handle)
            h.end(h.start_time)

    # -- chat models and LLMs --------------------------------------------------------------------
    def on_chat_model_start(
        self, serialized: dict[str, Any] | None, messages: list[list[Any]], *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        """A chat model call started (its messages kept structured)."""
        try:
            run = self._llm_start(serialized, run_id, parent_run_id, tags, metadata, kwargs)
            if run is not None and self.capture_io and messages:
                run.handle.set_input([_message(m) for m in messages[0]])
        except Exception:
            self._failed("on_chat_model_start")

    def on_llm_start(
        self, serialized: dict[str, Any] | None, prompts: list[str], *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        """A (completion) LLM call started."""
        try:
            run = self._llm_start(serialized, run_id, parent_run_id, tags, metadata, kwargs)
            if run is not None and self.capture_io and prompts:
                run.handle.set_input(prompts[0] if len(prompts) == 1 else list(prompts))
        except Exception:
            self._failed("on_llm_start")

    def _llm_start(
        self, serialized: Any, run_id: UUID, parent_run_id: UUID | None, tags: Any,
        metadata: Any, kwargs: dict[str, Any],
    ) -> _Run | None:  # fmt: skip
        run = self._start(run_id, parent_run_id, _name(serialized, kwargs), "llm", tags, metadata)
        if run is None:
            return None
        params = kwargs.get("invocation_params") or {}
        md = metadata or {}
        model = params.get("model") or params.get("model_name") or md.get("ls_model_name")
        provider = md.get("ls_provider")
        version = md.get("prompt_version")
        run.handle.set_model(
            model if isinstance(model, str) else None,
            provider=provider if isinstance(provider, str) else None,
            prompt_version=version if isinstance(version, str) else None,
        )
        if params.get("stream") is True or kwargs.get("stream") is True:
            run.handle.set_attribute("llmpulse.stream", True)
        run.t0 = time.perf_counter()
        return run

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A streamed chunk: the first one dates the time to first token. Usage is never summed
        from chunks (chunk merging adds usage up); it comes from the final result only."""
        run = self._llm_run(run_id)
        if run is None:
            return
        if run.first is None:
            run.first = time.perf_counter()
            run.text = []
        run.chunks += 1
        if type(token) is str and token and run.text is not None and len(run.text) < 10_000:
            run.text.append(token)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """The call ended: tokens, cost, response model and output."""
        try:
            run = self._llm_run(run_id)
            if run is None:
                return
            self._llm_result(run, response)
            self._end(run_id)
        except Exception:
            self._failed("on_llm_end")

    def _llm_result(self, run: _Run, response: Any) -> None:
        h = run.handle
        usage = usage_from_result(response)
        if usage:
            h.set_usage(**usage)
            if usage.get("cost_usd") == 0.0:
                h.set_attribute("llmpulse.llm_cache_hit", True)
        if run.first is not None:
            h.set_ttft((run.first - run.t0) * 1000.0)
            h.set_attribute("llmpulse.stream.chunks", run.chunks)
        llm_output = getattr(response, "llm_output", None)
        if isinstance(llm_output, Mapping) and isinstance(llm_output.get("model_name"), str):
            h.set_attribute("gen_ai.response.model", llm_output["model_name"])
        if self.capture_io:
            h.set_output(_generation_output(response))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """The call failed, or its stream was abandoned (closed as cancelled, not failed)."""
        try:
            run = self._llm_run(run_id)
            if run is None:
                return
            h = run.handle
            if isinstance(error, GeneratorExit):
                h.set_attribute("llmpulse.cancelled", True)
                if run.text and self.capture_io:
                    h.set_output("".join(run.text))
                if run.first is not None:
                    h.set_ttft((run.first - run.t0) * 1000.0)
            else:
                h.set_status_error(error)
                status = getattr(error, "status_code", None)
                if status is None:  # langchain-openai wraps the client's error
                    status = getattr(error.__cause__, "status_code", None)
                if isinstance(status, int):
                    h.set_attribute("http.response.status_code", status)
            self._end(run_id)
        except Exception:
            self._failed("on_llm_error")

    # -- tools and retrievers --------------------------------------------------------------------
    def on_tool_start(
        self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        """A tool call started (structured ``inputs`` preferred over ``input_str``)."""
        try:
            name = _name(serialized, kwargs)
            run = self._start(run_id, parent_run_id, name, "tool", tags, metadata)
            if run is None:
                return
            run.handle.set_attributes(
                {"gen_ai.tool.name": name, "gen_ai.operation.name": "execute_tool"}
            )
            if self.capture_io:
                run.handle.set_input(inputs if inputs is not None else input_str)
        except Exception:
            self._failed("on_tool_start")

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A tool returned; a ``ToolMessage(status="error")`` (handled tool errors) is a failure."""
        try:
            run = self._runs.get(_key(run_id))
            if run is None:
                return
            h = run.handle
            content = getattr(output, "content", output)
            if getattr(output, "status", None) == "error":
                h.set_status_error(str(content), error_type="ToolError")
            if self.capture_io:
                h.set_output(content)
            self._end(run_id)
        except Exception:
            self._failed("on_tool_end")

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A tool raised."""
        self._error(run_id, error, "on_tool_error")

    def on_retriever_start(
        self, serialized: dict[str, Any] | None, query: str, *, run_id: UUID,
        parent_run_id: UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        """A retriever was queried."""
        try:
            name = _name(serialized, kwargs)
            run = self._start(run_id, parent_run_id, name, "retriever", tags, metadata)
            if run is not None and self.capture_io:
                run.handle.set_input(query)
        except Exception:
            self._failed("on_retriever_start")

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        """The retriever answered: the number of documents, and their text when kept."""
        try:
            run = self._runs.get(_key(run_id))
            if run is None:
                return
            run.handle.set_attribute("retriever.documents", len(documents))
            if self.capture_io:
                run.handle.set_output([getattr(d, "page_content", d) for d in documents])
            self._end(run_id)
        except Exception:
            self._failed("on_retriever_end")

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """The retriever raised."""
        self._error(run_id, error, "on_retriever_error")

    def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A ``with_retry`` runnable is about to try again: an event on its span."""
        run = self._runs.get(_key(run_id))
        if run is not None:
            attempt = getattr(retry_state, "attempt_number", None)
            run.handle.add_event("retry", attempt=attempt if isinstance(attempt, int) else None)

    # -- bookkeeping ------------------------------------------------------------------------------
    def _llm_run(self, run_id: UUID) -> _Run | None:
        """The open model run under ``run_id`` (a node run never gets a model's callbacks)."""
        run = self._runs.get(_key(run_id))
        return run if type(run) is _Run else None

    def _start(
        self, run_id: UUID, parent_run_id: UUID | None, name: str, kind: str,
        tags: Sequence[str] | None, metadata: Mapping[str, Any] | None,
    ) -> _Run | None:  # fmt: skip
        client = _state._client
        if not client.enabled:
            return None
        parent_run = self._runs.get(_key(parent_run_id)) if parent_run_id is not None else None
        current = prev = current_span.get()  # prev: given back when the run ends
        if parent_run is None and current is not None and current._inner is not None:
            current = current._inner(current)  # a node of a graph run: what it nests under
        if parent_run_id is None:
            current = prev = self._root_parent(current)
        attrs, size = _attributes(tags, metadata, client._batcher.max_chars)
        h = SpanHandle(client, name, kind, attrs)
        if size >= 0:  # measured as they were built: the span's end need not measure them again
            h.attributes_size = size
        if parent_run is not None:
            h.open(parent_run if type(parent_run) is _NodeRun else parent_run.handle)
        else:
            if parent_run_id is not None:  # its parent ended, was evicted, or is not ours
                h.set_attribute("llmpulse.orphan", True)
            h.open(current)
        if metadata:
            _session(h, metadata)
        run = _Run(h, prev, kind)
        if parent_run_id is None:
            self._remember_root(h, current)
        if len(self._runs) >= self.max_open_runs:
            self._evict()
        self._runs[_key(run_id)] = run
        current_span.set(h)
        return run

    def _root_parent(self, current: Any) -> Any:
        """The span a new root run nests under: the caller's, never a root run of ours.

        A root run of ours current here is a sibling started from the same context (``batch``
        starts every input's run before running any), or a run that ended in another context
        (async end callbacks run in a shielded task) and was left current in this one.
        """
        while current is not None and current in self._roots:
            current = self._roots[current]
        if current is not None and current.end_time:  # ended, and not one we know
            return None
        return current

    def _remember_root(self, handle: SpanHandle, current: Any) -> None:
        """Keep a root span and what was current before it, also after it ends (bounded)."""
        if len(self._roots) >= _MAX_ROOTS:
            with contextlib.suppress(RuntimeError, StopIteration):  # changed by another thread
                self._roots.pop(next(iter(self._roots)), None)
        self._roots[handle] = current

    def _end(self, run_id: UUID) -> None:
        self._close(_key(run_id))

    def _close(self, key: Any) -> None:
        """End the open run under ``key`` and give its context back what was current before."""
        run = self._runs.pop(key, None)
        if run is None:
            return
        run.handle.end()
        if type(run) is _Run and current_span.get() is run.handle:
            current_span.set(run.prev)

    def _error(self, run_id: UUID, error: BaseException, where: str) -> None:
        try:
            run = self._runs.get(_key(run_id))
            if run is not None:
                run.handle.set_status_error(error)
                self._end(run_id)
        except Exception:
            self._failed(where)

    def _evict(self) -> None:
        """End and forget the oldest open runs (a run that never ended must not pin memory)."""
        with self._evict_lock:
            excess = len(self._runs) - self.max_open_runs + 1
            for run_id in list(self._runs)[: max(excess, 0)]:
                run = self._runs.pop(run_id, None)
                if run is not None:
                    run.handle.set_attribute("llmpulse.evicted", True)
                    run.handle.end()
                    self.evicted_runs += 1
        if "evict" not in self._warned:
            self._warned.add("evict")
            log.warning(
                "LangChain handler: more than %d runs open; the oldest are ended as evicted "
                "(counted in evicted_runs)", self.max_open_runs,
            )  # fmt: skip

    def _failed(self, where: str) -> None:
        self.errors += 1
        if where not in self._warned:
            self._warned.add(where)
            log.warning(
                "LangChain handler: %s failed; the run goes on unrecorded", where, exc_info=True
            )


def _key(run_id: Any) -> Any:
    """A run's key among the open runs: its UUID's number (hashing a UUID runs Python code, four
    times per run; an int hashes in C), or the id itself when it is not a UUID."""
    return run_id.int if type(run_id) is UUID else run_id


def _name(serialized: Any, kwargs: Mapping[str, Any]) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if isinstance(serialized, Mapping):
        if isinstance(serialized.get("name"), str):
            return str(serialized["name"])
        ids = serialized.get("id")
        if isinstance(ids, list) and ids:
            return str(ids[-1])
    return "run"


def _node_attributes(run: _NodeRun, state: Any, limit: int) -> tuple[dict[str, Any], int, bool]:
    """A node span's attributes, the bytes they count (as ``_attributes``), and whether they
    are storable as they are (``SpanRecord.attributes_checked``): the user's tags and metadata,
    the workflow, node, superstep, attempt, triggers, the input state's keys and size, and the
    keys of the update it returned."""
    users = run._tags or run._metadata
    if users:
        attrs, size = _attributes(run._tags, run._metadata, limit)  # with the namespace
    else:
        attrs = {}
        size = _add_namespace(attrs, run._ns, limit)
    graph, name = run.graph, run.node
    attrs[WORKFLOW] = graph
    attrs["langgraph.node"] = name
    attrs["langgraph.step"] = run.step
    texts = [graph, name]  # the text values of ours
    if run._attempt:
        attrs["langgraph.attempt"] = run._attempt
        size += _ATTEMPT_SIZE
    # Lists as comma-joined text: a list attribute is copied and bounded item by item.
    triggers = run._triggers
    if triggers is not None:
        attrs["langgraph.triggers"] = triggers
        texts.append(triggers)
        size += _TRIGGERS_SIZE
    try:
        summary = lg.state_summary(state)
    except Exception:  # a value changed while it was read (by a thread the node left running)
        summary = None
    if summary is not None:
        attrs["langgraph.state.keys"], attrs["langgraph.state.size"] = summary
        texts.append(summary[0])
        size += _STATE_SIZE
    update = run._update_keys
    if update is not None:
        attrs["langgraph.update.keys"] = update
        texts.append(update)
        size += _UPDATE_SIZE
    ns = attrs.get("langgraph.checkpoint_ns")
    if ns is not None:
        texts.append(ns)
    joined = "".join(texts)
    # None of our texts is longer than all of them together: within the value cap, none
    # needs a cut (the user's values were checked one by one, and the namespace, counted in
    # ``size`` already, on its own by ``_add_namespace``).
    ours = len(joined) - (len(ns) if ns is not None else 0)
    if size < 0 or ours > limit:
        return attrs, -1, False
    # Ours alone, all plain text (a check of one string, where the converter would check
    # each): storable as they are.
    checked = not users and joined.isascii() and "\x00" not in joined
    return attrs, size + ours + _NODE_KEYS_SIZE, checked


def _attributes(  # noqa: C901 - once per run: kept flat like _start_node
    tags: Sequence[str] | None, metadata: Mapping[str, Any] | None, limit: int
) -> tuple[dict[str, Any], int]:
    """User tags and scalar metadata (copied: LangGraph shares metadata dicts across runs), and
    the bytes they count in the queue's budget as ``bounded_attributes`` counts them, or a
    negative number when one of them needs that careful measure (a list, a text over ``limit``
    or a key over its cap)."""
    attrs: dict[str, Any] = {}
    size = 0
    if tags and _has_user_tag(tags):  # LangGraph's own step tags alone, most often
        kept = [t for t in tags if isinstance(t, str) and not t.startswith(_NOISE_TAG_PREFIXES)]
        if kept:
            attrs["langchain.tags"] = kept
            size = _UNMEASURED
    if metadata:
        for key, attr, overhead in _plan_of(metadata):
            value = metadata[key]
            kind = type(value)
            if kind is str:
                attrs[attr] = value
                n = len(value)
                size += overhead + n if n <= limit else _UNMEASURED
            elif value is None or kind is int or kind is float or kind is bool:
                attrs[attr] = value
                size += overhead + _SCALAR_SIZE
            elif isinstance(value, (str, int, float)):  # a subclass (an enum): measured later
                attrs[attr] = value
                size = _UNMEASURED
        size += _add_namespace(attrs, metadata.get("langgraph_checkpoint_ns"), limit)
    return attrs, size


def _add_namespace(attrs: dict[str, Any], ns: Any, limit: int) -> int:
    """Add a LangGraph task's checkpoint namespace (when it is text) to ``attrs``; the bytes it
    counts, or a negative number when it needs the careful measure."""
    if type(ns) is str:
        attrs["langgraph.checkpoint_ns"] = ns
        n = len(ns)
        return n + _NS_SIZE if n <= limit else _UNMEASURED
    if isinstance(ns, str):
        attrs["langgraph.checkpoint_ns"] = ns
        return _UNMEASURED
    return 0


# What a measured attribute counts beyond its text (as ``bounded_attributes`` counts it): its
# key and the per-item overhead; a number, None or a bool counts 8 for its value. A negative
# size stays negative whatever is added to it later (nothing adds more than this).
_UNMEASURED = -(1 << 40)
_SCALAR_SIZE = 8
_NODE_KEYS_SIZE = (
    len(WORKFLOW) + len("langgraph.node") + len("langgraph.step") + 3 * ITEM_OVERHEAD + _SCALAR_SIZE
)
_ATTEMPT_SIZE = len("langgraph.attempt") + ITEM_OVERHEAD + _SCALAR_SIZE
_TRIGGERS_SIZE = len("langgraph.triggers") + ITEM_OVERHEAD
_STATE_SIZE = (
    len("langgraph.state.keys") + len("langgraph.state.size") + 2 * ITEM_OVERHEAD + _SCALAR_SIZE
)
_NS_SIZE = len("langgraph.checkpoint_ns") + ITEM_OVERHEAD
_UPDATE_SIZE = len("langgraph.update.keys") + ITEM_OVERHEAD


# Metadata keys (in order) -> the (key, attribute name, what the attribute counts beyond its
# value) kept of them: the keys that LangChain and LangGraph add for themselves are not. Every
# node of a graph brings the same keys, so deciding once per set of keys is cheaper than
# testing every key's prefixes on every run (bounded: past the cap, sets of keys are decided
# every time).
_plans: dict[tuple[Any, ...], tuple[tuple[str, str, int], ...]] = {}
_MAX_PLANS = 1024


def _has_user_tag(tags: Sequence[Any]) -> bool:
    """Whether ``tags`` hold one that is not LangChain's or LangGraph's own bookkeeping."""
    return any(not (isinstance(t, str) and t.startswith(_NOISE_TAG_PREFIXES)) for t in tags)


def _plan_of(metadata: Mapping[str, Any]) -> tuple[tuple[str, str, int], ...]:
    """The user's metadata keys to keep for ``metadata``'s set of keys, decided once per set."""
    shape = tuple(metadata)
    plan = _plans.get(shape)
    return _plan(shape) if plan is None else plan


def _plan(shape: tuple[Any, ...]) -> tuple[tuple[str, str, int], ...]:
    plan = tuple(
        (key, attr, len(attr) + ITEM_OVERHEAD if len(attr) <= MAX_LABEL_CHARS else _UNMEASURED)
        for key in shape
        if type(key) is str and not key.startswith(_SKIP_METADATA_PREFIXES)
        for attr in (f"langchain.metadata.{key}",)
    )
    if len(_plans) < _MAX_PLANS:
        _plans[shape] = plan
    return plan


def _joined(items: Any) -> str:
    """Names as comma-joined text (a list attribute costs more to bound and store)."""
    try:
        return ",".join(items)
    except TypeError:  # not all text
        return ",".join(str(item) for item in items)


def _drop_input(h: SpanHandle) -> None:
    """Forget an input already set (and the bytes it held in the queue's budget)."""
    fields = h.fields
    if fields and "input" in fields:
        h.text_bytes = max(0, h.text_bytes - text_size(fields.pop("input")))


def _session_fields(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """The session (or LangGraph thread) and user a run's metadata names, as span fields."""
    session = metadata.get("session_id") or metadata.get("thread_id")
    user = metadata.get("user_id")
    fields: dict[str, Any] = {}
    if session is not None:
        fields["session_id"] = str(session)
    if user is not None:
        fields["user_id"] = str(user)
    return fields or None


def _session(h: SpanHandle, metadata: Mapping[str, Any]) -> None:
    fields = _session_fields(metadata)
    if fields:
        h.set_session(fields.get("session_id"), fields.get("user_id"))


def _message(message: Any) -> dict[str, Any]:
    role = getattr(message, "type", None) or "message"
    out: dict[str, Any] = {"role": {"human": "user", "ai": "assistant"}.get(role, role)}
    out["content"] = getattr(message, "content", message)
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        out["tool_calls"] = tool_calls
    return out


def _generation_output(response: Any) -> Any:
    generations = getattr(response, "generations", None) or []
    if not generations or not generations[0]:
        return None
    first = generations[0][0]
    message = getattr(first, "message", None)
    if message is not None:
        tool_calls = getattr(message, "tool_calls", None)
        content = getattr(message, "content", None)
        if tool_calls and not content:
            return tool_calls
        return content
    return getattr(first, "text", None)


# -- process-wide ------------------------------------------------------------------------------
class _ProcessHandler:
    """What langchain-core's configure hook reads on every run: the installed handler or None.

    A ContextVar would not do: a value set in the main thread is not seen by threads started
    earlier, and LangGraph runs nodes on its own thread pool.
    """

    def __init__(self) -> None:
        self.handler: CallbackHandler | None = None

    def get(self) -> CallbackHandler | None:
        return self.handler


_process = _ProcessHandler()
_hook_lock = threading.Lock()
_hooked = False


def instrument_langchain(**options: Any) -> CallbackHandler:
    """Record every LangChain/LangGraph run in this process; returns the installed handler.

    ``options`` are ``CallbackHandler``'s (``capture_io``, ``capture_state``, ...); calling
    again replaces the handler with a new one built from the new options.
    """
    global _hooked
    from langchain_core.tracers.context import register_configure_hook

    with _hook_lock:
        if not _hooked:
            # With the handler class given, LangChain adds the process handler only to runs
            # that have no CallbackHandler of their own: a run is never recorded twice.
            register_configure_hook(_process, True, CallbackHandler)  # type: ignore[arg-type]
            _hooked = True
        _process.handler = CallbackHandler(**options)
        return _process.handler


def uninstrument_langchain() -> None:
    """Stop recording LangChain runs that were recorded because of ``instrument_langchain``."""
    _process.handler = None
