"""Check configuration: defaults, YAML, durations, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmpulse.checks import (
    CheckConfig,
    LiveConfig,
    MetricRule,
    RunsConfig,
    SpikeRule,
    format_duration,
    parse_duration,
)
from llmpulse.errors import ConfigError

YAML = """
live:
  method: rule
  bucket_seconds: 5m
  latency_spike: {multiplier: 2, min_increase: 50}
  branch_shift: {rule_delta: 0.3, critical_delta: 0.3}
  workflow_kinds: [chain]
runs:
  lookback_days: 14
  current_runs: 2
  metrics:
    accuracy: {method: mannwhitney, higher_is_better: true, warning_pct: 2, critical_pct: 5}
"""


class TestDefaults:
    def test_the_issue_multipliers_are_the_rule_defaults(self) -> None:
        """Token 1.5x, cost 2x, latency 1.5x, branch rate 0.2; the default method is statistical."""
        live = LiveConfig()
        assert live.method == "statistical"
        assert (
            live.token_spike.multiplier,
            live.cost_spike.multiplier,
            live.latency_spike.multiplier,
        ) == (1.5, 2.0, 1.5)
        assert live.branch_shift.rule_delta == 0.2

    def test_metrics_without_a_rule_use_the_default(self) -> None:
        """rule_for falls back to runs.default."""
        runs = RunsConfig(metrics={"accuracy": MetricRule(method="mannwhitney")})
        assert runs.rule_for("accuracy").method == "mannwhitney"
        assert runs.rule_for("latency_ms") == runs.default


class TestYaml:
    def test_a_full_file_builds_every_section(self, tmp_path: Path) -> None:
        """Nested sections, durations, lists and per-metric rules all land where they belong."""
        path = tmp_path / "checks.yaml"
        path.write_text(YAML)
        cfg = CheckConfig.from_yaml(str(path))
        assert cfg.live.method == "rule" and cfg.live.bucket_seconds == 300
        assert cfg.live.latency_spike == SpikeRule(multiplier=2.0, min_increase=50.0)
        assert cfg.live.workflow_kinds == ("chain",) and cfg.live.branch_shift.rule_delta == 0.3
        assert cfg.runs.lookback_days == 14.0 and cfg.runs.current_runs == 2
        accuracy = cfg.runs.rule_for("accuracy")
        assert (accuracy.method, accuracy.higher_is_better, accuracy.critical_pct) == (
            "mannwhitney",
            True,
            5.0,
        )

    def test_an_empty_file_is_the_defaults(self, tmp_path: Path) -> None:
        """An empty YAML document gives the default configuration."""
        path = tmp_path / "empty.yaml"
        path.write_text("")
        assert CheckConfig.from_yaml(str(path)) == CheckConfig()

    def test_missing_file_names_the_path(self, tmp_path: Path) -> None:
        """A file that does not exist is a ConfigError naming it."""
        with pytest.raises(ConfigError, match=r"cannot read .*nope\.yaml"):
            CheckConfig.from_yaml(str(tmp_path / "nope.yaml"))

    def test_broken_yaml_says_so(self, tmp_path: Path) -> None:
        """Unparseable YAML is a ConfigError, not a yaml exception."""
        path = tmp_path / "bad.yaml"
        path.write_text("live: [unclosed")
        with pytest.raises(ConfigError, match="not valid YAML"):
            CheckConfig.from_yaml(str(path))


class TestBadKeysAndValues:
    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (
                {"live": {"latency_spik": {}}},
                r"'live.latency_spik' is not a setting — did you mean 'latency_spike'\?",
            ),
            ({"lve": {}}, r"'lve' is not a setting — did you mean 'live'\?"),
            ({"live": {"alpha": "high"}}, r"'live.alpha' must be a number, got 'high'"),
            ({"live": {"min_points": 12.5}}, r"'live.min_points' must be a whole number"),
            (
                {"live": {"token_spike": {"enabled": "yes"}}},
                r"'live.token_spike.enabled' must be true or false",
            ),
            (
                {"live": {"method": "magic"}},
                r"live.method must be one of \('statistical', 'rule'\)",
            ),
            ({"live": {"bucket_seconds": 90}}, r"whole number of minutes"),
            ({"live": {"bucket_seconds": "5 parsecs"}}, r"not a duration"),
            (
                {"live": {"cost_spike": {"warning_pct": 50, "critical_pct": 20}}},
                r"in 'live.cost_spike'.*warning_pct <= critical_pct",
            ),
            (
                {"runs": {"metrics": {"accuracy": {"confidence": 1.5}}}},
                r"in 'runs.metrics.accuracy'.*confidence must be between 0 and 1",
            ),
            ({"runs": {"metrics": {"accuracy": {"method": "vibes"}}}}, r"method must be one of"),
            ({"runs": "often"}, r"'runs' must be a mapping of settings"),
            ([1, 2], r"the top level must be a mapping"),
        ],
    )
    def test_bad_config_names_the_key_and_the_fix(self, data: object, message: str) -> None:
        """Every bad key or value is a ConfigError that says where it is and what is allowed."""
        with pytest.raises(ConfigError, match=message):
            CheckConfig.from_dict(data)

    def test_dataclasses_check_their_values_in_code_too(self) -> None:
        """Building a rule with a multiplier of 1 in code is a ConfigError."""
        with pytest.raises(ConfigError, match="multiplier must be > 1"):
            SpikeRule(multiplier=1.0)


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [
            ("90s", 90),
            ("30m", 1800),
            ("6h", 21600),
            ("7d", 604800),
            ("2w", 1209600),
            ("1.5h", 5400),
        ],
    )
    def test_durations_parse(self, text: str, seconds: float) -> None:
        """A number and a unit (s, m, h, d, w) is that many seconds."""
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "24", "3x", "h", "-5m", "0m"])
    def test_bad_durations_say_how_to_write_one(self, text: str) -> None:
        """Anything else is a ConfigError with an example."""
        with pytest.raises(ConfigError, match="not a duration"):
            parse_duration(text)

    def test_format_is_the_shortest_exact_unit(self) -> None:
        """300 s is 5m, 5400 s is 90m, 86400 s is 1d, 45 s stays 45s."""
        assert [format_duration(s) for s in (300, 5400, 86400, 45)] == ["5m", "90m", "1d", "45s"]
