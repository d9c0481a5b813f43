"""Workflow runs: which traces ran a workflow, how each ended, what it cost, the path it took.

A workflow's decision points are the branch spans named ``"<workflow>:<node>"``; a *run* of
the workflow is a trace holding at least one of its decisions. Finding a window's runs reads
the partial index ``ix_spans_branch_name_start_time`` (``name, start_time`` of branch spans
only: ingest of every other span pays nothing for it), one index range per decision point.
Everything else about a page of runs is read by ``trace_id`` (its index): totals, the root
span, and the workflow's steps. No query here reads spans outside the traces it was given.

* A run's **outcome** is its root span's status (``unknown`` while no root span is stored: the
  run has not ended, or its root was lost); its duration is the root's, its tokens and cost
  the sums over every span of the trace (the model calls inside the nodes included).
* A run's **steps** are the executions of the workflow's nodes: LangGraph node spans of this
  graph (``llmpulse.workflow`` and ``langgraph.node`` attributes), or spans named after a node
  that a decision of this workflow comes from or goes to. Its **path** merges them in time
  order with the decisions (a decision's target stands for the next execution of that node).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, text

from llmpulse.schema import BRANCH_ATTRIBUTE
from llmpulse.store.models import RollupKeyRow, SpanRow
from llmpulse.store.queries.browse import TraceTotals, _after, _summaries, _trace_totals

__all__ = [
    "MAX_PATH",
    "MAX_RUN_SPANS",
    "RunDecision",
    "RunPath",
    "RunStep",
    "WorkflowRun",
    "WorkflowShape",
    "node_samples",
    "run_keys",
    "run_path",
    "runs_of",
    "workflow_shape",
]

_S = SpanRow.__table__
_K = RollupKeyRow.__table__

WORKFLOW = "llmpulse.workflow"
NODE = "langgraph.node"
CONDITION = "llmpulse.branch.condition"
MAX_PATH = 100  # nodes of a run's path in a list of runs (the run's own page has them all)
MAX_RUN_SPANS = 50_000  # spans of one trace read to cost its steps
_IS_BRANCH = text("spans.kind = 'branch'")  # literal: the partial index's own predicate


@dataclass(frozen=True, slots=True)
class WorkflowShape:
    """A workflow's decision points (branch span names) and the nodes they name."""

    workflow: str
    branch_names: tuple[str, ...]
    nodes: frozenset[str]


@dataclass(frozen=True, slots=True)
class RunStep:
    """One execution of a node in a run; ``cost_usd`` and ``total_tokens`` add up the node's
    span and every span under it (its model and tool calls) down to the next step."""

    node: str
    span_id: str
    start_time: float
    latency_ms: float
    status: str
    error_type: str | None
    cost_usd: float | None = None
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class RunDecision:
    """One branch decision of a run: from ``source`` to ``target``."""

    source: str
    target: str
    condition: str | None
    at: float
    span_id: str


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    """One run of a workflow (a trace) with its outcome, totals and path."""

    workflow: str
    trace_id: str
    name: str | None
    start_time: float
    end_time: float
    outcome: str  # ok | error | unknown
    error_type: str | None
    spans: int
    errors: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None
    path: tuple[str, ...]
    path_truncated: bool

    @property
    def duration_ms(self) -> float:
        """The root span's duration (first start to last end without one), in milliseconds."""
        return max(0.0, (self.end_time - self.start_time) * 1000.0)


@dataclass(frozen=True, slots=True)
class RunPath:
    """One run in full: its totals, every step and decision in time order, and the path."""

    run: WorkflowRun
    steps: list[RunStep] = field(default_factory=list)
    decisions: list[RunDecision] = field(default_factory=list)
    truncated: bool = False


def workflow_shape(conn: Connection, workflow: str) -> WorkflowShape:
    """The decision points and nodes ``workflow`` ever recorded (from the rollup keys)."""
    prefix = f"{workflow}:"
    names: set[str] = set()
    nodes: set[str] = set()
    for name, branch in conn.execute(select(_K.c.name, _K.c.branch).where(_K.c.kind == "branch")):
        if name.startswith(prefix):
            names.add(name)
            nodes.add(name[len(prefix) :])
            if branch:
                nodes.add(branch)
    return WorkflowShape(workflow, tuple(sorted(names)), frozenset(nodes))


def run_keys(
    conn: Connection,
    shape: WorkflowShape,
    start: float,
    end: float,
    after: Sequence[Any] | None,
    limit: int,
) -> list[tuple[str, float]]:
    """(trace_id, first decision's time) of the runs with a decision in ``[start, end)``,
    newest first, keyed by (first decision's time, trace_id)."""
    if not shape.branch_names:
        return []
    first = func.min(_S.c.start_time)
    query = (
        select(_S.c.trace_id, first.label("first"))
        .where(
            _IS_BRANCH,
            _S.c.name.in_(shape.branch_names),
            _S.c.start_time >= start,
            _S.c.start_time < end,
        )
        .group_by(_S.c.trace_id)
        .having(*_after((first, _S.c.trace_id), after, True))
        .order_by(first.desc(), _S.c.trace_id.desc())
        .limit(limit)
    )
    return [(str(r.trace_id), float(r.first)) for r in conn.execute(query)]


