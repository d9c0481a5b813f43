"""``llmpulse db``: upgrade, cleanup and health through the real command line app."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from llmpulse.cli.main import app
from llmpulse.store import Store
from tests.unit.store.conftest import make_span

runner = CliRunner()


class TestUpgrade:
    def test_creates_then_reports_current(self, database_url: str) -> None:
        """The first upgrade creates the schema, the second says it is current."""
        first = runner.invoke(app, ["db", "upgrade", "--database-url", database_url])
        assert first.exit_code == 0, first.output
        assert "upgraded from empty to revision" in first.output
        second = runner.invoke(app, ["db", "upgrade", "--database-url", database_url])
        assert second.exit_code == 0 and "already at revision" in second.output

    def test_url_from_environment(self, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without --database-url the command uses LLMPULSE_DATABASE_URL."""
        monkeypatch.setenv("LLMPULSE_DATABASE_URL", sqlite_url)
        result = runner.invoke(app, ["db", "upgrade"])
        assert result.exit_code == 0 and sqlite_url in result.output

    def test_unreachable_is_one_line_and_exit_1(self) -> None:
        """An unreachable server prints one error line with the password masked, no traceback."""
        result = runner.invoke(
            app, ["db", "upgrade", "--database-url", "postgresql://u:hunter2@127.0.0.1:1/db"]
        )
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            "error: cannot connect to postgresql://u:***@127.0.0.1:1/db"
        )
        assert "hunter2" not in result.output + result.stderr and "Traceback" not in result.stderr


class TestHealth:
    def test_table_and_json(self, database_url: str) -> None:
        """Health shows revision and counts as a table, or as JSON with --json; exit 0 when current."""
        with Store.open(database_url) as store:
            store.write(spans=[make_span(), make_span()])
        table = runner.invoke(app, ["db", "health", "--database-url", database_url])
        assert table.exit_code == 0, table.output
        assert "up to date" in table.output and "rows: spans" in table.output
        as_json = runner.invoke(app, ["db", "health", "--json", "--database-url", database_url])
        report = json.loads(as_json.output)
        assert report["rows"]["spans"] == 2 and report["up_to_date"] is True

    def test_a_large_wal_is_shown_with_a_warning(
        self, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On SQLite the table shows the WAL size, and warns (exit 0) when it is over the limit."""
        from llmpulse.store import _health

        with Store.open(sqlite_url) as store:
            store.write(spans=[make_span()])
            reader = store._engine.connect()  # keeps the WAL file in place while health runs
            reader.exec_driver_sql("SELECT 1")
            try:
                wal_bytes = store.health()["wal_bytes"]
                assert wal_bytes > 0
                quiet = runner.invoke(app, ["db", "health", "--database-url", sqlite_url])
                monkeypatch.setattr(_health, "WAL_WARN_BYTES", wal_bytes // 2)
                loud = runner.invoke(app, ["db", "health", "--database-url", sqlite_url])
            finally:
                reader.close()
        assert quiet.exit_code == 0 and "WAL" in quiet.output and "warning" not in quiet.output
        assert loud.exit_code == 0 and "warning: the WAL file is" in loud.output

    def test_out_of_date_exits_1(self, sqlite_url: str) -> None:
        """An empty (unmigrated) database is reported with the fix, and exit status 1."""
        Store.open(sqlite_url, migrate=False).close()
        result = runner.invoke(app, ["db", "health", "--database-url", sqlite_url])
        assert result.exit_code == 1 and "llmpulse db upgrade" in result.output

    def test_missing_sqlite_file_not_created(self, tmp_path) -> None:
        """Health of a SQLite path that does not exist says so and creates nothing."""
        path = tmp_path / "typo.db"
        result = runner.invoke(app, ["db", "health", "--database-url", f"sqlite:///{path}"])
        assert result.exit_code == 1 and "does not exist" in result.stderr
        assert not path.exists()


class TestCleanup:
    def test_deletes_and_reports(self, sqlite_url: str) -> None:
        """Cleanup deletes raw rows older than --days and prints the counts per table."""
        with Store.open(sqlite_url) as store:
            store.write(spans=[make_span(start=1_000_000.0), make_span(start=1_000_001.0)])
        result = runner.invoke(
            app,
            ["db", "cleanup", "--days", "1", "--rollup-days", "1", "--database-url", sqlite_url,
             "--yes"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "deleted 2 spans" in result.output and "2 rollups" in result.output

    def _stored(self, url: str) -> int:
        with Store.open(url) as store:
            return store.count_spans(0, 2e9)

    def test_dry_run_shows_what_would_go_and_deletes_nothing(self, database_url: str) -> None:
        with Store.open(database_url) as store:
            store.write(spans=[make_span(start=1_000_000.0), make_span(start=time.time() - 60)])
        result = runner.invoke(
            app, ["db", "cleanup", "--days", "1", "--dry-run", "--database-url", database_url]
        )
        assert result.exit_code == 0, result.output
        assert "would delete 1 spans" in result.output and "nothing deleted" in result.output
        assert self._stored(database_url) == 2

    def test_asks_first_and_a_no_deletes_nothing(self, sqlite_url: str) -> None:
        with Store.open(sqlite_url) as store:
            store.write(spans=[make_span(start=time.time() - 60)])
        args = ["db", "cleanup", "--days", "0", "--database-url", sqlite_url]
        refused = runner.invoke(app, args, input="n\n")
        assert refused.exit_code == 1
        assert "that is every span stored" in refused.output and "pass --yes" in refused.output
        no_terminal = runner.invoke(app, args)  # nobody to answer: nothing happens
        assert no_terminal.exit_code == 1 and self._stored(sqlite_url) == 1
        agreed = runner.invoke(app, args, input="y\n")
        assert agreed.exit_code == 0 and "deleted 1 spans" in agreed.output
        assert self._stored(sqlite_url) == 0

    def test_nothing_to_delete_does_not_ask(self, sqlite_url: str) -> None:
        Store.open(sqlite_url).close()
        result = runner.invoke(app, ["db", "cleanup", "--days", "1", "--database-url", sqlite_url])
        assert result.exit_code == 0 and "nothing to delete" in result.output

    def test_days_required_and_not_negative(self, sqlite_url: str) -> None:
        """--days is required and must not be negative."""
        assert runner.invoke(app, ["db", "cleanup", "--database-url", sqlite_url]).exit_code == 2
        assert (
            runner.invoke(
                app, ["db", "cleanup", "--days", "-1", "--database-url", sqlite_url]
            ).exit_code
            == 2
        )
