"""The overview marks the findings of ``llmpulse check`` on its charts, in real headless
Chromium against a real server (keys on) holding four hours of traffic with a latency incident:
the finding is listed with its evidence and marked on the latency chart over its window, and a
window that does not reach the incident shows no mark."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from llmpulse.server.app import create_app
from llmpulse.server.auth import generate_key
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store
from tests.conftest import service_missing
from tests.e2e.browser import CHROMIUM, Session, chromium
from tests.e2e.live_server import serving
from tests.unit.checks.traffic import Incident, Traffic, make_spans

MIN = 60.0


@pytest.fixture(scope="module")
def tab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Session, Incident]]:
    """A signed-in tab on a server whose gpt-4o was 3x slower from 60 to 30 minutes ago."""
    if not CHROMIUM.exists():
        service_missing("Chromium", "/usr/bin/chromium is missing (apt-get install chromium)")
    now = time.time()
    incident = Incident(now - 60 * MIN, now - 30 * MIN, latency_x=3.0)
    db = tmp_path_factory.mktemp("findings") / "llmpulse.db"
    with Store.open(f"sqlite:///{db}") as store:
        store.write(spans=make_spans(Traffic(now - 240 * MIN, 240, seed=1, incidents=(incident,))))
        key, _ = generate_key(store, "reader", ["read"])
        app = create_app(ServerSettings(alert_interval=0), store=store)
        with serving(app) as url, chromium() as browser:
            session = Session(browser, url, key)
            try:
                yield session, incident
            finally:
                session.close()


def test_findings_are_listed_and_marked_on_the_charts(tab: tuple[Session, Incident]) -> None:
    """Over the last hour: a latency_spike on gpt-4o in the findings list with its baseline and
    current values, and a mark on the latency chart inside the incident; over the last 15
    minutes (after the incident) no mark, and the URL says which window it is."""
    session, incident = tab
    page = session.page
    session.problems.clear()
    session.open("/?w=1h")
    rows = page.locator("#findings tbody tr", has_text="latency_spike")
    assert rows.count() >= 1, page.inner_text("#findings")
    row = rows.filter(has_text="gpt-4o").first.inner_text()
    assert "baseline" in row and "current" in row and "critical" in row
    assert "llmpulse check over" in page.inner_text("#findings-note")
    assert int(page.get_attribute("#chart-latency", "data-marks") or 0) >= 1
    spans = page.evaluate(
        "document.getElementById('chart-latency').layout.shapes.map("
        "s => [new Date(s.x0).getTime() / 1000, new Date(s.x1).getTime() / 1000])"
    )
    assert any(a < incident.end and b > incident.start for a, b in spans), spans
    assert page.locator("#chart-latency .shapelayer path").count() >= 1
    page.click("button[data-window='15m']")
    page.wait_for_url("**/?w=15m")
    session.ready()
    assert page.get_attribute("#chart-latency", "data-marks") == "0"
    assert page.locator("#findings tbody tr", has_text="latency_spike").count() == 0
    assert session.problems == []


def test_the_system_page_says_host_metrics_are_not_recorded(tab: tuple[Session, Incident]) -> None:
    """With no system_* points stored the System page says so and how to record them, and
    draws no host chart."""
    session, _ = tab
    session.problems.clear()
    session.open("/system")
    note = session.page.locator("#host-none")
    assert note.is_visible() and "not recorded" in note.inner_text()
    assert "system_cpu_percent" in note.inner_text()
    assert session.page.locator("#host-charts .chart").count() == 0
    assert session.page.locator("#hosts").is_hidden()
    assert session.problems == []
