"""Workflow runs: which traces ran a workflow, how each ended, what it cost, the path it took.

A workflow's decision points are the branch spans named ``"<workflow>:<node>"``; a *run* of
the workflow is a trace holding at least one of its decisions. Finding a window's runs reads
the partial index ``ix_spans_branch_name_start_time`` (``name, start_time`` of branch spans
only: ingest of every other span pays nothing for it) backwards, one range per decision point,
only as far as the page needs.
Everything else about a page of runs is read by ``trace_id`` (its index): totals, the root
span, and the workflow's steps. No query here reads spans outside the traces it was given.

* A run's **outcome** is its root span's status (``unknown`` while no root span is stored: the
  run has not ended, or its root was lost); its duration is the root's, its tokens and cost
  the sums over every span of the trace (the model calls inside the nodes included). The
  counts, tokens and first start / last end are the trace's ``traces`` row (store/_traces.py,
  kept at ingest); the cost alone is summed from the spans (see ``_totals``).
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
from llmpulse.store._traces import TRACE_COLUMNS
from llmpulse.store.models import RollupKeyRow, SpanRow, TraceRow
from llmpulse.store.queries.browse import TraceTotals, _summary

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
_T = TraceRow.__table__

WORKFLOW = "llmpulse.workflow"
NODE = "langgraph.node"
CONDITION = "llmpulse.branch.condition"
MAX_PATH = 100  # nodes of a run's path in a list of runs (the run's own page has them all)
MAX_RUN_SPANS = 200_000  # spans read to cost the steps of one run, or of the sampled runs
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
    outcome: str | None = None,
) -> list[tuple[str, float]]:
    """(trace_id, last decision's time) of the runs with a decision in ``[start, end)``, newest
    first, keyed by (last decision's time in the window, trace_id); only those that ended with
    ``outcome`` (ok, error, unknown) when given.

    Reads each decision point's index range backwards, a chunk at a time, until ``limit`` runs
    are found: a page costs about ``limit`` index entries per decision point, however many
    runs the window holds (a GROUP BY over the window's decisions grew with the window: 325 ms
    for a week of 20,000 runs, see docs/benchmarks.md).
    """
    names = shape.branch_names
    if not names or limit <= 0:
        return []
    cursor = (float(after[0]), str(after[1])) if after is not None else None
    high = cursor[0] if cursor is not None else None  # rows at or below this time
    chunk = max(2 * limit, 32)
    seen: set[str] = set()
    found: list[tuple[str, float]] = []
    while len(found) < limit:
        rows, frontier = _decisions_below(conn, names, start, end, high, chunk)
        fresh = [(t, trace) for t, trace in rows if trace not in seen and t > frontier]
        if cursor is not None:
            fresh = [(t, trace) for t, trace in fresh if (t, trace) < cursor]
        firsts: dict[str, float] = {}
        for t, trace in sorted(fresh, reverse=True):
            firsts.setdefault(trace, t)
        keep = _not_shown(conn, names, start, end, firsts, cursor)
        if outcome is not None and keep:
            keep = _ended(conn, keep, outcome)
        before = len(found)
        for trace, t in sorted(firsts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True):
            seen.add(trace)
            if trace in keep:
                found.append((trace, t))
        if frontier == float("-inf"):
            break  # every decision point's range is read to the start of the window
        if high == frontier or len(found) == before:
            chunk *= 2  # a chunk at one instant, or of runs that do not match: read more
        high = frontier
    return found[:limit]


def _ended(conn: Connection, traces: set[str], outcome: str) -> set[str]:
    """The runs among ``traces`` whose outcome is ``outcome`` (their root span's status)."""
    status = {trace: root.status for trace, root in _roots(conn, list(traces)).items()}
    if outcome == "unknown":
        return {t for t in traces if t not in status}
    return {t for t in traces if t in status and (status[t] == "error") == (outcome == "error")}


def _decisions_below(
    conn: Connection,
    names: Sequence[str],
    start: float,
    end: float,
    high: float | None,
    chunk: int,
) -> tuple[list[tuple[float, str]], float]:
    """Up to ``chunk`` newest decisions per decision point at or below ``high``, and the time
    above which every decision point was read completely (``-inf``: all of them were)."""
    rows: list[tuple[float, str]] = []
    frontier = float("-inf")
    for name in names:
        clauses: list[Any] = [
            _IS_BRANCH,
            _S.c.name == name,
            _S.c.start_time >= start,
            _S.c.start_time < end,
        ]
        if high is not None:
            clauses.append(_S.c.start_time <= high)
        query = (
            select(_S.c.start_time, _S.c.trace_id)
            .where(*clauses)
            .order_by(_S.c.start_time.desc())
            .limit(chunk)
        )
        got = [(float(t), str(trace)) for t, trace in conn.execute(query)]
        rows += got
        if len(got) == chunk:
            frontier = max(frontier, got[-1][0])
    # Rows at the frontier itself may continue past the chunk: they are read again next time.
    return rows, frontier


def _not_shown(
    conn: Connection,
    names: Sequence[str],
    start: float,
    end: float,
    firsts: dict[str, float],
    cursor: tuple[float, str] | None,
) -> set[str]:
    """The traces of ``firsts`` whose last decision in the window sorts after ``cursor`` (not on
    an earlier page); all of them on the first page."""
    if cursor is None or not firsts:
        return set(firsts)
    # No condition on the kind (it is checked here): the few traces are read by trace id, where
    # SQLite would otherwise walk the branch index over the whole window (116 ms for a week).
    query = select(_S.c.trace_id, _S.c.start_time, _S.c.kind).where(
        _S.c.trace_id.in_(list(firsts)), _S.c.name.in_(list(names)),
        _S.c.start_time >= start, _S.c.start_time < end,
    )  # fmt: skip
    last: dict[str, float] = {}
    for trace, t, kind in conn.execute(query):
        if kind == "branch":
            last[trace] = max(last.get(trace, float(t)), float(t))
    return {trace for trace, t in last.items() if (t, trace) < cursor}


def runs_of(conn: Connection, shape: WorkflowShape, trace_ids: Sequence[str]) -> list[WorkflowRun]:
    """The runs ``trace_ids`` (in that order) with outcome, totals and path (up to MAX_PATH)."""
    if not trace_ids:
        return []
    ids = list(trace_ids)
    roots = _roots(conn, ids)
    by_id = _totals(conn, ids, roots)
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
    when the trace is not stored or holds no decision of the workflow. The first MAX_RUN_SPANS
    steps and decisions of a longer run (``truncated``)."""
    query = (
        select(*_step_columns())
        .where(_S.c.trace_id == trace_id, _relevant(shape))
        .order_by(_S.c.start_time, _S.c.id)
        .limit(MAX_RUN_SPANS + 1)
    )
    rows = list(conn.execute(query))
    long = len(rows) > MAX_RUN_SPANS
    steps, decisions = _events(shape, rows[:MAX_RUN_SPANS])
    if not decisions:
        return None
    roots = _roots(conn, [trace_id])
    summary = _totals(conn, [trace_id], roots)[trace_id]
    steps, truncated = _cost_steps(conn, [trace_id], steps)
    path = _path(steps, decisions)
    run = _run(shape.workflow, summary, roots.get(trace_id), path, long)
    return RunPath(run, steps, decisions, truncated or long)


def node_samples(
    conn: Connection, shape: WorkflowShape, trace_ids: Sequence[str]
) -> dict[str, list[RunStep]]:
    """Every step of the runs ``trace_ids``, costed, grouped by node (what the node ranking
    sums): two queries by trace id for all the runs, at most MAX_RUN_SPANS spans costed."""
    if not trace_ids:
        return {}
    ids = list(trace_ids)
    rows: dict[str, list[Any]] = {i: [] for i in ids}
    query = (
        select(*_step_columns())
        .where(_S.c.trace_id.in_(ids), _relevant(shape))
        .order_by(_S.c.trace_id, _S.c.start_time, _S.c.id)
    )
    for row in conn.execute(query):
        rows[row.trace_id].append(row)
    steps = [s for i in ids for s in _events(shape, rows[i])[0]]
    out: dict[str, list[RunStep]] = {}
    for step in _cost_steps(conn, ids, steps)[0]:
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
    conn: Connection, trace_ids: list[str], steps: list[RunStep]
) -> tuple[list[RunStep], bool]:
    """``steps`` with the cost and tokens of their spans and everything under each (down to the
    next step); ``True`` when the traces had more than MAX_RUN_SPANS spans (the rest uncounted)."""
    if not steps:
        return steps, False
    query = (
        select(_S.c.span_id, _S.c.parent_id, _S.c.cost_usd, _S.c.total_tokens)
        .where(_S.c.trace_id.in_(trace_ids))
        .limit(MAX_RUN_SPANS + 1)
    )
    rows = list(conn.execute(query))
    truncated = len(rows) > MAX_RUN_SPANS
    rows = rows[:MAX_RUN_SPANS]
    parent = {r.span_id: r.parent_id for r in rows}
    is_step = {s.span_id for s in steps}
    owner_of: dict[str, str | None] = {}

    def owner(span_id: str) -> str | None:
        """The nearest step at or above ``span_id`` (memoised: each span is walked once)."""
        chain: list[str] = []
        node: str | None = span_id
        found: str | None = None
        while node is not None and len(chain) < 10_000:
            if node in owner_of:
                found = owner_of[node]
                break
            chain.append(node)
            if node in is_step:
                found = node
                break
            node = parent.get(node)
        for seen in chain:
            owner_of[seen] = found
        return found

    cost: dict[str, float] = {}
    tokens: dict[str, int] = {}
    for r in rows:
        step = owner(r.span_id)
        if step is None:
            continue
        if r.cost_usd is not None:
            cost[step] = cost.get(step, 0.0) + float(r.cost_usd)
        tokens[step] = tokens.get(step, 0) + int(r.total_tokens or 0)
    out = [
        RunStep(
            s.node, s.span_id, s.start_time, s.latency_ms, s.status, s.error_type,
            cost.get(s.span_id), tokens.get(s.span_id, 0),
        )
        for s in steps
    ]  # fmt: skip
    return out, truncated


def _roots(conn: Connection, ids: list[str]) -> dict[str, Any]:
    """Each trace's earliest root span (no parent): name, service, status, error type, start
    and end."""
    query = (
        select(
            _S.c.trace_id, _S.c.name, _S.c.service, _S.c.status, _S.c.error_type,
            _S.c.start_time, _S.c.end_time,
        )
        .where(_S.c.trace_id.in_(ids), _S.c.parent_id.is_(None))
        .order_by(_S.c.start_time.desc(), _S.c.id.desc())
    )  # fmt: skip
    return {r.trace_id: r for r in conn.execute(query)}  # the earliest root wins (written last)


def _totals(conn: Connection, ids: list[str], roots: dict[str, Any]) -> dict[str, TraceTotals]:
    """The totals of the traces ``ids`` that have a span stored, named after their ``roots``.

    First start, last end, spans, errors and tokens are the ``traces`` rows ingest keeps: a
    minimum, a maximum and sums of whole numbers, the same whatever order the spans arrived
    in. The cost is summed from the spans, as before the table: a sum of floats depends on the
    order of its terms, and a row adds each batch's sum to the total so far, which for a
    trace written in several batches can differ from SUM() over its spans in the last digit
    (0.1 then 0.2 + 0.3: 0.6 against 0.6000000000000001).
    """
    # Two queries: SQLite took twice as long to join the traces rows to the grouped costs.
    by_span = select(_S.c.trace_id, func.sum(_S.c.cost_usd)).where(_S.c.trace_id.in_(ids))
    cost: dict[str, Any] = {t: c for t, c in conn.execute(by_span.group_by(_S.c.trace_id))}
    columns = [_T.c[c] for c in TRACE_COLUMNS if c != "cost_usd"]
    out = {}
    for r in conn.execute(select(*columns).where(_T.c.trace_id.in_(ids))):
        if r.trace_id not in cost:
            continue  # no span left (retention is fixing the row)
        root = roots.get(r.trace_id)
        name, service = (root.name, root.service) if root is not None else (None, None)
        out[r.trace_id] = _summary(r, name, service, cost[r.trace_id])
    return out


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
