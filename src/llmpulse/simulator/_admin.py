"""Admin routes under /_sim, to steer a simulator running as a separate process.

=====================  ========  =================================================================
route                  method    body / answer
=====================  ========  =================================================================
``/_sim/faults``       GET       ``?model=NAME`` optional; answers ``{"model", "faults"}``
``/_sim/faults``       POST      ``{"model": null, "faults": {...}, "replace": false}``: merge the
                                 given settings into the faults in force (or replace them)
``/_sim/fail_next``    POST      ``{"n": 3, "status": 429, "retry_after": 1.0, "model": null,
                                 "kind": null, "delay_s": 0}``; answers ``{"pending": N}``
``/_sim/requests``     GET       ``{"requests": [...]}``: the request log
``/_sim/reset``        POST      forget log, queued failures, buckets; faults back to the config's
``/_sim/health``       GET       ``{"ok": true, "models": [...]}``
=====================  ========  =================================================================
"""

from __future__ import annotations

import json
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llmpulse.errors import SimulatorError
from llmpulse.simulator._config import Faults
from llmpulse.simulator._engine import Engine

__all__ = ["admin_routes"]


def admin_routes(engine: Engine) -> list[Route]:
    """The /_sim routes: read and change faults, queue failures, read the log, reset."""

    async def faults(request: Request) -> Response:
        model = request.query_params.get("model")
        if request.method == "POST":
            try:
                body = await request.json()
                if not isinstance(body, dict):
                    raise SimulatorError(
                        'send a JSON object: {"model": null, "faults": {...}, "replace": false}'
                    )
                model = body.get("model")
                base = Faults() if body.get("replace") else engine.faults_for(model)
                engine.set_faults(
                    Faults.from_dict(body.get("faults") or {}, base=base), model=model
                )
            except (SimulatorError, json.JSONDecodeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"model": model, "faults": engine.faults_for(model).to_dict()})

    async def fail_next(request: Request) -> Response:
        try:
            body = await request.json()
            engine.fail_next(
                int(body.get("n", 1)),
                status=body.get("status"),
                kind=body.get("kind"),
                retry_after_s=float(body.get("retry_after", 1.0)),
                delay_s=float(body.get("delay_s", 0.0)),
                model=body.get("model"),
            )
        except (SimulatorError, json.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"pending": engine.pending_failures()})

    async def requests(request: Request) -> Response:
        return JSONResponse({"requests": [asdict(r) for r in engine.requests()]})

    async def reset(request: Request) -> Response:
        engine.reset()
        engine.restore_faults()
        return JSONResponse({"ok": True})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "models": list(engine.config.models)})

    return [
        Route("/_sim/faults", faults, methods=["GET", "POST"]),
        Route("/_sim/fail_next", fail_next, methods=["POST"]),
        Route("/_sim/requests", requests, methods=["GET"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/health", health, methods=["GET"]),
    ]
