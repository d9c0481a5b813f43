"""Configuration files name the file, the line and the field of a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmpulse._config_file import FieldError, read_yaml_file
from llmpulse.checks import CheckConfig
from llmpulse.errors import ConfigError, PriceTableError
from llmpulse.pricing import load_price_file
from llmpulse.recovery import RecoveryPolicy


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


class TestCheckFiles:
    def test_a_bad_value_names_file_line_and_field(self, tmp_path: Path) -> None:
        """A non-number multiplier is reported at its own line with its dotted path."""
        path = _write(
            tmp_path,
            "checks.yaml",
            "live:\n  alpha: 0.01\n  latency_spike:\n    warning_pct: 40\n    multiplier: x\n",
        )
        with pytest.raises(ConfigError) as info:
            CheckConfig.from_yaml(path)
        assert str(info.value) == (
            f"{path} line 5: live.latency_spike.multiplier: must be a number, got 'x'"
        )

    def test_an_unknown_key_points_at_its_line(self, tmp_path: Path) -> None:
        """A misspelt key is reported where it is written, with the suggestion."""
        path = _write(tmp_path, "checks.yaml", "live:\n  alpha: 0.01\n  latency_spik: {}\n")
        with pytest.raises(ConfigError, match=r"line 3: live\.latency_spik: is not a setting"):
            CheckConfig.from_yaml(path)

    def test_a_rule_refused_by_its_class_points_at_the_rule(self, tmp_path: Path) -> None:
        """A check between two fields (warning above critical) points at the rule's key."""
        text = "live:\n  cost_spike:\n    warning_pct: 50\n    critical_pct: 20\n"
        path = _write(tmp_path, "checks.yaml", text)
        with pytest.raises(ConfigError, match=r"line 2: live\.cost_spike: .*warning_pct"):
            CheckConfig.from_yaml(path)

    def test_in_code_the_error_names_the_field_only(self) -> None:
        """from_dict has no file: the error is a FieldError naming the field."""
        with pytest.raises(FieldError) as info:
            CheckConfig.from_dict({"live": {"alpha": "high"}})
        assert info.value.field == "live.alpha"
        assert "'live.alpha' must be a number" in str(info.value)


class TestPriceFiles:
    def test_a_bad_price_names_file_line_and_model(self, tmp_path: Path) -> None:
        """A model name with dots is found as one key; the line is the price's own."""
        text = "models:\n  gpt-4.1-custom:\n    input: 1.0\n    output: two\n"
        path = _write(tmp_path, "prices.yaml", text)
        with pytest.raises(PriceTableError) as info:
            load_price_file(path)
        assert str(info.value) == (
            f"price file {path} line 4: models.gpt-4.1-custom.output: must be a number, got 'two'"
        )

    def test_a_negative_price_names_the_model_line(self, tmp_path: Path) -> None:
        """A range error names the file, the model's line and the price."""
        path = _write(
            tmp_path,
            "prices.yaml",
            "models:\n  a: {input: 1, output: 1}\n  b: {input: 1, output: -2}\n",
        )
        with pytest.raises(
            PriceTableError, match=r"prices\.yaml line 3: models\.b: price 'output'"
        ):
            load_price_file(path)


class TestRecoveryFiles:
    def test_a_bad_value_under_a_recovery_key(self, tmp_path: Path) -> None:
        """A policy nested under `recovery:` reports the full path from the file's top."""
        text = "recovery:\n  fallback_models: [gpt-4o-mini]\n  server_error:\n    max_retries: -1\n"
        path = _write(tmp_path, "policy.yaml", text)
        with pytest.raises(ConfigError, match=r"line 4: recovery\.server_error\.max_retries: -1"):
            RecoveryPolicy.from_yaml(path)

    def test_a_per_model_limit_with_a_dotted_model_name(self, tmp_path: Path) -> None:
        """A per-model limiter entry is found under a model name holding dots."""
        text = "limiter:\n  per_model:\n    gpt-4.1:\n      requests_per_minute: 0\n"
        path = _write(tmp_path, "policy.yaml", text)
        with pytest.raises(
            ConfigError, match=r"line 4: limiter\.per_model\.gpt-4\.1\.requests_per_minute: 0"
        ):
            RecoveryPolicy.from_yaml(path)


class TestReading:
    def test_unreadable_and_broken_files_are_named(self, tmp_path: Path) -> None:
        """A missing file and broken YAML both name the file and its role."""
        with pytest.raises(ConfigError, match=r"cannot read checks config .*absent\.yaml"):
            read_yaml_file(tmp_path / "absent.yaml", "checks config")
        path = _write(tmp_path, "broken.yaml", "a: [1,\n")
        with pytest.raises(PriceTableError, match=r"price file .*broken\.yaml is not valid YAML"):
            read_yaml_file(path, "price file", PriceTableError)

    def test_a_missing_field_points_at_its_closest_key(self, tmp_path: Path) -> None:
        """A field absent from the file is placed at the nearest enclosing key."""
        doc = read_yaml_file(_write(tmp_path, "x.yaml", "a:\n  b:\n    c: 1\n"), "x")
        assert doc.line("a.b.missing") == 2
        assert doc.line(("a", "b", "c")) == 3
        assert doc.where("") == f"{doc.path} line 1: (top level)"
