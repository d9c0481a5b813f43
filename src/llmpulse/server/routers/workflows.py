"""``/api/v1/workflows``: workflows, their flow (as data and as SVG), runs, one run's path,
branch shares over time and node rankings.

A workflow is what its branch decisions name (``record_branch`` or a LangGraph conditional
edge). The list, the flow and the branch shares come from the rollups; the runs are keyset
pages found through the branch-span index and read by trace id; the node ranking adds the cost
of what ran under each node from the latest runs only (``runs``, at most 1,000). A workflow with
no decision in the window has no flow to draw: 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from enum import Enum

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel

from llmpulse.flow import (
    DEFAULT_SAMPLED_RUNS,
    FlowView,
    NodeRank,
    branch_shares,
    flow_view,
    list_workflows,
    node_ranking,
    to_svg,
)
from llmpulse.server.deps import READ, get_store
from llmpulse.server.pagination import Page, TimeWindow, decode_cursor, page_of, time_window
from llmpulse.server.problems import Problem
from llmpulse.server.routers.metrics import MAX_BUCKETS, auto_step
from llmpulse.store import Store
from llmpulse.store.queries.workflows import WorkflowRun

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"], dependencies=[Depends(READ)])

_NAME_HELP = "The workflow (graph) name."
_SVG = "image/svg+xml"
# The picture is data: nothing in it may run or load, even opened on its own.
_SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class WorkflowOut(BaseModel):
    """A workflow that decided something in the window."""

    name: str
    decisions: int
    decision_points: int
    nodes: int


class FlowNodeOut(BaseModel):
    """A node's traffic over the window (its own spans)."""

    name: str
    calls: int
    errors: int
    error_rate: float
    p95_latency_ms: float | None
    cost_usd: float | None


class FlowEdgeOut(BaseModel):
    """A route: how often it was taken and its share of its decision."""

    source: str
    target: str
    count: int
    share: float


class FlowOut(BaseModel):
    """A workflow's nodes and routes with their traffic (``llmpulse flow --format json``)."""

    workflow: str
    start: float
    end: float
    nodes: list[FlowNodeOut]
    edges: list[FlowEdgeOut]


class WorkflowRunOut(BaseModel):
    """One run (a trace holding the workflow's decisions): outcome, totals, path."""

    workflow: str
    trace_id: str
    name: str | None
    start_time: float
    end_time: float
    duration_ms: float
    outcome: str
    error_type: str | None
    spans: int
    errors: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None
    path: list[str]
    path_truncated: bool

    @classmethod
    def of(cls, run: WorkflowRun) -> WorkflowRunOut:
        """The body of a run."""
        return cls(**asdict(run), duration_ms=run.duration_ms)


class RunStepOut(BaseModel):
    """One node execution; cost and tokens include every span under it."""

    node: str
    span_id: str
    start_time: float
    latency_ms: float
    status: str
    error_type: str | None
    cost_usd: float | None
    total_tokens: int


class RunDecisionOut(BaseModel):
    """One branch decision."""

    source: str
    target: str
    condition: str | None
    at: float
    span_id: str


class RunPathOut(BaseModel):
    """One run with all its steps and decisions in time order."""

    run: WorkflowRunOut
    steps: list[RunStepOut]
    decisions: list[RunDecisionOut]
    truncated: bool


class RouteSeriesOut(BaseModel):
    """One route per bucket: count, and share of its decision (null: not decided then)."""

    source: str
    target: str
    counts: list[int]
    shares: list[float | None]


class BranchSharesOut(BaseModel):
    """Every route of the workflow per bucket of ``step_seconds`` starting at ``buckets``."""

    workflow: str
    step_seconds: int
    buckets: list[int]
    routes: list[RouteSeriesOut]


class NodesOut(BaseModel):
    """The nodes in the order asked for, and how many of the latest runs were read."""

    workflow: str
    runs_sampled: int
    nodes: list[NodeRank]


class Outcome(str, Enum):
    """How a run ended: its root span's status, or unknown while its root is not stored."""

    ok = "ok"
    error = "error"
    unknown = "unknown"


class NodeOrder(str, Enum):
    """What the node ranking sorts by, largest first."""

    p95 = "p95"
    cost = "cost"
    calls = "calls"
    errors = "errors"
    error_rate = "error_rate"


@router.get("", response_model=Page[WorkflowOut])
def list_all(
    window: TimeWindow = Depends(time_window),
    limit: int = Query(100, ge=1, le=500),
    cursor: str | None = Query(None, max_length=1024),
    store: Store = Depends(get_store),
) -> Page[WorkflowOut]:
    """Workflows with a branch decision in the window, busiest first."""
    after = decode_cursor("workflows", cursor, (int, str))
    rows = [(WorkflowOut(**asdict(w)), (-w.decisions, w.name))
            for w in list_workflows(store, window.start, window.end)]  # fmt: skip
    if after is not None:
        rows = [r for r in rows if r[1] > (after[0], after[1])]
    return page_of("workflows", rows[: limit + 1], limit)


def _share_step(window: TimeWindow) -> int:
    step = auto_step(window)
    return max(step, 3600) if window.end - window.start > 6 * 3600 else step


def _missing(exc: ValueError) -> Problem:
    return Problem(404, str(exc), kind="not-found")


def _flow_of(
    name: str = Path(min_length=1, max_length=512, description=_NAME_HELP),
    window: TimeWindow = Depends(time_window),
    store: Store = Depends(get_store),
) -> FlowView:
    """The workflow's flow over the window (both flow routes' parameters); a 404 problem when
    it decided nothing in the window."""
    try:
        return flow_view(store, name, window.start, window.end)
    except ValueError as exc:
        raise _missing(exc) from None


