"""Where the read commands read: a store (``--database-url``) or a server (``--server-url``).

``stats``, ``traces``, ``export`` and ``models`` ask a :class:`Source` for records and render
them; they never know which one answered. :class:`StoreSource` calls the store's methods;
:class:`ApiSource` calls the REST API that serves the same methods (``/api/v1/metrics/summary``
is ``Store.span_stats``, ``/api/v1/traces`` is ``Store.trace_page``, ...) and rebuilds the same
records from the JSON, so both print the same thing for the same data.

Which one: a ``--database-url`` or ``--server-url`` flag (not both); without a flag,
``$LLMPULSE_SERVER_URL`` when set, else ``$LLMPULSE_DATABASE_URL``, else ``./llmpulse.db`` —
the variables an application's ``llmpulse.init()`` sends to, so the commands read where it
writes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from llmpulse.config import ENV_API_KEY, ENV_SERVER_URL
from llmpulse.errors import ApiError
from llmpulse.schema import Span, SpanEvent
from llmpulse.store import ModelRecord, SpanStats, TraceTotals

__all__ = [
    "ApiSource",
    "Source",
    "StoreSource",
    "open_source",
]

_SPAN_FIELDS = tuple(f.name for f in fields(Span))
_TRACE_FIELDS = tuple(f.name for f in fields(TraceTotals))
_STATS_FIELDS = tuple(f.name for f in fields(SpanStats))
_MODEL_FIELDS = tuple(f.name for f in fields(ModelRecord))
_ID_LENGTH = 64  # longest trace id the store keeps (the API refuses longer ones)
_TRACE_PAGE = 500  # the API's largest page of traces
_SPAN_PAGE = 1000  # and of spans
_R = TypeVar("_R")


class Source(Protocol):
    """What the read commands ask for, from a store or from a server."""

    label: str  # what the output names: the (masked) database URL, or the server's address
    where: dict[str, str]  # the same, keyed by what it is, for JSON output

    def span_stats(
        self, start: float, end: float, group_by: Sequence[str], filters: Mapping[str, str]
    ) -> list[SpanStats]: ...
    def raw_span_stats(
        self, start: float, end: float, group_by: Sequence[str], filters: Mapping[str, str]
    ) -> list[SpanStats]: ...
    def list_traces(
        self, start: float, end: float, limit: int, filters: Mapping[str, str]
    ) -> list[TraceTotals]: ...
    def get_trace(self, trace_id: str) -> list[Span]: ...
    def count_spans(self, start: float, end: float, filters: Mapping[str, str]) -> int: ...
    def iter_spans(
        self, start: float, end: float, page_size: int, filters: Mapping[str, str]
    ) -> Iterator[Span]: ...
    def list_models(self, active_only: bool) -> list[ModelRecord]: ...
    def add_model(self, name: str, values: Mapping[str, Any]) -> ModelRecord: ...
    def update_model(self, name: str, values: Mapping[str, Any]) -> ModelRecord: ...
    def flow_view(self, workflow: str, start: float, end: float) -> Any: ...
    def close(self) -> None: ...


def _exists(name: str) -> ValueError:
    return ValueError(f"model {name!r} exists; `llmpulse models update {name} ...` changes it")


def _no_model(name: str) -> ValueError:
    return ValueError(f"no model {name!r} in the catalog; `llmpulse models list` shows them")


class StoreSource:
    """A store opened by the command (closed by ``close``)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.label: str = store.url
        self.where = {"database": store.url}

    def span_stats(
        self, start: float, end: float, group_by: Sequence[str], filters: Mapping[str, str]
    ) -> list[SpanStats]:
        """Rollup totals per group (``Store.span_stats``)."""
        return list(self._store.span_stats(start, end, group_by=tuple(group_by), **filters))

    def raw_span_stats(
        self, start: float, end: float, group_by: Sequence[str], filters: Mapping[str, str]
    ) -> list[SpanStats]:
        """Raw-span totals per group (``Store.raw_span_stats``), groups without spans left out."""
        rows = self._store.raw_span_stats(start, end, group_by=tuple(group_by), **filters)
        return [r for r in rows if r.calls]

    def list_traces(
        self, start: float, end: float, limit: int, filters: Mapping[str, str]
    ) -> list[TraceTotals]:
        """The newest traces with a matching span."""
        return list(self._store.list_traces(start, end, limit=limit, **filters))

    def get_trace(self, trace_id: str) -> list[Span]:
        """Every span of the trace in start order (empty when none is stored)."""
        return list(self._store.get_trace(trace_id))

    def count_spans(self, start: float, end: float, filters: Mapping[str, str]) -> int:
        """How many spans match."""
        return int(self._store.count_spans(start, end, **filters))

    def iter_spans(
        self, start: float, end: float, page_size: int, filters: Mapping[str, str]
    ) -> Iterator[Span]:
        """Every matching span, oldest first, in keyset pages."""
        return iter(self._store.iter_spans(start, end, page_size=page_size, **filters))

    def list_models(self, active_only: bool) -> list[ModelRecord]:
        """The model catalog by name."""
        return list(self._store.list_models(active_only=active_only))

    def add_model(self, name: str, values: Mapping[str, Any]) -> ModelRecord:
        """Add a model; a ``ValueError`` when the name is taken."""
        created = self._store.add_model(name, values, at=time.time())
        if created is None:
            raise _exists(name)
        return created  # type: ignore[no-any-return]

    def update_model(self, name: str, values: Mapping[str, Any]) -> ModelRecord:
        """Change some fields of a model; a ``ValueError`` when there is no such model."""
        updated = self._store.update_model(name, values, at=time.time())
        if updated is None:
            raise _no_model(name)
        return updated  # type: ignore[no-any-return]

    def flow_view(self, workflow: str, start: float, end: float) -> Any:
        """The workflow's ``FlowView`` from the rollups (``llmpulse.flow.flow_view``)."""
        from llmpulse.flow import flow_view

        return flow_view(self._store, workflow, start, end)

    def close(self) -> None:
        """Close the store."""
        self._store.close()


