"""The REST API over a known store: filters, windows, cursor pages, trees, runs, metrics,
models, dashboard data and regression detection — each answer checked against the data."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from llmpulse.schema import MetricPoint, Run, Span
from llmpulse.server.auth import generate_key
from llmpulse.store import Store

from .conftest import bearer

NOW = time.time() // 3600 * 3600 - 7200  # two whole hours ago: inside every default window
DAY = 86400.0

# (trace, model, kind, status, prompt_version, session, user, service)
TRACES = [
    ("tA", "gpt-4o", "llm", "ok", "v1", "sess-1", "u1", "api"),
    ("tB", "gpt-4o-mini", "llm", "error", "v2", "sess-1", "u2", "api"),
    ("tC", "claude-3-5-sonnet", "chain", "ok", "v1", "sess-2", "u1", "worker"),
    ("tD", "gpt-4o", "tool", "ok", "v3", "sess-3", "u3", "worker"),
]


def _spans() -> list[Span]:
    out = []
    for i, (trace, model, kind, status, pv, sess, user, svc) in enumerate(TRACES):
        t = NOW + i * 60
        out.append(Span(trace, f"{trace}-root", f"root-{trace}", t, t + 2, kind="chain",
                        service=svc, session_id=sess, user_id=user))  # fmt: skip
        out.append(
            Span(trace, f"{trace}-llm", "chat", t + 0.5, t + 1.5, kind=kind, parent_id=f"{trace}-root",
                 status=status, model=model, prompt_version=pv, session_id=sess, user_id=user,
                 service=svc, input_tokens=100 * (i + 1), output_tokens=10, cost_usd=0.01 * (i + 1))
        )  # fmt: skip
    return out


@pytest.fixture
def loaded(store: Store) -> Store:
    """A store holding four small traces, two runs and a metric series."""
    runs = [
        Run("r1", "eval-1", NOW, kind="benchmark", model="gpt-4o", status="finished",
            metrics={"accuracy": 0.9}),
        Run("r2", "train-1", NOW + 10, kind="experiment", model="claude-3-5-sonnet",
            status="running"),
    ]  # fmt: skip
    points = [MetricPoint("loss", 1.0 / (s + 1), NOW + s, run_id="r2", step=s) for s in range(25)]
    store.write(spans=_spans(), runs=runs, points=points)
    return store


@pytest.fixture
def api(loaded: Store, make_client: Callable[..., TestClient]) -> TestClient:
    """A client over the loaded store, authenticated with a read key."""
    key, _ = generate_key(loaded, "reader", ["read"])
    c = make_client(loaded)
    c.headers.update(bearer(key))
    return c


def _walk(api: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a listing, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        query = dict(params) | ({"cursor": cursor} if cursor else {})
        response = api.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the listing never ended")


class TestTraces:
    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({}, ["tD", "tC", "tB", "tA"]),
            ({"model": "gpt-4o"}, ["tD", "tA"]),
            ({"kind": "tool"}, ["tD"]),
            ({"status": "error"}, ["tB"]),
            ({"prompt_version": "v1"}, ["tC", "tA"]),
            ({"session_id": "sess-1"}, ["tB", "tA"]),
            ({"user_id": "u1"}, ["tC", "tA"]),
            ({"service": "worker"}, ["tD", "tC"]),
            ({"name": "root-tB"}, ["tB"]),
            ({"model": "gpt-4o", "service": "api"}, ["tA"]),
            ({"model": "no-such-model"}, []),
        ],
    )
    def test_filters(self, api: TestClient, params: dict[str, str], expected: list[str]) -> None:
        """Each filter keeps exactly the traces with a matching span, newest first."""
        got = _walk(api, "/api/v1/traces", **params, limit=2)
        assert [t["trace_id"] for t in got] == expected

    def test_minimum_latency_and_cost_are_on_the_whole_trace(
        self, api: TestClient, loaded: Store
    ) -> None:
        """min_latency_ms keeps traces lasting at least that long (first start to last end),
        min_cost_usd those whose spans cost that much together (an unpriced trace never does);
        they combine with the span filters and page like the rest."""
        t = NOW + 300
        loaded.write(spans=[
            Span("tE", "tE-root", "root-tE", t, t + 5, kind="chain", service="api"),
            Span("tE", "tE-llm", "chat", t + 1, t + 4.5, kind="llm", parent_id="tE-root",
                 model="gpt-4o", input_tokens=10, output_tokens=10),
        ])  # fmt: skip
        cases = [
            ({"min_latency_ms": 3000}, ["tE"]),
            ({"min_latency_ms": 2000}, ["tE", "tD", "tC", "tB", "tA"]),
            ({"min_latency_ms": 0.5}, ["tE", "tD", "tC", "tB", "tA"]),
            ({"min_cost_usd": 0.025}, ["tD", "tC"]),
            ({"min_cost_usd": 0}, ["tD", "tC", "tB", "tA"]),
            ({"min_cost_usd": 0.025, "model": "gpt-4o"}, ["tD"]),
            ({"min_cost_usd": 0.005, "min_latency_ms": 3000}, []),
        ]
        for params, expected in cases:
            got = _walk(api, "/api/v1/traces", **params, limit=1)
            assert [x["trace_id"] for x in got] == expected, params
        for bad in [{"min_cost_usd": -1}, {"min_latency_ms": "nan"}, {"min_latency_ms": "inf"},
                    {"min_cost_usd": "cheap"}]:  # fmt: skip
            answer = api.get("/api/v1/traces", params=bad)
            assert answer.status_code == 422, bad
            assert answer.headers["content-type"] == "application/problem+json"

    def test_totals_and_root(self, api: TestClient) -> None:
        """A trace carries its root span's name and service and totals over all its spans."""
        trace = api.get("/api/v1/traces/tB").json()
        assert (trace["name"], trace["service"], trace["spans"], trace["errors"]) == (
            "root-tB", "api", 2, 1)  # fmt: skip
        assert trace["input_tokens"] == 200 and trace["cost_usd"] == pytest.approx(0.02)
        assert trace["duration_ms"] == pytest.approx(2000.0)
        assert api.get("/api/v1/traces/nope").status_code == 404

    def test_time_window(self, api: TestClient) -> None:
        """start/end (Unix seconds or ISO 8601) bound the listing; end before start is 422."""
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + 90))
        got = _walk(api, "/api/v1/traces", start=NOW + 60, end=iso)
        assert [t["trace_id"] for t in got] == ["tB"]
        bad = api.get("/api/v1/traces", params={"start": NOW, "end": NOW - 1})
        assert bad.status_code == 422 and "end" in bad.json()["detail"]
        assert api.get("/api/v1/traces", params={"start": "last tuesday"}).status_code == 422

    def test_bad_enum_and_foreign_cursor(self, api: TestClient) -> None:
        """An unknown kind is 422; a cursor from another listing or garbage is 400."""
        assert api.get("/api/v1/traces", params={"kind": "rocket"}).status_code == 422
        spans_cursor = api.get("/api/v1/spans", params={"limit": 1}).json()["next_cursor"]
        mixed = api.get("/api/v1/traces", params={"cursor": spans_cursor})
        assert mixed.status_code == 400 and mixed.json()["type"].endswith("bad-cursor")
        assert api.get("/api/v1/traces", params={"cursor": "!!!"}).status_code == 400