def runs_of(conn: Connection, shape: WorkflowShape, trace_ids: Sequence[str]) -> list[WorkflowRun]:
    """The runs ``trace_ids`` (in that order) with outcome, totals and path (up to MAX_PATH)."""
    if not trace_ids:
        return []
    ids = list(trace_ids)
    totals = list(
        conn.execute(select(*_trace_totals()).where(_S.c.trace_id.in_(ids)).group_by(_S.c.trace_id))
    )
    by_id = {t.trace_id: t for t in _summaries(conn, totals)}
    roots = _roots(conn, ids)
    rank = func.row_number().over(partition_by=_S.c.trace_id, order_by=(_S.c.start_time, _S.c.id))
    inner = (
        select(*_step_columns(), rank.label("rank"))
        .where(_S.c.trace_id.in_(ids), _relevant(shape))
        .subquery()
    )
    rows: dict[str, list[Any]] = {i: [] for i in ids}
    limited = select(inner).where(inner.c.rank <= 3 * MAX_PATH + 1)
    for row in conn.execute(limited.order_by(inner.c.trace_id, inner.c.start_time)):
        rows[row.trace_id].append(row)
    out = []
    for trace_id in ids:
        if trace_id not in by_id:
            continue
        steps, decisions = _events(shape, rows[trace_id])
        path = _path(steps, decisions)
        truncated = len(rows[trace_id]) > 3 * MAX_PATH or len(path) > MAX_PATH
        out.append(
            _run(shape.workflow, by_id[trace_id], roots.get(trace_id), path[:MAX_PATH], truncated)
        )
    return out


def run_path(conn: Connection, shape: WorkflowShape, trace_id: str) -> RunPath | None:
    """One run's steps (each costed with what ran under it), decisions and whole path; ``None``
    when the trace is not stored or holds no decision of the workflow."""
    query = (
        select(*_step_columns())
        .where(_S.c.trace_id == trace_id, _relevant(shape))
        .order_by(_S.c.start_time, _S.c.id)
    )
    rows = list(conn.execute(query))
    steps, decisions = _events(shape, rows)
    if not decisions:
        return None
    totals = list(
        conn.execute(
            select(*_trace_totals()).where(_S.c.trace_id == trace_id).group_by(_S.c.trace_id)
        )
    )
    summary = _summaries(conn, totals)[0]
    steps, truncated = _cost_steps(conn, trace_id, steps)
    path = _path(steps, decisions)
    run = _run(shape.workflow, summary, _roots(conn, [trace_id]).get(trace_id), path, False)
    return RunPath(run, steps, decisions, truncated)


def node_samples(
    conn: Connection, shape: WorkflowShape, trace_ids: Sequence[str]
) -> dict[str, list[RunStep]]:
    """Every step of the runs ``trace_ids``, costed, grouped by node (what the node ranking
    sums); bounded by the caller's number of runs and MAX_RUN_SPANS per run."""
    out: dict[str, list[RunStep]] = {}
    for trace_id in trace_ids:
        rows = conn.execute(
            select(*_step_columns())
            .where(_S.c.trace_id == trace_id, _relevant(shape))
            .order_by(_S.c.start_time, _S.c.id)
        )
        steps, _ = _events(shape, list(rows))
        for step in _cost_steps(conn, trace_id, steps)[0]:
            out.setdefault(step.node, []).append(step)
    return out


# -- helpers ----------------------------------------------------------------------------------


def _step_columns() -> list[Any]:
    return [
        _S.c.trace_id, _S.c.span_id, _S.c.name, _S.c.kind, _S.c.start_time, _S.c.end_time,
        _S.c.status, _S.c.error_type, _S.c.attributes,
    ]  # fmt: skip


def _relevant(shape: WorkflowShape) -> Any:
    """Spans of a trace that can be a step or a decision of the workflow."""
    names = sorted(set(shape.branch_names) | shape.nodes)
    return or_(
        _S.c.name.in_(names) if names else text("1 = 0"),
        and_(_S.c.kind != "branch", _S.c.attributes[WORKFLOW].as_string() == shape.workflow),
    )


