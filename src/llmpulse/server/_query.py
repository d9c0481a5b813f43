"""Refuse query parameters a route does not take, and single values given twice.

FastAPI ignores ``?modle=gpt-4o`` (a typo) and keeps the last of ``?model=a&model=b``, so the
caller gets an answer for a question they did not ask. This ASGI middleware answers 422 naming
the parameter instead; parameters declared as lists (``?group_by=model&group_by=kind``) repeat
freely.
"""

from __future__ import annotations

import typing
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from llmpulse.server.problems import Problem, problem_response

__all__ = ["SingleValuedQuery"]


def _params(dependant: Dependant) -> Iterator[Any]:
    yield from dependant.query_params
    for sub in dependant.dependencies:
        yield from _params(sub)


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (list, tuple, set, frozenset):
        return True
    return any(_is_list(arg) for arg in typing.get_args(annotation))


class SingleValuedQuery:
    """ASGI middleware: 422 for a query parameter the matched route does not declare, or a
    single-valued one given twice."""

    def __init__(self, app: ASGIApp, routes: list[APIRoute]) -> None:
        self.app = app
        self.routes: list[tuple[APIRoute, set[str], set[str]]] = []
        for route in routes:
            params = list(_params(route.dependant))
            known = {p.alias for p in params}
            single = {p.alias for p in params if not _is_list(p.field_info.annotation)}
            self.routes.append((route, known, single))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            problem = self._problem(scope)
            if problem is not None:
                await problem_response(Request(scope), problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, scope: Scope) -> Problem | None:
        pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        counts = Counter(k for k, _ in pairs)
        for route, known, single in self.routes:
            if scope["method"] in (route.methods or ()) and route.path_regex.match(scope["path"]):
                unknown = sorted(set(counts) - known)
                if unknown:
                    return _invalid(unknown, "not a parameter of this endpoint")
                twice = sorted(k for k in single if counts.get(k, 0) > 1)
                return _invalid(twice, "give this query parameter once") if twice else None
        return None


def _invalid(names: list[str], why: str) -> Problem:
    return Problem(422, f"{names[0]!r}: {why}", kind="validation", title="Request is not valid",
                   errors=[{"field": k, "msg": why} for k in names])  # fmt: skip
