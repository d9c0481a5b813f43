"""Every command that opens an existing database says the same thing when its SQLite file is
missing, and creates nothing (the one check lives in ``cli._options.open_existing_store``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmpulse.cli.main import app

RECORD_FIRST = "(record something first, e.g. `llmpulse demo`, or pass --database-url)"
CREATE_WITH_UPGRADE = "(run `llmpulse db upgrade` to create it)"

# (command line before --database-url, exit status, what the line ends with)
COMMANDS = [
    (["stats"], 1, RECORD_FIRST),
    (["traces", "list"], 1, RECORD_FIRST),
    (["traces", "show", "t1"], 1, RECORD_FIRST),
    (["export"], 1, RECORD_FIRST),
    (["flow", "support"], 1, RECORD_FIRST),
    (["models", "list"], 1, RECORD_FIRST),
    (["models", "add", "m1", "--input-price", "1", "--output-price", "2"], 1, RECORD_FIRST),
    (["models", "update", "m1", "--input-price", "1"], 1, RECORD_FIRST),
    (["check"], 2, RECORD_FIRST),
    (["db", "health"], 1, CREATE_WITH_UPGRADE),
    (["db", "cleanup", "--days", "1", "--dry-run"], 1, RECORD_FIRST),
    (["db", "cleanup", "--days", "1", "--yes"], 1, RECORD_FIRST),
]


class TestMissingSqliteFile:
    @pytest.mark.parametrize(
        ("command", "code", "fix"), COMMANDS, ids=[" ".join(c[0][:4]) for c in COMMANDS]
    )
    def test_one_message_for_every_command(
        self, tmp_path: Path, command: list[str], code: int, fix: str
    ) -> None:
        """The command exits with its own status and the one shared line, and leaves no file."""
        path = tmp_path / "typo.db"
        url = f"sqlite:///{path}"
        result = CliRunner().invoke(app, [*command, "--database-url", url])
        assert result.exit_code == code, result.output
        assert result.stderr.strip() == (
            f"error: no database at {url}: the file {path} does not exist {fix}"
        )
        assert not path.exists()
