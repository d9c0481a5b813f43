"""``llmpulse check``: a table or JSON, and an exit status a CI pipeline can gate on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmpulse.cli.main import app
from llmpulse.schema import Run
from llmpulse.store import Store
from tests.unit.checks.conftest import T0
from tests.unit.checks.traffic import Incident, Traffic, make_spans

MIN = 60.0
END = T0 + 240 * MIN
UNTIL = str(END)


def _db(url: str, *incidents: Incident, runs: list[Run] | None = None) -> str:
    with Store.open(url) as store:
        store.write(
            spans=make_spans(Traffic(T0, 240, seed=11, incidents=incidents)), runs=runs or []
        )
    return url


def _check(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["check", "--until", UNTIL, "--window", "4h", *args])
    return result.exit_code, result.stdout, result.stderr


SPIKE = Incident(T0 + 120 * MIN, T0 + 150 * MIN, latency_x=3.0, error_rate=0.3)
MILD = Incident(T0 + 120 * MIN, T0 + 150 * MIN, latency_x=1.6)


class TestExitStatus:
    def test_quiet_traffic_exits_0(self, sqlite_url: str) -> None:
        """No findings: exit 0 and says so."""
        code, out, _ = _check("--database-url", _db(sqlite_url))
        assert code == 0 and "No findings." in out and "→ ok" in out

    def test_a_critical_finding_exits_1(self, sqlite_url: str) -> None:
        """A 3x latency spike with 30% errors is critical: exit 1, table and plain-words lines."""
        code, out, _ = _check("--database-url", _db(sqlite_url, SPIKE))
        assert code == 1
        for text in (
            "latency_spike",
            "error_rate_jump",
            "gpt-4o / answer-v2",
            "FAIL",
            "error rate of gpt-4o",
        ):
            assert text in out

    @pytest.mark.parametrize(("fail_on", "code"), [("warning", 1), ("critical", 0), ("never", 0)])
    def test_fail_on_sets_the_bar(self, sqlite_url: str, fail_on: str, code: int) -> None:
        """A warning-only finding (latency 1.6x) fails --fail-on warning and passes critical."""
        exit_code, out, _ = _check(
            "--database-url", _db(sqlite_url, MILD), "--fail-on", fail_on, "--json"
        )
        assert exit_code == code
        assert {f["severity"] for f in json.loads(out)["findings"]} == {"warning"}

    def test_rule_mode_from_the_command_line(self, sqlite_url: str) -> None:
        """--method rule compares the window with its baseline using the multipliers."""
        _db(sqlite_url, Incident(T0 + 180 * MIN, END, latency_x=2.0))
        result = CliRunner().invoke(
            app,
            [
                "check",
                "--database-url",
                sqlite_url,
                "--until",
                UNTIL,
                "--window",
                "1h",
                "--baseline",
                "3h",
                "--method",
                "rule",
                "--json",
                "--fail-on",
                "never",
            ],
        )
        data = json.loads(result.stdout)
        assert result.exit_code == 0
        assert {f["check"] for f in data["findings"]} == {"latency_spike"}
        assert {f["method"] for f in data["findings"]} == {"rule"}


class TestJson:
    def test_json_has_findings_summary_and_verdict(self, sqlite_url: str) -> None:
        """--json prints one object: window, findings, summary, skipped, fail_on, failed."""
        code, out, _ = _check("--database-url", _db(sqlite_url, SPIKE), "--json")
        data = json.loads(out)
        assert code == 1 and data["failed"] is True and data["fail_on"] == "critical"
        assert (
            data["summary"]["critical"]
            == len([f for f in data["findings"] if f["severity"] == "critical"])
            > 0
        )
        assert {
            "check",
            "severity",
            "subject",
            "metric",
            "window",
            "baseline",
            "current",
            "change_pct",
            "message",
        } <= set(data["findings"][0])
        assert data["window"]["end"] == END

    def test_runs_are_checked_and_summarised(self, sqlite_url: str) -> None:
        """Benchmark runs in the store get a row each in the summary; a drop is a regression."""
        runs = [
            Run(
                f"r{i}",
                "eval",
                T0 - (13 - i) * 3600,
                kind="benchmark",
                model="m",
                status="finished",
                metrics={"accuracy": 0.8 + 0.002 * (i % 3) if i < 10 else 0.7},
            )
            for i in range(13)
        ]
        code, out, _ = _check("--database-url", _db(sqlite_url, runs=runs), "--json")
        data = json.loads(out)
        assert [(f["check"], f["metric"]) for f in data["findings"]] == [("regression", "accuracy")]
        assert data["summary"]["runs"][0]["model"] == "m" and code == 0  # a -12% drop is a warning


class TestErrors:
    def test_bad_window_is_one_line_and_exit_2(self, sqlite_url: str) -> None:
        """--window 3x names the option and the syntax; no traceback."""
        code, out, err = _check("--database-url", _db(sqlite_url), "--window", "3x")
        assert (
            code == 2
            and "--window '3x' is not a duration" in err
            and "like 30m, 6h or 7d" in err
            and "Traceback" not in out + err
        )

    def test_bad_baseline_names_baseline_and_a_minus_sign_is_explained(
        self, sqlite_url: str
    ) -> None:
        code, _, err = _check("--database-url", _db(sqlite_url), "--baseline", "-5h")
        assert code == 2 and "--baseline '-5h' is not a duration" in err
        assert "drop the minus sign" in err

    def test_missing_sqlite_file_is_not_created(self, tmp_path: Path) -> None:
        """Checking a mistyped path exits 2 and does not leave an empty database behind."""
        path = tmp_path / "typo.db"
        code, _, err = _check("--database-url", f"sqlite:///{path}")
        assert code == 2 and "does not exist" in err and not path.exists()
        assert "record something first" in err and "--database-url" in err  # as stats says it

    def test_unreachable_postgres_is_exit_2(self) -> None:
        """A server that refuses connections exits 2 with the masked URL."""
        code, _, err = _check("--database-url", "postgresql://bob:secret@127.0.0.1:1/x")
        assert code == 2 and "cannot connect" in err and "secret" not in err

    def test_bad_config_key_is_exit_2(self, sqlite_url: str, tmp_path: Path) -> None:
        """A typo in the YAML exits 2 naming the file, line, key and the likely fix."""
        path = tmp_path / "checks.yaml"
        path.write_text("live:\n  latency_spik: {multiplier: 2}\n")
        code, _, err = _check("--database-url", _db(sqlite_url), "--config", str(path))
        assert (
            code == 2
            and "checks.yaml line 2: live.latency_spik: is not a setting — did you mean "
            "'latency_spike'?"
            in err
        )

    def test_bad_until_is_exit_2(self, sqlite_url: str) -> None:
        """--until must be a time."""
        result = CliRunner().invoke(
            app, ["check", "--database-url", _db(sqlite_url), "--until", "soon"]
        )
        assert result.exit_code == 2 and "--until 'soon' is not a time" in result.stderr

    def test_unknown_fail_on_is_a_usage_error(self, sqlite_url: str) -> None:
        """--fail-on accepts warning, critical or never (click's usage error, exit 2)."""
        code, _, err = _check("--database-url", _db(sqlite_url), "--fail-on", "bad")
        assert code == 2 and "warning" in err
