"""`llmpulse serve --workers 2`: every scrape of /metrics counts what all workers ingested."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.unit.server.otlp_payloads import request, span

PB = {"Content-Type": "application/x-protobuf"}
REQUESTS = 24


def value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


class TestWorkers:
    def test_each_scrape_merges_all_workers(self, tmp_path: Path) -> None:
        """24 exports over fresh connections to 2 workers; every scrape reads all 24."""
        port = free_port()
        prom_dir = tmp_path / "prom"
        (prom_dir / "stale").mkdir(parents=True)  # a previous run's leftovers: wiped at start
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(prom_dir)}
        code = "from llmpulse.cli.main import main; main()"
        with (tmp_path / "serve.log").open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", code, "serve", "--port", str(port), "--workers", "2",
                 "--database-url", f"sqlite:///{tmp_path / 'llmpulse.db'}"],
                env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
            for i in range(REQUESTS):
                body = request(span("chat", span_id=i + 1, attributes={
                    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 10,
                })).SerializeToString()  # fmt: skip
                with httpx.Client() as client:  # a fresh connection: any worker may take it
                    assert (
                        client.post(f"{url}/v1/traces", content=body, headers=PB).status_code == 200
                    )
            for _ in range(6):
                with httpx.Client() as client:
                    text = client.get(f"{url}/metrics").text
                assert value(text, "llmpulse_ingest_spans_total", source="otlp") == REQUESTS
                assert (
                    value(text, "llm_requests_total", model="gpt-4o-mini", status="ok") == REQUESTS
                )
                assert (
                    value(text, "llm_tokens_total", model="gpt-4o-mini", type="input")
                    == 10 * REQUESTS
                )
            assert not (prom_dir / "stale").exists()
            assert list(prom_dir.glob("counter_*.db"))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
