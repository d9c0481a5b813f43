"""The demo's closing verdict: what it says when the injected incident is only partly found.

A latency spike hidden by a busy machine (each simulated call's measured latency includes its
wait for a CPU) must not read as llmpulse missing it for no reason: the verdict says why and how
to run the demo so that it shows (`--workers 1`), and the `--workers` flag reaches the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmpulse.checks import CheckReport, Finding
from llmpulse.cli.main import app
from llmpulse.demo.findings import _verdict
from llmpulse.demo.runner import DemoResult, DemoSettings


def _finding(check: str) -> Finding:
    return Finding(
        check=check,
        severity="critical",
        subject={"model": "gpt-4o", "prompt_version": "answer-v3"},
        metric="m",
        window_start=5_000.0,
        window_end=6_000.0,
        baseline=1.0,
        current=3.0,
        change_pct=200.0,
        method="statistical",
        message=check,
    )


def _result(workers: int) -> DemoResult:
    return DemoResult(
        settings=DemoSettings(workers=workers),
        start=0.0,
        end=8_000.0,
        incident_start=4_800.0,
        incident_end=6_200.0,
        outcomes=[],
        wall_seconds=1.0,
        sdk_stats=None,
    )


def _report(*checks: str) -> CheckReport:
    return CheckReport(
        start=0.0, end=8_000.0, findings=[_finding(c) for c in checks], series_checked=18
    )


class TestVerdict:
    def test_all_found_has_no_hint(self) -> None:
        text = _verdict(
            _report("latency_spike", "error_rate_jump", "token_spike"), _result(4)
        ).plain
        assert "was found: error_rate_jump, latency_spike, token_spike" in text
        assert "--workers" not in text and "busy machine" not in text

    def test_a_missed_latency_spike_says_why_and_what_to_do(self) -> None:
        text = _verdict(_report("error_rate_jump", "token_spike"), _result(4)).plain
        assert "not fully found: missing latency_spike" in text
        assert "busy machine" in text and "--workers 1 (this run had 4)" in text

    def test_with_one_worker_it_does_not_suggest_one_worker(self) -> None:
        text = _verdict(_report("error_rate_jump", "token_spike"), _result(1)).plain
        assert "busy machine" in text and "--workers" not in text

    def test_another_miss_gets_no_latency_hint(self) -> None:
        text = _verdict(_report("latency_spike", "token_spike"), _result(4)).plain
        assert "missing error_rate_jump" in text and "busy machine" not in text


class TestWorkersFlag:
    def test_workers_reach_the_run(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """`llmpulse demo --workers 1` runs with one worker (the run itself is stopped at once)."""
        seen: list[DemoSettings] = []

        def fake_run_demo(settings: DemoSettings, progress: object = None) -> DemoResult:
            seen.append(settings)
            raise KeyboardInterrupt

        monkeypatch.setattr("llmpulse.demo.runner.run_demo", fake_run_demo)
        url = f"sqlite:///{tmp_path}/demo.db"
        CliRunner().invoke(app, ["demo", "--workers", "1", "--database-url", url])
        assert [s.workers for s in seen] == [1]

    def test_workers_out_of_range_is_refused(self) -> None:
        out = CliRunner().invoke(app, ["demo", "--workers", "0"])
        assert out.exit_code == 2 and "--workers" in out.output


class TestExploreCommands:
    def test_the_default_store_needs_no_flag(self) -> None:
        """After a demo into ./llmpulse.db the suggested commands read it as they are."""
        from llmpulse.cli.demo import explore_commands

        commands = explore_commands("sqlite:///./llmpulse.db")
        assert "llmpulse check" in commands and "llmpulse flow support" in commands
        assert not any("--database-url" in c for c in commands)

    def test_another_store_is_named_with_its_password_masked(self) -> None:
        """After `--database-url URL` each suggestion names that store (a bare `llmpulse check`
        would read ./llmpulse.db), never printing the password."""
        from llmpulse.cli.demo import explore_commands

        url = "postgresql://bob:secret@127.0.0.1:5432/test"
        commands = explore_commands(url)
        assert all(
            c.endswith(" --database-url postgresql://bob:***@127.0.0.1:5432/test") for c in commands
        )
        assert not any("secret" in c for c in commands)

    def test_each_suggestion_parses(self) -> None:
        """Each suggested command exists with those options, as a user would paste it."""
        from llmpulse.cli.demo import explore_commands
        from tests.test_docs_commands import _parse

        for url in ("sqlite:///./llmpulse.db", "sqlite:////tmp/demo.db"):
            for command in explore_commands(url):
                _parse(command)
