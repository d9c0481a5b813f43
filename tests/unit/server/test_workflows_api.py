"""``/api/v1/workflows``: the list, the flow as data and SVG, runs paged with their outcome, one
run's path, branch shares per bucket and the node ranking (SQLite and PostgreSQL)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from llmpulse.flow import flow_view
from llmpulse.store import Store
from tests.unit.store.conftest import T0
from tests.unit.store.test_store_workflows import decide, graph_run, plain_run

WINDOW = {"start": T0, "end": T0 + 3600}
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def api(store: Store, make_client: Callable[..., TestClient]) -> TestClient:
    spans = plain_run("ta", T0 + 100, "refund", True, 0.02)
    spans += plain_run("tb", T0 + 200, "answer", False, 0.001)
    spans += graph_run("tc", T0 + 300)
    spans.append(decide("tx", "tx-d", T0 + 150, "tx-d", "start", XSS, workflow="billing"))
    store.write(spans=spans)
    return make_client(store)


class TestWorkflowsApi:
    def test_list_and_flow(self, api: TestClient, store: Store) -> None:
        """Workflows busiest first; the flow is flow_view's data, unchanged."""
        listed = api.get("/api/v1/workflows", params=WINDOW).json()
        assert [(w["name"], w["decisions"]) for w in listed["items"]] == [
            ("support", 8), ("billing", 1),
        ]  # fmt: skip
        assert listed["next_cursor"] is None
        first = api.get("/api/v1/workflows", params={**WINDOW, "limit": 1}).json()
        assert [w["name"] for w in first["items"]] == ["support"]
        rest = api.get("/api/v1/workflows", params={**WINDOW, "cursor": first["next_cursor"]})
        assert [w["name"] for w in rest.json()["items"]] == ["billing"]
        got = api.get("/api/v1/workflows/support/flow", params=WINDOW)
        assert got.status_code == 200
        assert got.json() == flow_view(store, "support", T0, T0 + 3600).as_dict()

    def test_flow_svg(self, api: TestClient) -> None:
        """The picture: SVG content type, a policy that lets nothing run, names as text."""
        got = api.get("/api/v1/workflows/billing/flow.svg", params=WINDOW)
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("image/svg+xml")
        assert got.headers["content-security-policy"].startswith("default-src 'none'")
        assert got.headers["x-content-type-options"] == "nosniff"
        root = ET.fromstring(got.text)
        assert {el.tag.split("}")[1] for el in root.iter()} <= {
            "svg", "title", "defs", "marker", "path", "rect", "text", "g",
        }  # fmt: skip
        assert XSS in {"".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")}

    def test_unknown_workflow_is_a_problem_404(self, api: TestClient) -> None:
        """No decision in the window: 404 problem naming the workflow; an empty list of runs."""
        for path in ("flow", "flow.svg", "branches", "nodes"):
            got = api.get(f"/api/v1/workflows/nope/{path}", params=WINDOW)
            assert got.status_code == 404, path
            assert got.headers["content-type"] == "application/problem+json"
            assert "'nope'" in got.json()["detail"]
        runs = api.get("/api/v1/workflows/nope/runs", params=WINDOW).json()
        assert runs == {"items": [], "next_cursor": None}

    def test_runs_paged_with_outcome_and_path(self, api: TestClient) -> None:
        """Newest first, two per page; each with outcome, duration, cost and path."""
        page = api.get("/api/v1/workflows/support/runs", params={**WINDOW, "limit": 2}).json()
        assert [r["trace_id"] for r in page["items"]] == ["tc", "tb"]
        tc = page["items"][0]
        assert tc["outcome"] == "ok" and tc["duration_ms"] == pytest.approx(5000.0)
        assert tc["path"] == ["fetch", "classify", "answer", "classify", "answer", "__end__"]
        assert tc["cost_usd"] == pytest.approx(0.04)
        more = api.get(
            "/api/v1/workflows/support/runs", params={**WINDOW, "cursor": page["next_cursor"]}
        ).json()
        assert [(r["trace_id"], r["outcome"]) for r in more["items"]] == [("ta", "error")]
        assert more["next_cursor"] is None
        bad = api.get("/api/v1/workflows/support/runs", params={"cursor": "nonsense"})
        assert bad.status_code == 400
        failed = api.get("/api/v1/workflows/support/runs", params={**WINDOW, "outcome": "error"})
        assert [r["trace_id"] for r in failed.json()["items"]] == ["ta"]
        wrong = api.get("/api/v1/workflows/support/runs", params={"outcome": "failed"})
        assert wrong.status_code == 422
        # A cursor of the unfiltered listing is not one of the filtered listing.
        other = api.get(
            "/api/v1/workflows/support/runs",
            params={**WINDOW, "outcome": "ok", "cursor": page["next_cursor"]},
        )
        assert other.status_code == 400

    def test_one_run_path(self, api: TestClient) -> None:
        """A run's steps (costed) and decisions; a trace of another workflow is a 404."""
        got = api.get("/api/v1/workflows/support/runs/ta").json()
        assert [s["node"] for s in got["steps"]] == ["classify", "refund"]
        assert got["steps"][1]["status"] == "error"
        assert got["steps"][1]["cost_usd"] == pytest.approx(0.02)
        assert [(d["source"], d["target"]) for d in got["decisions"]] == [
            ("classify", "refund"), ("refund", "__end__"),
        ]  # fmt: skip
        assert got["run"]["path"] == ["classify", "refund", "__end__"]
        assert api.get("/api/v1/workflows/support/runs/tx").status_code == 404

    def test_branch_shares_per_bucket(self, api: TestClient) -> None:
        """Per 10-minute bucket: classify went to refund (T0+100 s), then to answer."""
        got = api.get(
            "/api/v1/workflows/support/branches", params={**WINDOW, "step_seconds": 600}
        ).json()
        assert got["step_seconds"] == 600 and got["buckets"][:2] == [T0, T0 + 600]
        routes = {(r["source"], r["target"]): r for r in got["routes"]}
        assert routes[("classify", "refund")]["counts"][0] == 1
        assert routes[("classify", "refund")]["shares"][0] == pytest.approx(0.25)
        assert routes[("classify", "answer")]["shares"][0] == pytest.approx(0.75)
        assert routes[("classify", "answer")]["shares"][1] is None
        bad = api.get("/api/v1/workflows/support/branches", params={"step_seconds": 90})
        assert bad.status_code == 422 and "multiple of 60" in bad.json()["detail"]

    def test_node_ranking(self, api: TestClient) -> None:
        """order=cost ranks by what ran under each node in the sampled runs; order=p95 by the
        rollups' p95."""
        by_cost = api.get("/api/v1/workflows/support/nodes", params={**WINDOW, "order": "cost"})
        body = by_cost.json()
        assert body["runs_sampled"] == 3
        assert [n["name"] for n in body["nodes"]][:2] == ["answer", "refund"]
        assert body["nodes"][0]["sampled_cost_usd"] == pytest.approx(0.041)
        by_p95 = api.get("/api/v1/workflows/support/nodes", params={**WINDOW, "order": "p95"})
        assert by_p95.json()["nodes"][0]["name"] == "refund"  # its steps took 2 s
        assert api.get("/api/v1/workflows/support/nodes", params={"order": "x"}).status_code == 422
