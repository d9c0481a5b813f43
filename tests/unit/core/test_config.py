"""SDK settings: arguments over environment over defaults, and clear errors."""

from __future__ import annotations

import pytest

from llmpulse.config import DEFAULT_DATABASE_URL, SdkConfig, normalize_database_url
from llmpulse.errors import ConfigError


class TestResolve:
    def test_defaults(self) -> None:
        """With nothing set, the documented defaults apply."""
        cfg = SdkConfig.resolve(env={})
        assert cfg.database_url == DEFAULT_DATABASE_URL and cfg.sample_rate == 1.0 and cfg.enabled

    def test_env_then_arguments(self) -> None:
        """Environment variables override defaults and arguments override both."""
        env = {
            "LLMPULSE_SAMPLE_RATE": "0.25",
            "LLMPULSE_REDACT": "yes",
            "LLMPULSE_QUEUE_SIZE": "10",
        }
        cfg = SdkConfig.resolve(env=env, queue_size=99)
        assert (cfg.sample_rate, cfg.redact, cfg.queue_size) == (0.25, True, 99)

    @pytest.mark.parametrize(
        ("env", "needle"),
        [
            ({"LLMPULSE_SAMPLE_RATE": "lots"}, "LLMPULSE_SAMPLE_RATE must be a number"),
            ({"LLMPULSE_SAMPLE_RATE": "1.5"}, "between 0.0 and 1.0"),
            ({"LLMPULSE_REDACT": "maybe"}, "true/false"),
            ({"LLMPULSE_QUEUE_SIZE": "0"}, "queue_size must be >= 1"),
            ({"LLMPULSE_FLUSH_INTERVAL": "-1"}, "flush_interval must be > 0"),
        ],
    )
    def test_bad_values_are_named(self, env: dict[str, str], needle: str) -> None:
        """A bad setting raises ConfigError naming the variable and what it expects."""
        with pytest.raises(ConfigError, match=needle):
            SdkConfig.resolve(env=env)

    def test_unknown_argument(self) -> None:
        """A misspelt setting is refused rather than ignored."""
        with pytest.raises(ConfigError, match="sample_rat"):
            SdkConfig.resolve(env={}, sample_rat=0.5)


class TestDatabaseUrl:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
            ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
            ("sqlite:///x.db", "sqlite:///x.db"),
            ("./data/x.db", "sqlite:///./data/x.db"),
        ],
    )
    def test_spellings(self, given: str, expected: str) -> None:
        """Common URL spellings map onto the installed drivers."""
        assert normalize_database_url(given) == expected

    def test_empty(self) -> None:
        """An empty URL is a ConfigError with an example of a good one."""
        with pytest.raises(ConfigError, match="sqlite:///"):
            normalize_database_url("  ")