def _events(shape: WorkflowShape, rows: Iterable[Any]) -> tuple[list[RunStep], list[RunDecision]]:
    prefix = f"{shape.workflow}:"
    branch_names = set(shape.branch_names)
    steps: list[RunStep] = []
    decisions: list[RunDecision] = []
    for r in rows:
        attrs = r.attributes or {}
        if r.kind == "branch":
            target = attrs.get(BRANCH_ATTRIBUTE)
            if r.name in branch_names and target is not None:
                condition = attrs.get(CONDITION)
                decisions.append(
                    RunDecision(
                        r.name[len(prefix) :], str(target),
                        None if condition is None else str(condition), float(r.start_time),
                        r.span_id,
                    )
                )  # fmt: skip
            continue
        owner = attrs.get(WORKFLOW)
        node = attrs.get(NODE) if owner == shape.workflow else None
        if node is None and r.name in shape.nodes and owner in (None, shape.workflow):
            node = r.name
        if node is not None:
            steps.append(
                RunStep(
                    str(node), r.span_id, float(r.start_time),
                    max(0.0, (float(r.end_time) - float(r.start_time)) * 1000.0),
                    r.status, r.error_type,
                )
            )  # fmt: skip
    return steps, decisions


def _path(steps: list[RunStep], decisions: list[RunDecision]) -> list[str]:
    """Node names in the order the run went through them (a decision's target stands for the
    next execution of that node, so it is not counted twice)."""
    events: list[tuple[float, int, RunStep | RunDecision]] = [(s.start_time, 0, s) for s in steps]
    events += [(d.at, 1, d) for d in decisions]
    events.sort(key=lambda e: (e[0], e[1]))
    path: list[str] = []
    pending: str | None = None
    for _, _, event in events:
        if isinstance(event, RunStep):
            if pending != event.node:
                path.append(event.node)
            pending = None
        else:
            if not path or path[-1] != event.source:
                path.append(event.source)
            path.append(event.target)
            pending = event.target
    return path


def _cost_steps(
    conn: Connection, trace_id: str, steps: list[RunStep]
) -> tuple[list[RunStep], bool]:
    """``steps`` with the cost and tokens of their spans and everything under each (down to the
    next step); ``True`` when the trace had more than MAX_RUN_SPANS spans (the rest uncounted)."""
    if not steps:
        return steps, False
    query = (
        select(_S.c.span_id, _S.c.parent_id, _S.c.cost_usd, _S.c.total_tokens)
        .where(_S.c.trace_id == trace_id)
        .limit(MAX_RUN_SPANS + 1)
    )
    rows = list(conn.execute(query))
    truncated = len(rows) > MAX_RUN_SPANS
    parent = {r.span_id: r.parent_id for r in rows[:MAX_RUN_SPANS]}
    is_step = {s.span_id for s in steps}
    cost: dict[str, float] = {}
    priced: set[str] = set()
    tokens: dict[str, int] = {}
    for r in rows[:MAX_RUN_SPANS]:
        owner: str | None = r.span_id
        hops = 0
        while owner is not None and owner not in is_step and hops < 10_000:
            owner, hops = parent.get(owner), hops + 1
        if owner is None or owner not in is_step:
            continue
        if r.cost_usd is not None:
            cost[owner] = cost.get(owner, 0.0) + float(r.cost_usd)
            priced.add(owner)
        tokens[owner] = tokens.get(owner, 0) + int(r.total_tokens or 0)
    out = [
        RunStep(
            s.node, s.span_id, s.start_time, s.latency_ms, s.status, s.error_type,
            cost[s.span_id] if s.span_id in priced else None, tokens.get(s.span_id, 0),
        )
        for s in steps
    ]  # fmt: skip
    return out, truncated


def _roots(conn: Connection, ids: list[str]) -> dict[str, Any]:
    """Each trace's earliest root span (no parent): status, error type, start and end."""
    query = (
        select(_S.c.trace_id, _S.c.status, _S.c.error_type, _S.c.start_time, _S.c.end_time)
        .where(_S.c.trace_id.in_(ids), _S.c.parent_id.is_(None))
        .order_by(_S.c.start_time.desc(), _S.c.id.desc())
    )
    return {r.trace_id: r for r in conn.execute(query)}  # the earliest root wins (written last)


def _run(workflow: str, t: TraceTotals, root: Any, path: list[str], truncated: bool) -> WorkflowRun:
    start, end = t.start_time, t.end_time
    outcome, error_type = "unknown", None
    if root is not None:
        start, end = float(root.start_time), float(root.end_time)
        outcome = "error" if root.status == "error" else "ok"
        error_type = root.error_type
    return WorkflowRun(
        workflow=workflow, trace_id=t.trace_id, name=t.name, start_time=start, end_time=end,
        outcome=outcome, error_type=error_type, spans=t.spans, errors=t.errors,
        input_tokens=t.input_tokens, output_tokens=t.output_tokens, total_tokens=t.total_tokens,
        cost_usd=t.cost_usd, path=tuple(path), path_truncated=truncated,
    )  # fmt: skip
