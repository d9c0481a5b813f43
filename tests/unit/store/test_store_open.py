"""Opening a store: migrations, re-opening, and clear errors when the database is not there."""

from __future__ import annotations

import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa

from llmpulse.errors import MigrationError, StoreUnavailableError
from llmpulse.store import RELATIVE_ERROR, Store
from llmpulse.store._migrate import VERSION_TABLE, head_revision
from llmpulse.store.engine import CACHE_KIB, mask_url

TABLES = {
    "spans",
    "metric_points",
    "runs",
    "rollup_keys",
    "rollups",
    VERSION_TABLE,
}


def _tables(url: str) -> set[str]:
    from llmpulse.config import normalize_database_url

    engine = sa.create_engine(normalize_database_url(url))
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


class TestMigrations:
    def test_empty_database_gets_every_table(self, database_url: str) -> None:
        """Opening an empty database creates the whole schema at the head revision."""
        with Store.open(database_url) as store:
            report = store.health()
        assert _tables(database_url) >= TABLES
        assert report["revision"] == head_revision() and report["up_to_date"] is True

    def test_migrating_warns_about_nothing(self, sqlite_url: str) -> None:
        """Alembic gets a complete configuration (path_separator included): no warnings at all.

        Opening a store used to raise Alembic's "No path_separator found" DeprecationWarning,
        which breaks any application or test suite that runs with warnings as errors.
        """
        from llmpulse.store._migrate import _config

        assert _config().get_main_option("path_separator") == "os"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Store.open(sqlite_url) as store:
                store.upgrade()
        assert [str(w.message) for w in caught] == []

    def test_reopen_is_idempotent(self, database_url: str) -> None:
        """Opening an up-to-date database again changes nothing and keeps the data."""
        from tests.unit.store.conftest import make_span

        with Store.open(database_url) as store:
            store.write(spans=[make_span()])
        with Store.open(database_url) as store:
            before, after = store.upgrade()
            assert before == after == head_revision()
            assert store.health()["rows"]["spans"] == 1

    def test_migrate_false_leaves_schema_alone(self, database_url: str) -> None:
        """With migrate=False an empty database stays empty and health says so."""
        with Store.open(database_url, migrate=False) as store:
            report = store.health()
        assert (
            report["reachable"] is True
            and report["revision"] is None
            and report["up_to_date"] is False
        )
        assert not (TABLES & _tables(database_url))

    def test_unknown_revision_is_a_migration_error(self, sqlite_url: str) -> None:
        """A database stamped by a newer llmpulse fails with MigrationError naming the revision."""
        Store.open(sqlite_url).close()
        engine = sa.create_engine(sqlite_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff'"))
        engine.dispose()
        with pytest.raises(MigrationError, match="ffff"):
            Store.open(sqlite_url)

    def test_concurrent_first_opens(self, sqlite_url: str) -> None:
        """Several threads opening a fresh database at once all succeed (one migrates, others wait)."""
        errors: list[BaseException] = []

        def open_it() -> None:
            try:
                Store.open(sqlite_url).close()
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert _tables(sqlite_url) >= TABLES

    def test_head_revision_is_alembics(self) -> None:
        """The newest revision, read from the revision files, is the head Alembic finds."""
        from alembic.script import ScriptDirectory

        from llmpulse.store._migrate import _config

        assert head_revision() == ScriptDirectory.from_config(_config()).get_current_head()

    def test_a_current_schema_never_loads_alembic(self, tmp_path) -> None:  # noqa: ANN001
        """Importing the store and opening a database already at head leave Alembic (11 MB
        with Mako and Pygments) unloaded; only an upgrade loads it."""
        url = f"sqlite:///{tmp_path / 'x.db'}"
        code = (
            "import sys\nfrom llmpulse.store import Store\n"
            "assert 'alembic' not in sys.modules, 'import'\n"
            f"with Store.open({url!r}) as s:\n    current = s.schema_is_current()\n"
            "print(current, 'alembic' in sys.modules)\n"
        )
        first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
        assert first.stdout.split() == ["True", "True"]  # it migrated: Alembic was needed
        assert again.stdout.split() == ["True", "False"]

    def test_writing_never_loads_numpy_and_a_percentile_does(self, tmp_path) -> None:  # noqa: ANN001
        """Ingest (rows, rollups, histogram merges in upserts) runs without numpy, which only a
        query that computes percentiles loads (15 MB a server that only ingests never pays)."""
        url = f"sqlite:///{tmp_path / 'x.db'}"
        code = (
            "import sys\nfrom llmpulse.schema import Span\nfrom llmpulse.store import Store\n"
            f"s = Store.open({url!r})\n"
            "for n in range(3):  # the same keys and minute: later writes merge histograms\n"
            "    s.write([Span('t', f's{n}{i}', 'chat', 1e9 + i, 1e9 + i + (i + 1) / 1000,"
            " kind='llm', model='m') for i in range(100)])\n"
            "print('numpy' in sys.modules)\n"
            "(row,) = s.span_stats(1e9 - 60, 1e9 + 600)\n"
            "print('numpy' in sys.modules, row.calls, row.p50_latency_ms)\n"
            "s.close()\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        before, after, calls, p50 = done.stdout.split()
        assert (before, after, calls) == ("False", "True", "300")
        assert abs(float(p50) - 50.5) <= 50.5 * RELATIVE_ERROR  # latencies 1..100 ms

    def test_serve_migrates_in_a_child_and_reports_its_failure(self, tmp_path) -> None:  # noqa: ANN001
        """`llmpulse serve` brings an empty database to head in a child process, and a failing
        upgrade stops it with the child's one-line reason."""
        from llmpulse.cli.serve import _preflight
        from llmpulse.server.settings import ServerSettings

        url = f"sqlite:///{tmp_path / 'x.db'}"
        _preflight(ServerSettings(database_url=url))
        with Store.open(url, migrate=False) as store:
            assert store.schema_is_current()
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff'"))
        engine.dispose()
        with pytest.raises(MigrationError, match="ffff") as caught:
            _preflight(ServerSettings(database_url=url))
        assert "Traceback" not in str(caught.value) and "\n" not in str(caught.value)


class TestUnavailable:
    def test_postgres_refused_names_url_and_masks_password(self) -> None:
        """A PostgreSQL server that is not listening gives one line naming the URL, password masked."""
        with pytest.raises(StoreUnavailableError) as info:
            Store.open("postgresql://postgres:s3cret@127.0.0.1:1/db")
        message = str(info.value)
        assert message.startswith("cannot connect to postgresql://postgres:***@127.0.0.1:1/db: ")
        assert "is the server running?" in message and "s3cret" not in message

    def test_sqlite_directory_missing(self, tmp_path) -> None:
        """A SQLite file in a directory that does not exist says which and what to check."""
        url = f"sqlite:///{tmp_path}/nope/llmpulse.db"
        with pytest.raises(StoreUnavailableError, match="does the directory exist"):
            Store.open(url)

    @pytest.mark.parametrize("url", ["mysql://root@localhost/db", "", "   "])
    def test_unsupported_or_empty_url(self, url: str) -> None:
        """Unsupported or empty URLs are refused with a hint at what works."""
        with pytest.raises(StoreUnavailableError, match="sqlite"):
            Store.open(url)

    def test_bare_path_means_sqlite(self, tmp_path) -> None:
        """A bare file path opens a SQLite database there."""
        with Store.open(str(tmp_path / "plain.db")) as store:
            assert store.backend == "sqlite"
        assert (tmp_path / "plain.db").exists()

    @pytest.mark.parametrize("url", ["sqlite:///~/home.db", "~/home.db"])
    def test_a_tilde_means_the_home_directory(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``~`` in a SQLite path is the user's home, as in a shell, for the store and for a
        read command; no directory named ``~`` appears under the current one."""
        from typer.testing import CliRunner

        from llmpulse.cli.main import app

        home, work = tmp_path / "home", tmp_path / "work"
        home.mkdir()
        work.mkdir()
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.chdir(work)
        with Store.open(url) as store:
            assert str(home / "home.db") in store.url
        assert (home / "home.db").exists() and not (work / "~").exists()
        result = CliRunner().invoke(app, ["stats", "--database-url", url, "--json"])
        assert result.exit_code == 0, result.output
        assert not (work / "~").exists()

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("postgresql+psycopg://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
            ("postgresql+psycopg://u@h/db", "postgresql://u@h/db"),
            ("sqlite:///./x.db", "sqlite:///./x.db"),
        ],
    )
    def test_password_is_masked(self, url: str, shown: str) -> None:
        """Passwords never appear in URLs the store prints."""
        assert mask_url(url) == shown

    def test_store_url_and_repr_mask(self, postgres_url: str) -> None:
        """An open store's url and repr hide the password (trust auth accepts any)."""
        with Store.open(postgres_url.replace("postgres@", "postgres:pw123@", 1)) as store:
            assert "pw123" not in store.url and "pw123" not in repr(store)
            assert store.url.startswith("postgresql://postgres:***@")


class TestPageCache:
    def test_every_sqlite_connection_has_a_bounded_page_cache(self, tmp_path) -> None:  # noqa: ANN001
        """Each pooled connection caches at most CACHE_KIB of pages, writers and readers alike:
        the page cache is what a long-running server's memory grows by."""
        with (
            Store.open(f"sqlite:///{tmp_path / 'x.db'}") as store,
            store._engine.connect() as one,
            store._engine.connect() as two,
        ):
            for conn in (one, two):
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -CACHE_KIB


class TestUrlMistakes:
    @pytest.mark.parametrize("url", ["sqlite://llmpulse.db", "sqlite://host:5/x.db"])
    def test_two_slashes_says_three(self, url: str) -> None:
        """`sqlite://file.db` (the file name taken as a host) is one clear error naming the
        spelling to use, not SQLAlchemy's ArgumentError."""
        with pytest.raises(StoreUnavailableError, match=r"three slashes, sqlite:///llmpulse\.db"):
            Store.open(url)

    def test_the_cli_says_it_in_one_line(self) -> None:
        from typer.testing import CliRunner

        from llmpulse.cli.main import app

        for args in (["stats"], ["db", "upgrade"], ["traces", "list"]):
            out = CliRunner().invoke(app, [*args, "--database-url", "sqlite://llmpulse.db"])
            assert out.exit_code == 1, (args, out.output)
            assert "three slashes" in out.output and "Traceback" not in out.output
