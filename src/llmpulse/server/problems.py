"""Error bodies: RFC 9457 problem details (``application/problem+json``) for every failure.

Every error the server returns has the same shape::

    {"type": "urn:llmpulse:problem:validation", "title": "Request is not valid",
     "status": 422, "detail": "spans[3].start_time: Input should be a valid number",
     "instance": "/api/v1/ingest", "errors": [{"loc": [...], "msg": "...", "type": "..."}]}

Routers raise ``Problem`` (or FastAPI's ``HTTPException``, which is translated). Bad input is
4xx with the field named; a database that cannot be reached is 503 with ``Retry-After`` (one
without the llmpulse schema, or with an older one, too: its detail names the command to run); any
other exception is a 500 whose body says only "internal error" (the traceback goes to the log,
never to the client).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmpulse.errors import ConfigError, SchemaNotCurrentError, StoreError, StoreUnavailableError

__all__ = [
    "PROBLEM_JSON",
    "PROBLEM_RESPONSES",
    "Problem",
    "install",
    "problem_response",
    "store_unavailable_detail",
]

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TYPE = "urn:llmpulse:problem:"

_PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status"],
}
# Declared on every route, so the OpenAPI document says what an error body looks like.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": HTTPStatus(status).phrase,
             "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}
    for status in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
}  # fmt: skip


class Problem(Exception):
    """An error answer: ``raise Problem(404, "no trace abc")``.

    ``kind`` becomes the problem type (``urn:llmpulse:problem:<kind>``); extra keyword
    arguments become members of the body; ``headers`` go on the response (``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.title = title
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    """The ``application/problem+json`` response for ``problem``."""
    phrase = (
        HTTPStatus(problem.status).phrase
        if problem.status in HTTPStatus._value2member_map_
        else "Error"
    )
    body: dict[str, Any] = {
        "type": _TYPE + problem.kind if problem.kind else "about:blank",
        "title": problem.title or phrase,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
        **problem.extensions,
    }
    return JSONResponse(body, status_code=problem.status, headers=problem.headers,
                        media_type=PROBLEM_JSON)  # fmt: skip


def _loc(loc: Sequence[Any]) -> str:
    """``("body", "spans", 3, "start_time")`` -> ``spans[3].start_time``."""
    out = ""
    for part in loc:
        if part in ("body", "query", "path", "header") and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "request"


def validation_problem(errors: Sequence[Mapping[str, Any]], *, status: int = 422) -> Problem:
    """A problem naming each invalid field (``errors`` as pydantic reports them)."""
    listed = [
        {"loc": list(e.get("loc", ())), "field": _loc(e.get("loc", ())), "msg": str(e.get("msg")),
         "type": str(e.get("type"))}
        for e in errors[:50]
    ]  # fmt: skip
    first = listed[0] if listed else {"field": "request", "msg": "invalid"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Problem(
        status, f"{first['field']}: {first['msg']}{more}", kind="validation",
        title="Request is not valid", errors=listed,
    )  # fmt: skip


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(request, exc)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.url.path}"
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
        # Starlette's Allow names the methods of the first route matching the path; a path
        # served by several routes (GET and POST /keys) must list them all.
        allowed = sorted(
            {m for r in getattr(request.app.state, "api_routes", ())
             if r.path_regex.match(request.url.path) for m in (r.methods or ())}
        )  # fmt: skip
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    return problem_response(request, Problem(exc.status_code, detail, headers=headers))


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{**e, "input": None} for e in exc.errors()]
    # A body that is not JSON at all is a 400 (malformed), not a 422 (well-formed but wrong).
    status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
    return problem_response(request, validation_problem(errors, status=status))


async def _on_value(request: Request, exc: Exception) -> JSONResponse:
    # The store raises ValueError for a filter or window it cannot answer: the caller's input.
    return problem_response(request, Problem(400, str(exc) or "invalid value", kind="bad-request"))


def store_unavailable_detail(exc: StoreUnavailableError) -> str:
    """Log why the store cannot be used (the URL and reason are for the operator) and return
    the detail a client is told: what to run when the schema is missing or behind, else to
    retry; never where the database is."""
    log.warning("Store unavailable: %s", exc)
    # A database without the llmpulse schema (or with an older one) will not heal by itself:
    # the answer says what an operator must run.
    if isinstance(exc, SchemaNotCurrentError):
        return f"the database {exc.problem}"
    return "the database is unavailable; retry later"


def _retry_after(request: Request) -> str:
    """The server's Retry-After (``LLMPULSE_RETRY_AFTER_SECONDS``), as every 503 sends it."""
    state = getattr(request.app.state, "llmpulse", None)
    return str(getattr(getattr(state, "settings", None), "retry_after_seconds", 1))


async def _on_unavailable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreUnavailableError)
    return problem_response(
        request,
        Problem(
            503, store_unavailable_detail(exc), kind="store-unavailable",
            headers={"Retry-After": _retry_after(request)},
        ),
    )  # fmt: skip


async def _on_store_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused or failed this request: the operator's log gets its text (which
    # names the database and the statement), the client a 503 to retry, never a 500.
    log.error("Store error on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        request,
        Problem(
            503, "the database could not answer this request; retry later",
            kind="store-error", headers={"Retry-After": _retry_after(request)},
        ),
    )  # fmt: skip


async def _on_internal(request: Request, exc: Exception) -> JSONResponse:
    log.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, Problem(500, "internal error", kind="internal"))


def install(app: FastAPI) -> None:
    """Register the problem-details handlers on ``app``."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ValueError, _on_value)
    app.add_exception_handler(ConfigError, _on_value)
    app.add_exception_handler(StoreUnavailableError, _on_unavailable)
    app.add_exception_handler(StoreError, _on_store_error)
    app.add_exception_handler(Exception, _on_internal)