class TestSpans:
    def test_filters_order_and_pages(self, api: TestClient) -> None:
        """Spans filter like traces; asc and desc pages cover every span once, in order."""
        desc = _walk(api, "/api/v1/spans", limit=3)
        asc = _walk(api, "/api/v1/spans", limit=3, order="asc")
        assert len(desc) == 8 and [s["span_id"] for s in asc] == [s["span_id"] for s in desc][::-1]
        llm = _walk(api, "/api/v1/spans", kind="llm")
        assert {s["span_id"] for s in llm} == {"tA-llm", "tB-llm"}
        assert [s["span_id"] for s in _walk(api, "/api/v1/spans", trace_id="tC")] == [
            "tC-llm", "tC-root"]  # fmt: skip

    def test_get_span(self, api: TestClient) -> None:
        """One span with every field; an unknown id is 404."""
        span = api.get("/api/v1/spans/tA-llm").json()
        assert span["parent_id"] == "tA-root" and span["latency_ms"] == pytest.approx(1000.0)
        assert span["model"] == "gpt-4o" and span["attributes"] == {}
        assert api.get("/api/v1/spans/missing").status_code == 404


class TestLargeTrace:
    def test_thirty_thousand_span_tree_pages(
        self, store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """A 30,000-span trace comes in pages in start order, each span once; one level at a time works."""
        n = 30_000
        spans = [Span("big", "root", "root", NOW, NOW + 100, kind="agent")]
        spans += [
            Span("big", f"c{i:05d}", "step", NOW + i * 0.001, NOW + i * 0.001 + 0.5,
                 parent_id="root" if i % 100 == 0 else f"c{i - i % 100:05d}")
            for i in range(1, n)
        ]  # fmt: skip
        store.write(spans=spans)
        c = make_client(store)
        got = _walk(c, "/api/v1/traces/big/spans", limit=1000)
        assert len(got) == n and len({s["span_id"] for s in got}) == n
        assert [s["start_time"] for s in got] == sorted(s["start_time"] for s in got)
        roots = c.get("/api/v1/traces/big/spans", params={"roots": True}).json()
        assert [s["span_id"] for s in roots["items"]] == ["root"] and roots["next_cursor"] is None
        children = _walk(c, "/api/v1/traces/big/spans", parent_id="root", limit=100)
        assert len(children) == 299  # c00100, c00200, ... c29900
        assert c.get("/api/v1/traces/big").json()["spans"] == n
        assert c.get("/api/v1/traces/none/spans").status_code == 404


class TestRuns:
    def test_list_filter_get_metrics(self, api: TestClient) -> None:
        """Runs filter by model, status and kind; one run; its points paged by step."""
        assert [r["run_id"] for r in _walk(api, "/api/v1/runs")] == ["r2", "r1"]
        assert [r["run_id"] for r in _walk(api, "/api/v1/runs", model="gpt-4o")] == ["r1"]
        assert [r["run_id"] for r in _walk(api, "/api/v1/runs", status="running")] == ["r2"]
        assert [r["run_id"] for r in _walk(api, "/api/v1/runs", kind="benchmark")] == ["r1"]
        assert api.get("/api/v1/runs", params={"status": "exploded"}).status_code == 422
        page = api.get("/api/v1/runs", params={"limit": 1}).json()
        assert len(page["items"]) == 1 and page["next_cursor"]
        assert api.get("/api/v1/runs/r1").json()["metrics"] == {"accuracy": 0.9}
        assert api.get("/api/v1/runs/nope").status_code == 404
        m = api.get("/api/v1/runs/r2/metrics", params={"limit": 10}).json()
        assert [p["step"] for p in m["items"]] == list(range(10)) and m["next_cursor"]
        rest = api.get("/api/v1/runs/r2/metrics", params={"cursor": m["next_cursor"], "limit": 100})
        assert [p["step"] for p in rest.json()["items"]] == list(range(10, 25))


class TestMetrics:
    def test_summary_by_model_matches_the_store(self, api: TestClient, loaded: Store) -> None:
        """Summary per model equals the store's own rollup answer."""
        body = api.get("/api/v1/metrics/summary", params={"group_by": "model", "start": NOW - 60,
                                                          "end": NOW + 3600}).json()  # fmt: skip
        by_model = {r["group"]["model"]: r for r in body}
        assert by_model["gpt-4o"]["calls"] == 2 and by_model["gpt-4o-mini"]["errors"] == 1
        assert by_model[None]["calls"] == 4  # the root spans carry no model
        assert by_model["gpt-4o"]["input_tokens"] == 100 + 400

    def test_series_and_filters(self, api: TestClient) -> None:
        """Series buckets by step with filters; bad steps and too many buckets are 422."""
        rows = api.get("/api/v1/metrics/series", params={"start": NOW - 60, "end": NOW + 3600,
                       "step_seconds": 60, "model": "gpt-4o"}).json()  # fmt: skip
        assert [(r["bucket_start"], r["calls"]) for r in rows] == [(NOW, 1), (NOW + 180, 1)]
        assert api.get("/api/v1/metrics/series", params={"step_seconds": 90}).status_code == 422
        many = api.get("/api/v1/metrics/series", params={"step_seconds": 60, "start": 0})
        assert many.status_code == 422 and "buckets" in many.json()["detail"]
        assert api.get("/api/v1/metrics/summary", params={"group_by": "colour"}).status_code == 422

    def test_raw_summary_groups_by_service_with_span_filters(
        self, api: TestClient, loaded: Store
    ) -> None:
        """Raw-span totals group by service and filter by session; they equal the store's own."""
        window = {"start": NOW - 60, "end": NOW + 3600}
        body = api.get("/api/v1/metrics/raw-summary", params={**window, "group_by": "service"})
        assert body.status_code == 200, body.text
        by_service = {r["group"]["service"]: r for r in body.json()}
        assert {s: r["calls"] for s, r in by_service.items()} == {"api": 4, "worker": 4}
        assert by_service["api"]["input_tokens"] == 100 + 200 and by_service["api"]["errors"] == 1
        assert by_service["api"]["p50_latency_ms"] is None  # no histograms in raw spans
        [mine] = loaded.raw_span_stats(window["start"], window["end"], group_by=["service"],
                                       service="worker")  # fmt: skip
        worker = by_service["worker"]
        assert (worker["calls"], worker["cost_usd"]) == (mine.calls, mine.cost_usd)
        session = api.get("/api/v1/metrics/raw-summary", params={**window, "session_id": "sess-1",
                                                                 "kind": "llm"}).json()  # fmt: skip
        assert [(r["group"], r["calls"], r["errors"]) for r in session] == [({}, 2, 1)]
        trace = api.get("/api/v1/metrics/raw-summary", params={**window, "trace_id": "tC"}).json()
        assert [r["calls"] for r in trace] == [2]
        none = api.get("/api/v1/metrics/raw-summary", params={**window, "model": "nope"}).json()
        assert none == []  # no matching span, no row (not a row of zeros)
        bad = api.get("/api/v1/metrics/raw-summary", params={"group_by": "session_id"})
        assert bad.status_code == 422

    def test_points_and_names(self, api: TestClient) -> None:
        """Metric names in the window, and one metric's points paged."""
        assert api.get("/api/v1/metrics/names", params={"start": NOW - 1}).json() == ["loss"]
        got = _walk(api, "/api/v1/metrics/points", name="loss", start=NOW - 1, limit=7)
        assert len(got) == 25 and got[0]["value"] == 1.0


class TestModels:
    def test_catalog_lifecycle_and_prices(
        self, loaded: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """Create, conflict, get, update, list active; catalog prices price ingested spans."""
        admin, _ = generate_key(loaded, "admin", ["admin"])
        reader, _ = generate_key(loaded, "reader", ["read"])
        c = make_client(loaded)
        body = {"name": "acme/ft-1", "provider": "acme", "input_price_per_token": 2e-6,
                "output_price_per_token": 8e-6, "context_length": 128000, "model_type": "chat"}  # fmt: skip
        assert c.post("/api/v1/models", json=body, headers=bearer(reader)).status_code == 403
        made = c.post("/api/v1/models", json=body, headers=bearer(admin))
        assert made.status_code == 201 and made.json()["active"] is True
        assert c.post("/api/v1/models", json=body, headers=bearer(admin)).status_code == 409
        assert (
            c.get("/api/v1/models/acme/ft-1", headers=bearer(reader)).json()["provider"] == "acme"
        )
        span = {"trace_id": "tp", "span_id": "sp", "name": "chat", "start_time": NOW,
                "end_time": NOW + 1, "model": "acme/ft-1", "input_tokens": 1000, "output_tokens": 500}  # fmt: skip
        c.post("/api/v1/ingest", json={"spans": [span]}, headers=bearer(admin))
        assert loaded.get_span("sp").cost_usd == pytest.approx(1000 * 2e-6 + 500 * 8e-6)  # type: ignore[union-attr]
        patched = c.patch("/api/v1/models/acme/ft-1", json={"active": False, "max_tokens": 4096},
                          headers=bearer(admin)).json()  # fmt: skip
        assert patched["active"] is False and patched["max_tokens"] == 4096
        assert patched["context_length"] == 128000
        listed = c.get("/api/v1/models", params={"active_only": True}, headers=bearer(reader))
        assert listed.json() == []
        assert len(c.get("/api/v1/models", headers=bearer(reader)).json()) == 1
        assert c.patch("/api/v1/models/none", json={}, headers=bearer(admin)).status_code == 404
        bad = c.post("/api/v1/models", json=body | {"name": "x", "input_price_per_token": -1},
                     headers=bearer(admin))  # fmt: skip
        assert (
            bad.status_code == 422 and bad.json()["errors"][0]["field"] == "input_price_per_token"
        )
        nulled = c.patch("/api/v1/models/acme/ft-1", json={"active": None}, headers=bearer(admin))
        assert nulled.status_code == 422


class TestDashboard:
    def test_overview(self, api: TestClient, loaded: Store) -> None:
        """Totals, the per-model table and the series agree with the store."""
        body = api.get(
            "/api/v1/dashboard/overview", params={"start": NOW - 60, "end": NOW + 600}
        ).json()
        assert body["totals"]["calls"] == 8 and body["step_seconds"] == 60
        assert sum(r["calls"] for r in body["models"]) == 8
        assert sum(r["calls"] for r in body["series"]) == 8

    def test_model_performance(self, api: TestClient) -> None:
        """A model's totals, days, prompt versions and runs; days_back is bounded."""
        body = api.get("/api/v1/dashboard/model-performance/gpt-4o", params={"days_back": 3}).json()
        assert body["totals"]["calls"] == 2 and {
            r["group"]["prompt_version"] for r in body["prompt_versions"]
        } == {"v1", "v3"}
        assert [r["run_id"] for r in body["runs"]] == ["r1"] and body["catalog"] is None
        assert sum(d["calls"] for d in body["daily"]) == 2
        assert (
            api.get("/api/v1/dashboard/model-performance/x", params={"days_back": 0}).status_code
            == 422
        )


class TestRegressionDetection:
    def test_analyze_finds_the_models_regression(
        self, sqlite_store: Store, make_client: Callable[..., TestClient]
    ) -> None:
        """A drop in the last runs of one model is a regression of that model, over the API."""
        now = time.time()
        rng = np.random.default_rng(3)
        runs = []
        for model, tail in (("model-a", [0.82, 0.82, 0.82]), ("model-b", [0.74, 0.745, 0.75])):
            values = list(0.81 + 0.005 * rng.standard_normal(12)) + tail
            for i, v in enumerate(values):
                t = now - (len(values) - i) * DAY
                runs.append(Run(f"{model}-{i}", f"eval {i}", t, kind="benchmark", experiment="nightly",
                                model=model, status="finished", ended_at=t + 600,
                                metrics={"accuracy": float(v)}))  # fmt: skip
        sqlite_store.write(runs=runs)
        c = make_client(sqlite_store)
        b = c.post("/api/v1/regression-detection/analyze/model-b", params={"days_back": 30}).json()
        assert [(f["check"], f["metric"]) for f in b["findings"]] == [("regression", "accuracy")]
        assert b["counts"]["warning"] + b["counts"]["critical"] == 1
        assert [r["model"] for r in b["runs"]] == ["model-b"]
        a = c.post("/api/v1/regression-detection/analyze/model-a").json()
        assert a["findings"] == []
        summary = c.get("/api/v1/regression-detection/summary").json()
        assert set(summary["by_model"]) == {"model-b"} and summary["by_check"] == {"regression": 1}
        trends = c.get("/api/v1/regression-detection/trends/model-b").json()
        assert [t["metric"] for t in trends["trends"]] == ["accuracy"]
        assert (
            c.post("/api/v1/regression-detection/analyze/x", params={"days_back": 9999}).status_code
            == 422
        )
