"""`llmpulse demo --serve` leaves the demo's store open in the dashboard: a real subprocess runs
the demo, then serves it; every page loads clean in headless Chromium over the demo's data, and
a screenshot of each is taken (into DASHBOARD_SCREENSHOTS_DIR when set: that is how the pictures
in docs/dashboard.md are made, see there)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, service_missing
from tests.e2e.browser import CHROMIUM, Session, chromium

# page -> screenshot file name
SHOTS = {
    "/?w=6h": "overview.png",
    "/models?w=24h": "models.png",
    "/models/gpt-4o?w=24h": "model.png",
    "/traces?w=24h&model=gpt-4o": "traces.png",
    "/alerts": "alerts.png",
    "/system": "system.png",
}


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`llmpulse demo -n 200 --alert-rules R --serve --port P` in a subprocess, once its server answers."""
    if not CHROMIUM.exists():
        service_missing("Chromium", "/usr/bin/chromium is missing (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("demo")
    port = free_port()
    # The demo's own alert rules (as tests/e2e/test_demo_alerts.py): its incident fires them.
    (tmp / "rules.yaml").write_text(
        "rules:\n"
        "  - {name: slow_model, metric: latency_p50_ms, by: [model], window: 10m, warning: 120,"
        " min_requests: 10}\n"
        "  - {name: failing_model, metric: error_rate, by: [model], window: 10m, warning: 0.1,"
        " min_requests: 10}\n"
    )
    code = "from llmpulse.cli.main import main; main()"
    with (tmp / "demo.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "demo", "-n", "200", "--serve", "--port", str(port),
             "--alert-rules", str(tmp / "rules.yaml"),
             "--database-url", f"sqlite:///{tmp / 'demo.db'}"],
            cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (tmp / "demo.log").read_text()
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the demo's server did not start"
            time.sleep(0.5)
        assert f"Dashboard: http://127.0.0.1:{port}/" in (tmp / "demo.log").read_text()
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def browser(demo_url: str) -> Iterator[Any]:
    """One headless Chromium for the module's tests (each opens its own context and tab)."""
    with chromium() as b:
        yield b


class TestDemoServe:
    def test_every_page_shows_the_demo(self, demo_url: str, browser: Any, tmp_path: Path) -> None:
        """The demo's traffic is in the overview, and each page loads with no console error or
        failed request; each page's screenshot is saved."""
        overview = httpx.get(f"{demo_url}/api/v1/dashboard/overview").json()
        assert overview["totals"]["calls"] > 60
        assert {"gpt-4o", "gpt-4o-mini"} <= {m["group"]["model"] for m in overview["models"]}
        out = Path(os.environ.get("DASHBOARD_SCREENSHOTS_DIR") or tmp_path)
        out.mkdir(parents=True, exist_ok=True)
        tab = Session(browser, demo_url, None)
        tab.page.set_viewport_size({"width": 1280, "height": 900})
        try:
            for path, name in SHOTS.items():
                tab.open(path)
                assert tab.page.locator("#error").is_hidden(), path
                tab.page.screenshot(path=str(out / name), full_page=True)
            tab.open("/traces?w=24h&model=gpt-4o")
            tab.page.locator("#traces tbody a").first.click()
            tab.page.wait_for_url("**/traces/*")
            tab.ready()
            assert tab.page.locator("#waterfall .span-row").count() >= 2
            tab.page.screenshot(path=str(out / "trace.png"), full_page=True)
            # The support workflow's flow, and the path of its latest run (6 h: the demo's
            # shares in 5 minute buckets; past 6 h they are hourly).
            tab.open("/workflows?w=6h")
            assert tab.page.input_value("#workflow") == "support"
            tab.page.locator("#runs tbody a").first.click()
            tab.page.wait_for_url("**run=*")
            tab.ready()
            tab.page.wait_for_function("document.getElementById('flow-img').naturalWidth > 0")
            assert tab.page.locator("#run-path li").count() >= 2
            tab.page.screenshot(path=str(out / "workflows.png"), full_page=True)
            assert tab.problems == []
        finally:
            tab.close()
        shots = [*SHOTS.values(), "trace.png", "workflows.png"]
        assert all((out / name).stat().st_size > 10_000 for name in shots)

    def test_the_server_evaluates_the_demos_alert_rules(self, demo_url: str, browser: Any) -> None:
        """--alert-rules goes on to the server: its engine has the demo's two rules (from the
        file), and the Alerts page lists them."""
        rules = httpx.get(f"{demo_url}/api/v1/alerts/rules").json()
        assert sorted((r["name"], r["source"]) for r in rules) == [
            ("failing_model", "file"), ("slow_model", "file")]  # fmt: skip
        tab = Session(browser, demo_url, None)
        try:
            tab.open("/alerts")
            table = tab.page.inner_text("#rules tbody")
            assert "slow_model" in table and "failing_model" in table
            assert tab.problems == []
        finally:
            tab.close()
