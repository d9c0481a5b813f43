"""Every command that opens the store names the same database for the same flags and
environment (``llmpulse.config.resolve_database_url``): --database-url, else
$LLMPULSE_DATABASE_URL, else a settings file's (``serve --config``), else ./llmpulse.db; a value
that is there wins even when it is empty, and is then refused with one message."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmpulse.cli.main import app
from llmpulse.config import DEFAULT_DATABASE_URL, ENV_DATABASE_URL, resolve_database_url
from llmpulse.server.settings import ServerSettings

EMPTY = (
    "error: database URL is empty; use e.g. sqlite:///./llmpulse.db or postgresql://user@host/db"
)

# Every command line that opens the store (before --database-url); none gets far enough to
# create anything at a URL whose directory does not exist.
COMMANDS = [
    ["stats"],
    ["traces", "list"],
    ["export"],
    ["flow", "support"],
    ["models", "list"],
    ["check"],
    ["db", "health"],
    ["db", "upgrade"],
    ["db", "cleanup", "--days", "1", "--dry-run"],
    ["keys", "list"],
    ["alerts", "list"],
    ["serve"],
    ["demo", "-n", "20"],
]
IDS = [" ".join(c[:2]) for c in COMMANDS]


def _error(command: list[str], flag: str | None, env: dict[str, str]) -> str:
    """The error line ``command`` ends with for ``--database-url flag`` (None: no flag)."""
    args = [*command] if flag is None else [*command, "--database-url", flag]
    result = CliRunner().invoke(app, args, env={**env, "COLUMNS": "500"})  # rich: no wrapping
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert lines, result.output
    return lines[-1]


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a scratch directory: a command that fell back to ./llmpulse.db would create it
    there, not in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def urls(tmp_path: Path) -> tuple[str, str]:
    """A flag's and an environment variable's database, both in directories that do not exist."""
    return f"sqlite:///{tmp_path}/flag/x.db", f"sqlite:///{tmp_path}/env/x.db"


class TestEveryCommandAgrees:
    @pytest.mark.parametrize("command", COMMANDS, ids=IDS)
    def test_flag_beats_the_environment(self, command: list[str], urls: tuple[str, str]) -> None:
        """With both, the command opens the flag's database."""
        flag, env = urls
        line = _error(command, flag, {ENV_DATABASE_URL: env})
        assert flag in line and env not in line

    @pytest.mark.parametrize("command", COMMANDS, ids=IDS)
    def test_environment_without_a_flag(self, command: list[str], urls: tuple[str, str]) -> None:
        """Without a flag, the command opens $LLMPULSE_DATABASE_URL's database."""
        _, env = urls
        assert env in _error(command, None, {ENV_DATABASE_URL: env})

    @pytest.mark.parametrize("command", COMMANDS, ids=IDS)
    def test_an_empty_flag_is_refused_alike(
        self, command: list[str], urls: tuple[str, str]
    ) -> None:
        """An empty --database-url is not skipped for the variable (or ./llmpulse.db): every
        command refuses it with the same line."""
        _, env = urls
        assert _error(command, "", {ENV_DATABASE_URL: env}) == EMPTY

    @pytest.mark.parametrize("command", COMMANDS, ids=IDS)
    def test_an_empty_variable_is_refused_alike(self, command: list[str]) -> None:
        """An empty $LLMPULSE_DATABASE_URL is refused as the SDK and the server refuse it."""
        assert _error(command, None, {ENV_DATABASE_URL: ""}) == EMPTY

    @pytest.mark.parametrize("command", COMMANDS, ids=IDS)
    def test_a_malformed_url_is_refused_alike(self, command: list[str]) -> None:
        """A URL the store cannot use gets the store's one message from every command."""
        assert _error(command, "foo://bar", {}) == (
            "error: unsupported database 'foo://bar': llmpulse stores to sqlite:/// or "
            "postgresql:// URLs"
        )


class TestResolve:
    @pytest.mark.parametrize(
        ("flag", "env", "configured", "expected"),
        [
            ("f.db", {ENV_DATABASE_URL: "e.db"}, "c.db", "f.db"),
            (None, {ENV_DATABASE_URL: "e.db"}, "c.db", "e.db"),
            (None, {}, "c.db", "c.db"),
            (None, {}, None, DEFAULT_DATABASE_URL),
            ("", {ENV_DATABASE_URL: "e.db"}, None, ""),
            (None, {ENV_DATABASE_URL: ""}, "c.db", ""),
        ],
    )
    def test_precedence(
        self, flag: str | None, env: dict[str, str], configured: str | None, expected: str
    ) -> None:
        """Flag, then variable, then settings file, then the default; a value there wins."""
        assert resolve_database_url(flag, env, configured) == expected

    @pytest.mark.parametrize(
        ("flag", "env"),
        [("f.db", {ENV_DATABASE_URL: "e.db"}), (None, {ENV_DATABASE_URL: "e.db"}), (None, {})],
    )
    def test_serve_settings_agree(
        self, tmp_path: Path, flag: str | None, env: dict[str, str]
    ) -> None:
        """The server's settings name the database the commands name, its file in the
        settings file's place."""
        config = tmp_path / "server.yaml"
        config.write_text("database_url: c.db\n")
        settings = ServerSettings.resolve(env=env, config_file=config, database_url=flag)
        assert settings.database_url == resolve_database_url(flag, env, "c.db")
        assert ServerSettings.resolve(env=env, database_url=flag).database_url == (
            resolve_database_url(flag, env)
        )
