"""First-hour store problems: no driver, no role, no reachable store. Each says what is wrong.

The driver probes run a real Python process in which ``import psycopg`` fails, as it does where
the ``[postgres]`` extra was not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from llmpulse.errors import StoreUnavailableError
from llmpulse.store import Store
from tests.conftest import POSTGRES_URL, service_missing

HANG = 120.0

_NO_PSYCOPG = textwrap.dedent(
    """
    import sys

    class _NoPsycopg:
        def find_spec(self, name, path=None, target=None):
            if name == "psycopg" or name.startswith("psycopg."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NoPsycopg())
    """
)


def _python(code: str, tmp_path: Path, *args: str, block_psycopg: bool = False) -> Any:
    paths = list(sys.path)
    if block_psycopg:
        (tmp_path / "sitecustomize.py").write_text(_NO_PSYCOPG)
        paths.insert(0, str(tmp_path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(
        [sys.executable, *(["-c", code] if code else []), *args],
        capture_output=True, text=True, timeout=HANG, env=env,
    )  # fmt: skip


class TestMissingDriver:
    def test_init_refuses_a_postgresql_url_without_the_driver(self, tmp_path: Path) -> None:
        """init() raises ConfigError naming the extra, instead of retrying and dropping."""
        code = textwrap.dedent(
            """
            import llmpulse
            from llmpulse.errors import ConfigError
            try:
                llmpulse.init("postgresql://app@127.0.0.1:5432/app", instrument=())
            except ConfigError as exc:
                print(exc)
            else:
                print("accepted")
            """
        )
        done = _python(code, tmp_path, block_psycopg=True)
        assert done.returncode == 0, done.stderr
        assert "needs the PostgreSQL driver psycopg" in done.stdout
        assert "pip install 'llmpulse[postgres]'" in done.stdout

    def test_the_demo_prints_the_install_hint_whole(self, tmp_path: Path) -> None:
        """The demo's error line keeps "[postgres]" (rich would take it for a style tag)."""
        code = "from llmpulse.cli.main import main; main()"
        done = _python(
            code, tmp_path, "demo", "--requests", "20", "--database-url",
            "postgresql://app@127.0.0.1:5432/app", block_psycopg=True,
        )  # fmt: skip
        assert done.returncode == 1
        assert "pip install 'llmpulse[postgres]'" in done.stdout + done.stderr


class TestMissingRole:
    def test_a_missing_role_is_not_called_a_missing_database(self) -> None:
        """PostgreSQL says the role does not exist: the hint is about the role."""
        from sqlalchemy.engine import make_url

        try:
            import psycopg

            psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
        except Exception as exc:  # noqa: BLE001 - any reason the server is not there
            service_missing("PostgreSQL", str(exc))
        url = make_url(POSTGRES_URL).set(username="llmpulse_no_such_role", password=None)
        with pytest.raises(StoreUnavailableError) as caught:
            Store.open(url.render_as_string(hide_password=False))
        message = str(caught.value)
        assert 'role "llmpulse_no_such_role" does not exist' in message
        assert "createuser" in message and "createdb" not in message


class TestUnreachableStoreAtExit:
    def test_the_last_word_counts_what_was_lost(self, tmp_path: Path) -> None:
        """A store that cannot be opened: the warnings end with how many records were lost,
        not with 'records are kept and retried'."""
        url = f"sqlite:///{tmp_path}/no/such/dir/llmpulse.db"
        code = textwrap.dedent(
            f"""
            import llmpulse
            llmpulse.init({url!r}, instrument=(), export_attempts=2, retry_backoff=0.0,
                          batch_size=40)
            for i in range(100):
                llmpulse.record_llm_call("gpt-4o-mini", input_tokens=i)
            """
        )
        done = _python(code, tmp_path)
        assert done.returncode == 0, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert "Shutdown: 100 of 100 records recorded were not stored and are lost" in last
        assert "export_failed 100 (last error: StoreUnavailableError" in last
        assert "retried" not in last
