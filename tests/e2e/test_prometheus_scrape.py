"""The real Prometheus server scrapes a running llmpulse server; its query API returns the
counter values the known traffic implies, and `promtool check metrics` finds nothing to fix."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from llmpulse.server.app import create_app
from llmpulse.server.settings import ServerSettings
from llmpulse.store import Store
from tests.conftest import free_port, service_missing
from tests.e2e.live_server import serving
from tests.unit.server.otlp_payloads import request, span

PB = {"Content-Type": "application/x-protobuf"}


def traffic() -> list[PbSpan]:
    """Known traffic: 5 ok calls and 2 errors on gpt-4o-mini (100 in / 10 out each)."""
    return [
        span(f"chat {i}", span_id=i + 1, error="boom" if i >= 5 else None, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10,
        })
        for i in range(7)
    ]  # fmt: skip


@pytest.fixture
def llmpulse_url(sqlite_url: str) -> Iterator[str]:
    with Store.open(sqlite_url) as store, serving(create_app(ServerSettings(), store=store)) as url:
        yield url


@pytest.fixture
def prometheus(tmp_path: Path, llmpulse_url: str) -> Iterator[str]:
    """A real Prometheus scraping the llmpulse server every 200 ms."""
    binary = shutil.which("prometheus")
    if binary is None:
        service_missing(
            "Prometheus", "the prometheus binary is not installed (apt-get install prometheus)"
        )
    target = llmpulse_url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 200ms, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: llmpulse\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = free_port()
    with (tmp_path / "prometheus.log").open("w") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def query(prom: str, expr: str) -> float | None:
    try:
        r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5)
    except httpx.TransportError:
        return None  # not listening yet
    result = r.json()["data"]["result"] if r.status_code == 200 else []
    return float(result[0]["value"][1]) if result else None


def wait_for(prom: str, expr: str, expected: float, timeout: float = 60) -> float | None:
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = query(prom, expr)
        if got == expected:
            return got
        time.sleep(0.1)
    return got


class TestPrometheusScrapes:
    def test_query_api_returns_the_counts_of_known_traffic(
        self, llmpulse_url: str, prometheus: str
    ) -> None:
        """After 7 calls (2 errors), Prometheus reads 5 ok, 2 error, 700 input tokens."""
        r = httpx.post(f"{llmpulse_url}/v1/traces", content=request(*traffic()).SerializeToString(),
                       headers=PB)  # fmt: skip
        assert r.status_code == 200
        m = 'model="gpt-4o-mini"'
        assert wait_for(prometheus, f'llm_requests_total{{{m},status="ok"}}', 5) == 5
        assert wait_for(prometheus, f'llm_requests_total{{{m},status="error"}}', 2) == 2
        assert wait_for(prometheus, f'llm_tokens_total{{{m},type="input"}}', 700) == 700
        assert wait_for(prometheus, f'llm_tokens_total{{{m},type="output"}}', 70) == 70
        assert wait_for(prometheus, f'llm_request_latency_seconds_count{{{m},kind="llm"}}', 7) == 7
        assert wait_for(prometheus, 'llmpulse_ingest_spans_total{source="otlp"}', 7) == 7
        cost = query(prometheus, f"llm_cost_usd_total{{{m}}}")
        assert cost is not None and cost > 0
        assert wait_for(prometheus, 'up{job="llmpulse"}', 1) == 1


class TestExposition:
    def test_promtool_finds_nothing_to_fix(self, llmpulse_url: str) -> None:
        """`promtool check metrics` on a scrape after traffic: exit 0, no lint output."""
        promtool = shutil.which("promtool")
        if promtool is None:
            service_missing("promtool", "not installed (apt-get install prometheus)")
        httpx.post(f"{llmpulse_url}/v1/traces", content=request(*traffic()).SerializeToString(),
                   headers=PB)  # fmt: skip
        httpx.get(f"{llmpulse_url}/no/such/route")
        body = httpx.get(f"{llmpulse_url}/metrics").content
        done = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip() == b"" and done.stderr.strip() == b""

    def test_openmetrics_on_request(self, llmpulse_url: str) -> None:
        """Asked for OpenMetrics, /metrics answers in it, ending with # EOF."""
        r = httpx.get(f"{llmpulse_url}/metrics",
                      headers={"Accept": "application/openmetrics-text; version=1.0.0"})  # fmt: skip
        assert r.headers["content-type"].startswith("application/openmetrics-text")
        assert r.text.endswith("# EOF\n")

    def test_http_metrics_use_route_templates(self, llmpulse_url: str) -> None:
        """HTTP series are labelled by route template; an unmatched path is 'other'."""
        for i in range(5):
            httpx.get(f"{llmpulse_url}/scanner/{i}")
        text = httpx.get(f"{llmpulse_url}/metrics").text
        assert 'llmpulse_http_requests_total{method="GET",route="other",status="404"} 5.0' in text
        assert "/scanner/" not in text
