"""The dashboard in real headless Chromium (Debian's package, driven by Playwright) against a
real server with keys on: every page loads clean, filters and the window picker change the URL
and the data, a trace opens from the list, an alert is acknowledged from the page, XSS payloads
in stored data render as text, and nothing is reachable without signing in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from llmpulse.alerting import AlertEngine, Rule, RuleSet, Sample
from llmpulse.alerting.channels import FunctionChannel
from llmpulse.server.app import create_app
from llmpulse.server.auth import generate_key
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store
from tests.conftest import service_missing
from tests.e2e.browser import CHROMIUM, Session, chromium
from tests.e2e.live_server import serving

XSS = "<img src=x onerror=window.__xss=1><script>window.__xss=1</script>"
XSS_MODEL = "<img src=x onerror=window.__xss=1>"
PAGES = ["/", "/models", "/models/gpt-4o-mini", "/traces", "/runs?run=r1", "/workflows",
         "/alerts", "/system"]  # fmt: skip


def _span(trace: str, sid: str, at: float, **fields: Any) -> dict[str, Any]:
    base = {"trace_id": trace, "span_id": sid, "name": "answer", "kind": "llm",
            "start_time": at, "end_time": at + 0.8, "model": "gpt-4o-mini",
            "input_tokens": 500, "output_tokens": 50}  # fmt: skip
    return {**base, **fields}


def _workflow_runs(now: float) -> list[dict[str, Any]]:
    """Six runs of a "support" workflow (1.2 s each, under the latency filter's test): classify
    routes four to answer and two to a node whose name carries an XSS payload (an llm call
    under each), which fails once."""
    spans: list[dict[str, Any]] = []
    chain = {"kind": "chain", "model": None, "input_tokens": None, "output_tokens": None}
    for i in range(6):
        t, at = f"w{i}", now - 600 + 60 * i
        target = XSS_MODEL if i < 2 else "answer"
        failed = {"status": "error", "error_type": "RuntimeError"} if i == 0 else {}
        spans += [
            _span(t, f"{t}-root", at, name="support", end_time=at + 1.2, **chain, **failed),
            _span(t, f"{t}-c", at + 0.1, name="classify", parent_id=f"{t}-root",
                  end_time=at + 0.3, **chain),
            _span(t, f"{t}-d", at + 0.25, name="support:classify", parent_id=f"{t}-c",
                  end_time=at + 0.25, **{**chain, "kind": "branch"},
                  attributes={"llmpulse.branch": target, "llmpulse.branch.condition": "intent"}),
            _span(t, f"{t}-n", at + 0.35, name=target, parent_id=f"{t}-root", end_time=at + 1.1,
                  **chain, **failed),
            _span(t, f"{t}-l", at + 0.36, parent_id=f"{t}-n", name="ChatOpenAI"),
        ]  # fmt: skip
    return spans


def _traffic(now: float) -> dict[str, Any]:
    """Recent traces on two models (some errors), one 3 h old on another model, one trace
    whose model, span name, attribute and prompt carry XSS payloads, and one run."""
    spans = []
    for i in range(24):
        at = now - 60 * (i + 1)
        model = "gpt-4o-mini" if i % 3 else "claude-3-haiku"
        spans.append(
            _span(
                f"t{i}",
                f"t{i}-root",
                at,
                name=f"pipeline {i}",
                kind="chain",
                end_time=at + 1.0,
                model=None,
                input_tokens=None,
                output_tokens=None,
            )
        )
        spans.append(_span(f"t{i}", f"t{i}-llm", at + 0.1, parent_id=f"t{i}-root", model=model,
                           status="error" if i % 5 == 0 else "ok", session_id=f"s{i % 2}",
                           input=f"question {i}", output=f"answer {i}",
                           prompt_version=f"v{1 + i % 2}"))  # fmt: skip
    spans.append(_span("old", "old-llm", now - 3 * 3600, model="old-model"))
    spans.append(
        _span(
            "xss",
            "xss-root",
            now - 30,
            name=XSS,
            kind="chain",
            model=None,
            end_time=now - 28,
            input_tokens=None,
            output_tokens=None,
        )
    )
    spans.append(
        _span(
            "xss",
            "xss-llm",
            now - 29.5,
            parent_id="xss-root",
            model=XSS_MODEL,
            name=XSS,
            attributes={"note": XSS},
            input=XSS,
            output=XSS,
        )
    )
    spans += _workflow_runs(now)
    run = {"run_id": "r1", "name": "nightly eval", "started_at": now - 600, "kind": "benchmark",
           "model": "gpt-4o-mini", "status": "finished", "ended_at": now - 60,
           "metrics": {"accuracy": 0.91}}  # fmt: skip
    points = [{"name": "loss", "value": 1.0 / (s + 1), "timestamp": now - 600 + s,
               "labels": {}, "run_id": "r1", "step": s} for s in range(20)]  # fmt: skip
    other = {**run, "run_id": "r2", "name": "candidate eval", "metrics": {"accuracy": 0.88,
             "f1": 0.8}}  # fmt: skip
    # Host CPU of two hosts over the last 10 minutes, one host named with a payload.
    host = [{"name": "system_cpu_percent", "value": 20.0 + i, "timestamp": now - 60 * i,
             "labels": {"host": name}} for i in range(10) for name in ("web-1", XSS_MODEL)]  # fmt: skip
    return {"spans": spans, "runs": [run, other], "metric_points": points + host}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real server (keys on) with the traffic above and one firing alert: (url, admin key)."""
    if not CHROMIUM.exists():
        service_missing("Chromium", "/usr/bin/chromium is missing (apt-get install chromium)")
    db = tmp_path_factory.mktemp("dashboard") / "llmpulse.db"
    with Store.open(f"sqlite:///{db}") as store:
        key, _ = generate_key(store, "admin", ["admin"])
        rule = Rule(
            "latency_high",
            type="callable",
            channels=("ops",),
            condition=lambda ctx: [Sample({"model": "gpt-4o-mini"}, 2.5, "critical")],
        )
        rules = RuleSet(channels={"ops": FunctionChannel("ops", lambda n: None)})
        AlertEngine(store, rules, rules=[rule], owner="test").tick()  # fmt: skip
        app = create_app(ServerSettings(alert_interval=0), store=store)
        with serving(app) as url:
            answer = httpx.post(f"{url}/api/v1/ingest", json=_traffic(time.time()),
                                headers={"Authorization": f"Bearer {key}"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            yield url, key


@pytest.fixture(scope="module")
def browser(server: tuple[str, str]) -> Iterator[Any]:
    """One headless Chromium for the module."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def signed_in(browser: Any, server: tuple[str, str]) -> Iterator[Session]:
    """One signed-in tab (admin key) for the module: plotly.js is fetched and parsed once."""
    session = Session(browser, *server)
    yield session
    session.close()


@pytest.fixture
def tab(signed_in: Session) -> Session:
    """The signed-in tab, its record of problems emptied for this test."""
    signed_in.problems.clear()
    return signed_in


class TestPages:
    def test_every_page_loads_without_an_error(self, tab: Session) -> None:
        """Each page answers with the CSP header and loads with no console error, no failed
        request and no error shown."""
        for path in PAGES:
            response = tab.open(path)
            csp = response.headers["content-security-policy"]
            directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
            assert directives["script-src"] == "'self'" and directives["default-src"] == "'none'"
            assert tab.page.locator("#error").is_hidden(), (path, tab.page.text_content("#error"))
        assert tab.page.locator("#store tbody tr").count() > 3  # system page drew health
        assert tab.problems == []

    def test_overview_draws_charts_and_the_window_picker_changes_them(self, tab: Session) -> None:
        """The 1h window has no old-model; picking 6h puts it in the URL and the data, and the
        charts are redrawn over the new window."""
        tab.open("/?w=1h")
        assert tab.page.locator("#chart-calls .main-svg").count() > 0
        top = tab.page.locator("#top-models tbody")
        assert "gpt-4o-mini" in top.inner_text() and "old-model" not in top.inner_text()
        points_1h = tab.page.get_attribute("#chart-calls", "data-points")
        range_1h = tab.page.evaluate("document.getElementById('chart-calls').layout.xaxis.range")
        tab.page.click("button[data-window='6h']")
        tab.page.wait_for_url("**/?w=6h")
        tab.ready()
        assert "old-model" in top.inner_text()
        range_6h = tab.page.evaluate("document.getElementById('chart-calls').layout.xaxis.range")
        assert range_6h != range_1h or tab.page.get_attribute(
            "#chart-calls", "data-points") != points_1h  # fmt: skip
        assert tab.page.get_attribute("button[data-window='6h']", "aria-pressed") == "true"
        prompts = tab.page.locator("#top-prompts tbody tr")
        assert prompts.count() == 2 and "v1" in prompts.first.inner_text()
        # A custom range around the old trace only: its model alone, the range in the URL.
        now = time.time()
        local = lambda t: datetime.fromtimestamp(t).strftime("%Y-%m-%dT%H:%M")  # noqa: E731
        tab.page.fill("#custom-window input[name=from]", local(now - 4 * 3600))
        tab.page.fill("#custom-window input[name=to]", local(now - 2 * 3600))
        tab.page.click("#custom-window button[type=submit]")
        tab.page.wait_for_url("**from=*")
        tab.ready()
        assert top.inner_text().count("\n") == 0 and "old-model" in top.inner_text()
        assert tab.page.get_attribute("button[data-window='6h']", "aria-pressed") == "false"
        assert tab.problems == []

    def test_trace_filters_change_the_url_and_the_list(self, tab: Session) -> None:
        """Filtering traces by model and status writes them in the URL and narrows the list."""
        tab.open("/traces")
        rows = tab.page.locator("#traces tbody tr")
        everything = rows.count()
        tab.page.fill("#filters input[name=model]", "claude-3-haiku")
        tab.page.click("#filters button[type=submit]")
        tab.page.wait_for_url("**model=claude-3-haiku**")
        tab.ready()
        claude = rows.count()
        assert 0 < claude < everything
        tab.page.select_option("#filters select[name=status]", "error")
        tab.page.click("#filters button[type=submit]")
        tab.page.wait_for_url("**status=error**")
        tab.ready()
        assert 0 < rows.count() < claude
        tab.page.go_back()  # the shared link's state comes back with history
        tab.page.wait_for_url(lambda u: "status=error" not in u)
        tab.ready()
        assert rows.count() == claude
        assert tab.problems == []

    def test_minimum_latency_and_cost_filters_change_the_url_and_the_list(
        self, tab: Session
    ) -> None:
        """Min latency keeps the one 2 s trace; min cost keeps the traces costing that much
        (counted through the API); both are in the URL and come back with Back."""
        tab.open("/traces")
        rows = tab.page.locator("#traces tbody tr")
        everything = rows.count()
        tab.page.fill("#filters input[name=min_latency_ms]", "1500")
        tab.page.click("#filters button[type=submit]")
        tab.page.wait_for_url("**min_latency_ms=1500**")
        tab.ready()
        assert rows.count() == 1 and "2,000" in rows.first.inner_text()
        costs = tab.page.evaluate("""async () => {
            const page = await (await fetch('/api/v1/traces?limit=500&start=' +
                (Date.now() / 1000 - 3600))).json();
            return page.items.map(t => t.cost_usd);
        }""")
        priced = sorted(c for c in costs if c is not None)
        threshold = priced[len(priced) // 2]
        tab.page.fill("#filters input[name=min_latency_ms]", "")
        tab.page.fill("#filters input[name=min_cost_usd]", repr(threshold))
        tab.page.click("#filters button[type=submit]")
        tab.page.wait_for_url(lambda u: "min_cost_usd=" in u and "min_latency_ms" not in u)
        tab.ready()
        assert rows.count() == sum(c >= threshold for c in priced) < everything
        tab.page.go_back()
        tab.page.wait_for_url("**min_latency_ms=1500**")
        tab.ready()
        assert rows.count() == 1
        assert tab.page.input_value("#filters input[name=min_latency_ms]") == "1500"
        assert tab.problems == []

    def test_a_trace_opens_from_the_list(self, tab: Session) -> None:
        """Clicking a trace shows its span tree, waterfall and the selected span's details."""
        tab.open("/traces?model=claude-3-haiku")
        tab.page.locator("#traces tbody a", has_text="pipeline 3").click()
        tab.page.wait_for_url("**/traces/t3")
        tab.ready()
        assert tab.page.locator("#waterfall .span-row").count() == 2
        tab.page.locator("#waterfall .span-row", has_text="answer").click()
        assert tab.page.text_content("#span-input") == "question 3"
        assert "claude-3-haiku" in tab.page.inner_text("#span-fields")
        assert tab.problems == []

    def test_system_page_shows_ingest_and_the_recorded_host_metrics(self, tab: Session) -> None:
        """The System page counts this server's ingest (the fixture's one request), charts
        the ingest rate, and charts host CPU per host with the hosts named as text."""
        tab.open("/system")
        ingest = tab.page.inner_text("#ingest")
        assert "spans stored" in ingest and "requests by outcome\tok 1" in ingest
        assert tab.page.locator("#chart-rate .main-svg").count() > 0
        assert tab.page.locator("#host-none").is_hidden()
        hosts = tab.page.inner_text("#hosts tbody")
        assert "web-1" in hosts and XSS_MODEL in hosts and "system_cpu_percent" in hosts
        assert tab.page.get_attribute("#chart-host-0", "data-points") == "20"
        assert tab.page.evaluate("window.__xss") is None
        assert "llmpulse.stats()" in tab.page.inner_text("#spool")
        assert tab.problems == []

    def test_runs_page_draws_and_compares_runs(self, tab: Session) -> None:
        """Choosing a run charts its metric points by step; two runs compare side by side."""
        tab.open("/runs")
        tab.page.locator("#runs tbody a", has_text="nightly eval").click()
        tab.page.wait_for_url("**run=r1**")
        tab.ready()
        assert tab.page.get_attribute("#chart-run", "data-points") == "20"
        for box in tab.page.locator("#runs input[type=checkbox]").all():
            box.check()
        tab.page.click("#compare")
        tab.page.wait_for_url("**compare=*")
        tab.ready()
        assert tab.page.locator("#compare-table thead th").count() == 3
        rows = [r.inner_text() for r in tab.page.locator("#compare-table tbody tr").all()]
        assert rows == ["accuracy\t0.91\t0.88", "f1\t–\t0.8"] or rows == [
            "accuracy\t0.88\t0.91", "f1\t0.8\t–"]  # fmt: skip
        assert tab.problems == []

    def test_an_alert_is_acknowledged_and_silenced_from_the_page(
        self, tab: Session, server: tuple[str, str]
    ) -> None:
        """The Acknowledge button changes the alert through the API (with the CSRF token); Silence
        1 h saves a silence matching its labels."""
        url, key = server
        tab.open("/alerts")
        row = tab.page.locator("#alerts tbody tr", has_text="latency_high")
        assert "firing" in row.inner_text()
        row.locator("button[data-action=acknowledge]").click()
        tab.page.locator("#alerts tbody td", has_text="acknowledged").first.wait_for()
        alerts = httpx.get(f"{url}/api/v1/alerts", headers={"Authorization": f"Bearer {key}"})
        assert alerts.json()["items"][0]["state"] == "acknowledged"
        assert alerts.json()["items"][0]["acknowledged_by"] == "dashboard"
        assert "No active silence." in tab.page.inner_text("#silences tbody")
        row.locator("button[data-action=silence]").click()
        tab.page.locator("#silences tbody td", has_text="alertname=latency_high").wait_for()
        silences = httpx.get(
            f"{url}/api/v1/alerts/silences", headers={"Authorization": f"Bearer {key}"}
        )
        assert [(s["state"], s["created_by"]) for s in silences.json()] == [("active", "dashboard")]
        assert {"name": "model", "op": "=", "value": "gpt-4o-mini"} in silences.json()[0][
            "matchers"
        ]
        assert tab.problems == []


class TestWorkflowsPage:
    def test_pick_a_workflow_see_its_flow_and_a_run_path(self, tab: Session) -> None:
        """The page picks the busiest workflow: its flow as an image of the SVG endpoint, the
        nodes and routes with their numbers, branch shares charted, the runs; choosing a run
        shows the path it took."""
        tab.open("/workflows?w=1h")
        assert tab.page.locator("#unavailable").is_hidden()
        assert tab.page.input_value("#workflow") == "support"
        img = tab.page.locator("#flow-img")
        img.wait_for()
        tab.page.wait_for_function(
            "document.getElementById('flow-img').complete && "
            "document.getElementById('flow-img').naturalWidth > 0"
        )
        assert "/api/v1/workflows/support/flow.svg?start=" in (img.get_attribute("src") or "")
        nodes = {r.split("\t")[0]: r.split("\t") for r in
                 tab.page.locator("#nodes tbody tr").all_inner_texts()}  # fmt: skip
        assert nodes["classify"][1:3] == ["6", "0"]
        assert nodes[XSS_MODEL][1:4] == ["2", "1", "50.00 %"]
        edges = tab.page.locator("#edges tbody tr").all_inner_texts()
        assert "R1\tclassify\t" + XSS_MODEL + "\t2\t33.33 %" in edges
        assert "R2\tclassify\tanswer\t4\t66.67 %" in edges
        assert int(tab.page.get_attribute("#chart-shares", "data-points") or 0) > 0
        runs = tab.page.locator("#runs tbody tr")
        assert runs.count() == 6
        assert "error" in runs.last.inner_text()  # the oldest run failed
        assert "classify → answer" in runs.first.inner_text()
        tab.page.select_option("#run-filter select[name=outcome]", "error")
        tab.page.wait_for_url("**outcome=error**")
        tab.ready()
        assert runs.count() == 1 and "RuntimeError" in runs.first.inner_text()
        runs.last.locator("a").click()
        tab.page.wait_for_url("**run=w0**")
        tab.ready()
        assert tab.page.locator("#run-path li").all_inner_texts() == ["classify", XSS_MODEL]
        steps = tab.page.locator("#run-steps tbody tr").all_inner_texts()
        assert len(steps) == 2 and "error (RuntimeError)" in steps[1]
        assert tab.page.get_attribute("#run-trace", "href") == "/traces/w0"
        assert tab.problems == []

    def test_the_flow_image_is_the_svg_with_the_numbers(
        self, tab: Session, server: tuple[str, str]
    ) -> None:
        """What the image shows: the SVG the API serves, drawn with the routes' shares."""
        tab.open("/workflows?w=1h")
        src = tab.page.get_attribute("#flow-img", "src") or ""
        svg = tab.page.request.get(server[0] + src)
        assert svg.status == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        assert "2 (33%)" in svg.text() and "4 (67%)" in svg.text()


class TestSecurity:
    def test_xss_payloads_render_as_text(self, tab: Session) -> None:
        """A model name, a span name, an attribute, a prompt and a workflow node name carrying
        script payloads show as literal text, and no script of theirs runs."""
        tab.open("/models")
        assert XSS_MODEL in tab.page.inner_text("#models tbody")
        tab.open("/traces")
        assert XSS in tab.page.inner_text("#traces tbody")
        tab.open("/traces/xss")
        assert XSS in tab.page.inner_text("#waterfall")
        tab.page.locator("#waterfall .span-row").nth(1).click()
        assert tab.page.text_content("#span-input") == XSS
        assert XSS in (tab.page.text_content("#span-attributes") or "").replace('\\"', '"')
        assert XSS_MODEL in tab.page.inner_text("#span-fields")
        tab.page.goto(tab.url + "/models/" + XSS_MODEL.replace(" ", "%20"))
        tab.ready()
        tab.open("/workflows?w=1h&run=w1")
        assert XSS_MODEL in tab.page.inner_text("#nodes tbody")
        assert XSS_MODEL in tab.page.inner_text("#run-path")
        for path in ["/", "/models", "/traces", "/traces/xss", "/workflows?w=1h&run=w1"]:
            tab.open(path)
            assert tab.page.evaluate("window.__xss") is None, path
            assert tab.page.locator("img[src=x]").count() == 0, path
        assert tab.problems == []

    def test_nothing_without_a_key(self, browser: Any, server: tuple[str, str]) -> None:
        """A browser that has not signed in lands on the login page; files answer 401."""
        url, _ = server
        anonymous = Session(browser, url, None)
        try:
            for path in PAGES:
                anonymous.page.goto(url + path)
                assert anonymous.page.url.startswith(f"{url}/login"), path
            for name in ["plotly.min.js", "common.js", "app.css"]:
                assert anonymous.page.request.get(f"{url}/static/{name}").status == 401
            assert anonymous.page.request.get(f"{url}/api/v1/traces").status == 401
        finally:
            anonymous.close()

    def test_a_cookie_authenticated_change_without_the_token_is_refused(self, tab: Session) -> None:
        """From a signed-in page, a PUT or POST without the CSRF header is 403; reads pass."""
        tab.open("/alerts")
        statuses = tab.page.evaluate("""async () => {
            const put = await fetch('/api/v1/alerts/1', {method: 'PUT',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({action: 'resolve', who: 'x'})});
            const post = await fetch('/api/v1/keys', {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({name: 'x', scopes: ['read']})});
            const get = await fetch('/api/v1/alerts');
            return [put.status, post.status, get.status];
        }""")
        assert statuses == [403, 403, 200]