class ApiSource:
    """A server's REST API, through an ``ApiClient`` (closed by ``close``)."""

    def __init__(self, client: Any) -> None:
        self._api = client
        self.label: str = client.url
        self.where = {"server": client.url}

    def _stats(self, path: str, start: float, end: float, group_by: Sequence[str],
               filters: Mapping[str, str]) -> list[SpanStats]:  # fmt: skip
        params = {"start": repr(start), "end": repr(end), "group_by": list(group_by), **filters}
        return [_record(SpanStats, _STATS_FIELDS, r) for r in self._api.get(path, params)]

    def span_stats(
        self, start: float, end: float, group_by: Sequence[str], filters: Mapping[str, str]
    ) -> list[SpanStats]:
        """``GET /api/v1/metrics/summary``."""
        return self._stats("/api/v1/metrics/summary", start, end, group_by, filters)

    def raw_span_stats(
        self, start: float, end: float, group_by: Sequence[str], filters: Mapping[str, str]
    ) -> list[SpanStats]:
        """``GET /api/v1/metrics/raw-summary``."""
        return self._stats("/api/v1/metrics/raw-summary", start, end, group_by, filters)

    def list_traces(
        self, start: float, end: float, limit: int, filters: Mapping[str, str]
    ) -> list[TraceTotals]:
        """``GET /api/v1/traces``, page after page until ``limit`` traces."""
        params = {"start": repr(start), "end": repr(end), "limit": min(limit, _TRACE_PAGE),
                  **filters}  # fmt: skip
        out: list[TraceTotals] = []
        for item in self._api.pages("/api/v1/traces", params):
            out.append(_record(TraceTotals, _TRACE_FIELDS, item))
            if len(out) >= limit:
                break
        return out

    def get_trace(self, trace_id: str) -> list[Span]:
        """``GET /api/v1/traces/{id}/spans``, every page (empty when the trace is unknown)."""
        if not trace_id or len(trace_id) > _ID_LENGTH:
            return []  # no stored trace has such an id
        path = f"/api/v1/traces/{quote(trace_id, safe='')}/spans"
        try:
            return [_span(item) for item in self._api.pages(path, {"limit": _SPAN_PAGE})]
        except ApiError as exc:
            if exc.status == 404:
                return []
            raise

    def count_spans(self, start: float, end: float, filters: Mapping[str, str]) -> int:
        """Spans matching, from ``GET /api/v1/metrics/raw-summary`` without a group."""
        return sum(r.calls for r in self.raw_span_stats(start, end, (), filters))

    def iter_spans(
        self, start: float, end: float, page_size: int, filters: Mapping[str, str]
    ) -> Iterator[Span]:
        """``GET /api/v1/spans?order=asc``, a page at a time (the store's own order)."""
        params = {"start": repr(start), "end": repr(end), "order": "asc",
                  "limit": min(page_size, _SPAN_PAGE), **filters}  # fmt: skip
        for item in self._api.pages("/api/v1/spans", params):
            yield _span(item)

    def list_models(self, active_only: bool) -> list[ModelRecord]:
        """``GET /api/v1/models``."""
        params = {"active_only": "true"} if active_only else {}
        models = self._api.get("/api/v1/models", params)
        return [_record(ModelRecord, _MODEL_FIELDS, m) for m in models]

    def add_model(self, name: str, values: Mapping[str, Any]) -> ModelRecord:
        """``POST /api/v1/models`` (409 when the name is taken)."""
        try:
            body = self._api.post("/api/v1/models", {"name": name, **values})
        except ApiError as exc:
            if exc.status == 409:
                raise _exists(name) from None
            raise
        return _record(ModelRecord, _MODEL_FIELDS, body)

    def update_model(self, name: str, values: Mapping[str, Any]) -> ModelRecord:
        """``PATCH /api/v1/models/{name}`` (404 when there is no such model)."""
        try:
            body = self._api.patch(f"/api/v1/models/{quote(name, safe='')}", values)
        except ApiError as exc:
            if exc.status == 404:
                raise _no_model(name) from None
            raise
        return _record(ModelRecord, _MODEL_FIELDS, body)

    def flow_view(self, workflow: str, start: float, end: float) -> Any:
        """``GET /api/v1/workflows/{name}/flow``, as the same ``FlowView`` (a workflow that
        decided nothing in the window is the server's 404, worded as the store words it)."""
        from llmpulse.flow import FlowEdge, FlowNode, FlowView

        path = f"/api/v1/workflows/{quote(workflow, safe='')}/flow"
        body = self._api.get(path, {"start": repr(start), "end": repr(end)})
        try:
            nodes = [FlowNode(**n) for n in body["nodes"]]
            edges = [FlowEdge(**e) for e in body["edges"]]
            return FlowView(body["workflow"], body["start"], body["end"], nodes, edges)
        except (KeyError, TypeError) as exc:
            raise ApiError(
                f"the server's flow lacks {exc}: is it the same llmpulse version?"
            ) from None

    def close(self) -> None:
        """Close the HTTP client."""
        self._api.close()


