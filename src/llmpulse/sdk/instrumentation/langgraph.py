"""What LangGraph's callbacks mean: node runs, routers, interrupts, retries and state size.

LangGraph reports a graph run to LangChain callback handlers; the LangChain handler
(``langchain.py``) records it and asks this module what each run is. Facts it relies on
(checked against langgraph 1.2):

* A graph run (the root, and each subgraph) is a chain named after the compiled graph
  (``compile(name=...)``, "LangGraph" by default).
* A node execution is a chain named after the node, tagged ``graph:step:<superstep>``, whose
  metadata has ``langgraph_node`` (the same name), ``langgraph_step`` and
  ``langgraph_checkpoint_ns`` (``node:<task id>``, one per task, kept by a retry).
* A conditional edge's function runs as a child of the source node, tagged ``seq:step:<k>``
  with ``k >= 2`` (after the node's own function), and ends with the route: a node name, a
  list of names or ``Send`` objects. Plain and conditional edges both write ``branch:to:<x>``
  triggers, so the router's output is the only place the decision is visible. A node can also
  route by returning ``Command(goto=...)``.
* ``interrupt()`` and ``Command(graph=PARENT)`` reach the node as ``on_chain_error`` with a
  ``GraphBubbleUp`` subclass while the graph goes on normally: control flow, not a failure.

Nothing here imports langgraph: it reads names, tags and attributes, so it costs nothing to
applications without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmpulse._json import spaced_json_strict

__all__ = [
    "END_NODE",
    "command_routes",
    "is_control_flow",
    "node_of",
    "router_routes",
    "state_summary",
]

END_NODE = "__end__"
_STEP_TAG = "graph:step:"
_SEQ_TAG = "seq:step:"


def node_of(
    name: str | None, tags: Sequence[str] | None, metadata: Mapping[str, Any] | None
) -> int | None:
    """The superstep of a node-execution run, or ``None`` when the run is not one."""
    if not metadata or not tags or name is None or metadata.get("langgraph_node") != name:
        return None
    for tag in tags:
        if tag.startswith(_STEP_TAG):
            step = metadata.get("langgraph_step")
            return step if type(step) is int else _int(tag[len(_STEP_TAG) :])
    return None


def is_router(tags: Sequence[str] | None) -> bool:
    """Whether a child run of a node is one of its conditional edges (``seq:step:k``, k >= 2)."""
    for tag in tags or ():
        if tag.startswith(_SEQ_TAG):
            k = _int(tag[len(_SEQ_TAG) :])
            return k is not None and k >= 2
    return False


def router_routes(output: Any) -> list[str] | None:
    """The node(s) a router sent the graph to, or ``None`` when ``output`` is not a route."""
    if isinstance(output, str):
        return [output]
    if isinstance(output, (list, tuple)) and output:
        routes = [_target(item) for item in output]
        if all(r is not None for r in routes):
            return [r for r in routes if r is not None]
    return None


def command_routes(output: Any) -> list[str] | None:
    """The ``goto`` of a node that returned a ``Command``, or ``None``."""
    if type(output).__name__ != "Command":
        return None
    goto = getattr(output, "goto", None)
    if goto is None or goto == () or goto == []:
        return None
    return router_routes(goto if isinstance(goto, (list, tuple)) else [goto])


def is_control_flow(error: BaseException) -> bool:
    """An interrupt or a ``Command`` to the parent graph (a ``GraphBubbleUp``): not a failure."""
    return any(c.__name__ == "GraphBubbleUp" for c in type(error).__mro__)


def interrupt_values(error: BaseException) -> list[Any]:
    """The values passed to ``interrupt()`` that stopped the node (best effort)."""
    values: list[Any] = []
    for arg in getattr(error, "args", ()) or ():
        for item in arg if isinstance(arg, (list, tuple)) else (arg,):
            values.append(getattr(item, "value", item))
    return values


def state_summary(state: Any) -> tuple[str, int] | None:
    """The state's keys (comma-joined) and its size in characters (``None`` if it is not a
    mapping): the length of its JSON when it is plain JSON values, else an estimate that
    counts chat messages by their content (``str()`` of a LangChain message renders every field
    of the model, about 4 ms for 30 messages, once per node: the estimate reads ``content``)."""
    if type(state) is not dict and not isinstance(state, Mapping):
        return None
    try:
        keys = ",".join(state)
    except TypeError:  # keys that are not all text
        keys = ",".join(str(k) for k in state)
    try:
        size = len(spaced_json_strict(state))
    except TypeError:  # something JSON has no form for: measured value by value
        try:
            size = _size(state, [_MAX_VISITS], 0)
        except (ValueError, RecursionError):  # whatever str() of a value does
            size = len(repr(state))
    except (ValueError, RecursionError):  # circular: repr's length
        size = len(repr(state))
    return keys, size


# How much of a state the estimate visits (values, all levels together) and how deep.
_MAX_VISITS = 10_000
_MAX_DEPTH = 32


def _size(value: Any, budget: list[int], depth: int) -> int:  # noqa: C901 - one branch a JSON type
    """About the characters of ``value`` as spaced JSON, a message counted by its content and
    anything else by its ``str()``; past ``_MAX_VISITS`` values or ``_MAX_DEPTH`` levels the
    rest counts nothing."""
    budget[0] -= 1
    if budget[0] < 0 or depth > _MAX_DEPTH:
        return 0
    kind = type(value)
    if kind is str:
        return len(value) + 2
    if value is None or kind is bool:
        return 4 if value is None or value else 5
    if kind is int or kind is float:
        return len(repr(value))
    if isinstance(value, Mapping):
        items = list(value.items())
        return 2 * max(len(items), 1) + sum(
            len(str(k)) + 4 + _size(v, budget, depth + 1) for k, v in items
        )
    if isinstance(value, (list, tuple)):
        return 2 * max(len(value), 1) + sum(_size(v, budget, depth + 1) for v in value)
    content = getattr(value, "content", None)  # a LangChain message (text or content blocks)
    if content is not None:
        return _size(content, budget, depth + 1) + len(type(value).__name__) + 2
    return len(str(value)) + 2


def _target(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    node = getattr(item, "node", None)  # langgraph.types.Send
    return node if isinstance(node, str) else None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
