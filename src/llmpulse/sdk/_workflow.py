"""Workflow steps without a framework: branch decisions, tool calls and the ``@tool`` decorator.

A branch decision is a ``branch`` span named ``"<workflow>:<from node>"`` whose
``llmpulse.branch`` attribute is the node it went to, so the store's rollups count the ways
each decision went (the branch-shift check and the flow view read those counts, never raw
spans). A tool call is a ``tool`` span with its inputs, output, latency and status. Both are
children of the current span, so they land in the trace of whatever step decided or called.

The decision's context and result are attributes: dropped when the client redacts text,
because they are usually the user's data. Nothing here raises into user code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from llmpulse._rows import MAX_LABEL_CHARS
from llmpulse.schema import BRANCH_ATTRIBUTE, SpanStatus
from llmpulse.sdk import _state
from llmpulse.sdk._content import cut
from llmpulse.sdk._context import current
from llmpulse.sdk._observe import observe
from llmpulse.sdk._spans import SpanHandle

__all__ = [
    "BRANCH_CONDITION",
    "BRANCH_CONTEXT",
    "BRANCH_FROM",
    "BRANCH_RESULT",
    "WORKFLOW",
    "branch_name",
    "record_branch",
    "record_tool_call",
    "tool",
]

log = logging.getLogger("llmpulse.sdk")

F = TypeVar("F", bound=Callable[..., Any])

# Attribute names of a branch span (the way it went is schema.BRANCH_ATTRIBUTE).
WORKFLOW = "llmpulse.workflow"
BRANCH_FROM = "llmpulse.branch.from"
BRANCH_CONDITION = "llmpulse.branch.condition"
BRANCH_RESULT = "llmpulse.branch.result"
BRANCH_CONTEXT = "llmpulse.branch.context"
# OpenTelemetry GenAI names for a tool execution.
TOOL_NAME = "gen_ai.tool.name"
OPERATION = "gen_ai.operation.name"


def branch_name(workflow: str, from_node: str) -> str:
    """The name of the branch spans of one decision point: ``"<workflow>:<from node>"``."""
    return f"{workflow}:{from_node}"


def record_branch(
    workflow: str,
    from_node: str,
    to_node: str,
    *,
    condition: str | None = None,
    result: Any = None,
    context: Mapping[str, Any] | None = None,
) -> None:
    """Record that ``workflow`` went from ``from_node`` to ``to_node`` (under the current span).

    ``condition`` says what was tested ("len(docs) < 3"), ``result`` what it gave, ``context``
    the values it looked at (dropped when the client redacts text).

    >>> import llmpulse
    >>> llmpulse.record_branch("support", "classify", "refund", condition="intent", result="refund")
    """
    try:
        client = _state._client
        if not client.enabled:
            return
        attributes: dict[str, Any] = {
            WORKFLOW: str(workflow),
            BRANCH_FROM: str(from_node),
            BRANCH_ATTRIBUTE: cut(str(to_node), MAX_LABEL_CHARS),
        }
        if condition is not None:
            attributes[BRANCH_CONDITION] = str(condition)
        if not client._batcher.redact:
            if result is not None:
                attributes[BRANCH_RESULT] = result
            if context:
                attributes[BRANCH_CONTEXT] = dict(context)
        handle = SpanHandle(
            client, branch_name(str(workflow), str(from_node)), "branch", attributes
        )
        handle.open(current())
        handle.end(handle.start_time)
    except Exception:  # never raise into user code
        log.debug("record_branch failed", exc_info=True)


def record_tool_call(
    name: str,
    *,
    inputs: Any = None,
    output: Any = None,
    latency_ms: float | None = None,
    status: str = "ok",
    error: BaseException | str | None = None,
    **attributes: Any,
) -> None:
    """Record one finished tool call (under the current span); it ended now, took ``latency_ms``.

    ``error`` (an exception or a message) or ``status="error"`` marks it failed.

    >>> import llmpulse
    >>> llmpulse.record_tool_call("search", inputs={"q": "refund"}, output=["doc-1"], latency_ms=12)
    """
    try:
        client = _state._client
        if not client.enabled:
            return
        handle = SpanHandle(
            client,
            str(name),
            "tool",
            {**attributes, TOOL_NAME: str(name), OPERATION: "execute_tool"},
        )
        end = client._now()
        took = float(latency_ms) if isinstance(latency_ms, (int, float)) else 0.0
        handle.open(current(), end - max(0.0, took) / 1000.0)
        if inputs is not None:
            handle.set_input(inputs)
        if output is not None:
            handle.set_output(output)
        if error is not None:
            handle.set_status_error(error)
        elif str(status).lower() != SpanStatus.OK.value:
            handle.set_status_error(f"tool status {status}", error_type=str(status))
        handle.end(end)
    except Exception:
        log.debug("record_tool_call failed", exc_info=True)


@overload
def tool(name: F) -> F: ...
@overload
def tool(
    name: str | None = None, *, capture_input: bool = True, capture_output: bool = True
) -> Callable[[F], F]: ...
def tool(name: Any = None, *, capture_input: bool = True, capture_output: bool = True) -> Any:
    """Decorate a function so each call is a ``tool`` span (``@tool`` or ``@tool("search")``).

    >>> import llmpulse
    >>> @llmpulse.tool
    ... def search(query: str) -> list[str]:
    ...     return ["doc-1"]
    """
    if callable(name):
        return tool()(name)

    def decorate(fn: F) -> F:
        label = str(name or getattr(fn, "__name__", None) or "tool")
        return observe(
            label,
            kind="tool",
            capture_input=capture_input,
            capture_output=capture_output,
            attributes={TOOL_NAME: label, OPERATION: "execute_tool"},
        )(fn)

    return decorate