def _record(cls: type[_R], names: Sequence[str], item: Mapping[str, Any]) -> _R:
    """``cls`` from the fields of an API answer (extra fields, such as duration_ms, ignored)."""
    try:
        return cls(**{name: item[name] for name in names})
    except (KeyError, TypeError) as exc:
        raise ApiError(
            f"the server's answer lacks {exc}: is it the same llmpulse version?"
        ) from None


def _span(item: Mapping[str, Any]) -> Span:
    """A ``Span`` from a ``SpanOut`` body (its ``latency_ms`` is computed again)."""
    try:
        values = {name: item[name] for name in _SPAN_FIELDS}
        values["events"] = [
            SpanEvent(name=e["name"], time=e["time"], attributes=e.get("attributes") or {})
            for e in item["events"]
        ]
    except (KeyError, TypeError) as exc:
        raise ApiError(f"the server's span lacks {exc}: is it the same llmpulse version?") from None
    return Span(**values)


def open_source(
    database_url: str | None, server_url: str | None, api_key: str | None, command: str
) -> Source:
    """The store or server the command reads (see the module docstring); a ``ValueError`` for
    contradictory flags, an llmpulse error when it cannot be opened."""
    from llmpulse.cli._extras import require_extra
    from llmpulse.cli._options import open_existing_store
    from llmpulse.config import resolve_database_url

    if database_url is not None and server_url:
        raise ValueError(
            "give --database-url or --server-url, not both: the first reads a database "
            "directly, the second asks an `llmpulse serve` server"
        )
    server = server_url or (None if database_url is not None else os.environ.get(ENV_SERVER_URL))
    if not server:
        if api_key:
            raise ValueError(
                "--api-key goes with --server-url (or $LLMPULSE_SERVER_URL): a database read "
                "directly needs no key"
            )
        return StoreSource(open_existing_store(resolve_database_url(database_url)))
    require_extra("client", f"{command} --server-url")
    from llmpulse.cli._api import ApiClient

    return ApiSource(ApiClient(server, api_key or os.environ.get(ENV_API_KEY)))