@router.get("/{name}/flow", response_model=FlowOut)
def flow(view: FlowView = Depends(_flow_of)) -> FlowOut:
    """The workflow's nodes (calls, errors, p95, cost) and routes (count, share)."""
    return FlowOut.model_validate(view.as_dict())


@router.get(
    "/{name}/flow.svg",
    response_class=Response,
    responses={200: {"description": "The flow drawn as a self-contained SVG document.",
                     "content": {_SVG: {"schema": {"type": "string"}}}}},
)  # fmt: skip
def flow_svg(view: FlowView = Depends(_flow_of)) -> Response:
    """The same flow as a picture (``llmpulse flow --format svg``): no script, names as text."""
    return Response(to_svg(view), media_type=_SVG, headers=_SVG_HEADERS)


@router.get("/{name}/runs", response_model=Page[WorkflowRunOut])
def runs(
    name: str = Path(min_length=1, max_length=512, description=_NAME_HELP),
    window: TimeWindow = Depends(time_window),
    outcome: Outcome | None = Query(None, description="Only the runs that ended so."),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=1024),
    store: Store = Depends(get_store),
) -> Page[WorkflowRunOut]:
    """Runs with a decision in the window, newest first: outcome, duration, tokens, cost, path."""
    wanted = outcome.value if outcome is not None else None
    listing = f"workflow-runs:{name}:{wanted or ''}"
    after = decode_cursor(listing, cursor, (float, str))
    found = store.workflow_runs(
        name, window.start, window.end, after=after, limit=limit + 1, outcome=wanted
    )
    return page_of(listing, [(WorkflowRunOut.of(r), key) for r, key in found], limit)


@router.get("/{name}/runs/{trace_id}", response_model=RunPathOut)
def run(
    name: str = Path(min_length=1, max_length=512, description=_NAME_HELP),
    trace_id: str = Path(max_length=64),
    store: Store = Depends(get_store),
) -> RunPathOut:
    """One run's path: every node execution (costed with what ran under it) and decision."""
    got = store.workflow_run(name, trace_id)
    if got is None:
        raise Problem(404, f"no run of workflow {name!r} in trace {trace_id!r}", kind="not-found")
    return RunPathOut(
        run=WorkflowRunOut.of(got.run),
        steps=[RunStepOut(**asdict(s)) for s in got.steps],
        decisions=[RunDecisionOut(**asdict(d)) for d in got.decisions],
        truncated=got.truncated,
    )


@router.get("/{name}/branches", response_model=BranchSharesOut)
def branches(
    name: str = Path(min_length=1, max_length=512, description=_NAME_HELP),
    window: TimeWindow = Depends(time_window),
    step_seconds: int | None = Query(
        None,
        ge=60,
        le=366 * 86400,
        description="Bucket width, a multiple of 60. Default: about 300 buckets, hourly at least "
        "past a 6 h window.",
    ),
    store: Store = Depends(get_store),
) -> BranchSharesOut:
    """Each route's count and share of its decision per bucket (what ``branch_shift`` judges).

    By default hourly past a 6 h window (from the hourly rollups: 10 ms for a day, where 5 min
    buckets read every minute of it: 97 ms), as the overview does.
    """
    step = step_seconds or _share_step(window)
    if step % 60:
        raise Problem(422, f"step_seconds must be a multiple of 60, got {step}", kind="validation")
    if (window.end - window.start) / step > MAX_BUCKETS:
        raise Problem(422, f"the window holds more than {MAX_BUCKETS} buckets of {step} s; "
                      "use a larger step_seconds or a shorter window", kind="validation")  # fmt: skip
    try:
        shares = branch_shares(store, name, window.start, window.end, step)
    except ValueError as exc:
        raise _missing(exc) from None
    return BranchSharesOut(
        workflow=shares.workflow, step_seconds=shares.step, buckets=shares.buckets,
        routes=[RouteSeriesOut(**asdict(r)) for r in shares.routes],
    )  # fmt: skip


@router.get("/{name}/nodes", response_model=NodesOut)
def nodes(
    name: str = Path(min_length=1, max_length=512, description=_NAME_HELP),
    window: TimeWindow = Depends(time_window),
    order: NodeOrder = Query(NodeOrder.p95, description="Sort key, largest first."),
    runs: int = Query(
        DEFAULT_SAMPLED_RUNS, ge=1, le=1000, description="Latest runs read for the costs."
    ),
    store: Store = Depends(get_store),
) -> NodesOut:
    """The slowest (``order=p95``) or most expensive (``order=cost``: with what ran under
    them, over the sampled runs) nodes, and the rest."""
    try:
        ranked, sampled = node_ranking(store, name, window.start, window.end, runs)
    except ValueError as exc:
        raise _missing(exc) from None
    key: Callable[[NodeRank], float] = {
        NodeOrder.p95: lambda r: r.p95_latency_ms or 0.0,
        NodeOrder.cost: lambda r: r.sampled_cost_usd or 0.0,
        NodeOrder.calls: lambda r: float(r.calls),
        NodeOrder.errors: lambda r: float(r.errors),
        NodeOrder.error_rate: lambda r: r.error_rate,
    }[order]
    ranked.sort(key=lambda r: (-key(r), r.name))
    return NodesOut(workflow=name, runs_sampled=sampled, nodes=ranked)
