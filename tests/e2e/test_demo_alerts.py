"""The demo with alert rules: the incident's alerts fire into a real local webhook receiver
while it lasts, resolve after it, and nothing else fires."""

from __future__ import annotations

import textwrap

from typer.testing import CliRunner

from llmpulse.alerting import load_rules
from llmpulse.alerting.channels import NetworkPolicy
from llmpulse.cli.main import app
from llmpulse.demo.alerts import replay_alerts
from llmpulse.demo.runner import DemoResult

from ..unit.alerting.hook import hook

WINDOW = 600.0


def _rules(path, url: str):
    # Thresholds a user would set for this pipeline's normal latencies (tens of ms) and errors
    # (none); the default rules file's are for real providers (seconds). Latencies are measured
    # on this (shared, busy) machine, so the latency rule watches the median over 10 minutes:
    # the incident makes it x5, while a few calls slowed by the machine do not move it.
    path.write_text(textwrap.dedent(f"""\
        channels:
          hook: {{type: webhook, url: "{url}"}}
        rules:
          - {{name: slow_model, metric: latency_p50_ms, by: [model], window: 10m, warning: 120,
              min_requests: 10, channels: [hook]}}
          - {{name: failing_model, metric: error_rate, by: [model], window: 10m, warning: 0.1,
              min_requests: 10, channels: [hook]}}
          - {{name: token_burn, metric: output_tokens, by: [model], window: 5m,
              warning: 1000000, channels: [hook]}}
        """))  # fmt: skip
    return path


class TestDemoAlerts:
    def test_incident_alerts_fire_and_resolve_nothing_else(
        self, full_demo: DemoResult, tmp_path
    ) -> None:
        """Latency and error-rate alerts for gpt-4o fire inside the incident and resolve after
        it; each notice reaches the receiver once; no other alert fires. Over the session's
        full demo run (tests/e2e/conftest.py), which test_demo_findings checks too."""
        with hook() as h:
            rules = load_rules(_rules(tmp_path / "rules.yaml", h.url),
                               policy=NetworkPolicy(["127.0.0.1"]))  # fmt: skip
            result = full_demo
            replay = replay_alerts(result, rules)
            payloads = h.ok_payloads()
            keys = h.ok_keys()
        got = {(a.rule, a.labels["model"]) for a in replay.alerts}
        assert got == {("slow_model", "gpt-4o"), ("failing_model", "gpt-4o")}
        for a in replay.alerts:
            assert result.incident_start <= a.fired_at <= result.incident_end, a
            assert a.state == "resolved"
            assert result.incident_end < a.resolved_at <= result.incident_end + WINDOW + 120, a
        sent = sorted((p["status"], p["alerts"][0]["rule"]) for p in payloads)
        assert sent == [("firing", "failing_model"), ("firing", "slow_model"),
                        ("resolved", "failing_model"), ("resolved", "slow_model")]  # fmt: skip
        assert set(keys.values()) == {1} and replay.failed == 0

    def test_cli_flag(self, sqlite_url, tmp_path) -> None:
        """`llmpulse demo --alert-rules` runs the same replay and lists the alerts.

        One worker, as the session's full demo (tests/e2e/conftest.py): the latencies are
        measured wall times, and with four workers on a loaded machine (the suite's other
        workers) the calls outside the incident also crossed the 120 ms median now and then,
        firing slow_model a second time (6 notices instead of 4)."""
        with hook() as h:
            path = _rules(tmp_path / "rules.yaml", h.url)
            result = CliRunner().invoke(app, [
                "demo", "-n", "200", "--workers", "1", "--database-url", sqlite_url,
                "--alert-rules", str(path), "--allow-network", "127.0.0.1"])  # fmt: skip
            delivered = len(h.ok_payloads())
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())  # rich wraps long lines
        assert "Alerts (3 rules" in text and "slow_model" in text and "failing_model" in text
        assert "token_burn" not in text
        assert delivered == 4  # two alerts, firing and resolved

    def test_bad_rules_file_stops_before_the_run(self, sqlite_url, tmp_path) -> None:
        """A broken rules file is reported (file, line, field) before any ticket is answered."""
        path = tmp_path / "bad.yaml"
        path.write_text("rules:\n  - {name: x, metric: latency_p95_ms, warning: fast}\n")
        result = CliRunner().invoke(app, ["demo", "--database-url", sqlite_url,
                                          "--alert-rules", str(path)])  # fmt: skip
        text = " ".join(result.output.split())
        assert result.exit_code == 1
        assert "line 2: rules[0].warning: must be a number" in text
        assert "answering tickets" not in text
