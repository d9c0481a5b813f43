"""``GET /metrics``: Prometheus exposition of what the server ingested and how it is doing.

Public (Prometheus scrapes without a key), like health. The names are listed in
``llmpulse.prometheus`` (``llm_*``) and ``llmpulse.server.metrics`` (``llmpulse_*``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from llmpulse.prometheus import metrics_response
from llmpulse.server.deps import PUBLIC, get_state
from llmpulse.server.metrics import metrics_of

__all__ = ["router"]

router = APIRouter(prefix="", tags=["metrics"])

_TEXT = "text/plain; version=0.0.4; charset=utf-8"
_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"description": "The metrics in the Prometheus text format, or in "
                     "OpenMetrics when the Accept header asks for it.",
                     "content": {_TEXT: {"schema": {"type": "string"}},
                                 _OPENMETRICS: {"schema": {"type": "string"}}}}},
    **PUBLIC,
)  # fmt: skip
async def metrics(request: Request) -> Response:
    """Every ``llm_*`` and ``llmpulse_*`` series, merged across workers under ``--workers``."""
    server_metrics = metrics_of(request.app)
    server_metrics.watch_gate(get_state(request).gate)
    body, content_type = await run_in_threadpool(
        metrics_response, server_metrics.registry, request.headers.get("accept"),
        this_process=(server_metrics.gate_collector,),
    )  # fmt: skip
    return Response(body, media_type=content_type)
