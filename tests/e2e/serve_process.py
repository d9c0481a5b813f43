"""A real ``llmpulse serve`` subprocess: start, wait until healthy, SIGKILL, restart, RSS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
_SERVE = "from llmpulse.cli.main import main; main()"


def run_sdk(code: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``python -c code args...`` in the repository (for SDK processes)."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,
    )  # fmt: skip


class ServeProcess:
    """``llmpulse serve --port P --database-url URL`` with its stderr in ``log_path``."""

    def __init__(self, database_url: str, log_path: Path, port: int | None = None,
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.database_url = database_url
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[str] | None = None

    def start(self, timeout: float = 60.0) -> ServeProcess:
        """Start and wait until ``/api/v1/health`` answers 200."""
        self._log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, "serve", "--port", str(self.port),
             "--database-url", self.database_url],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=self._log,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llmpulse serve exited: {self.log()}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llmpulse serve did not start: {self.log()}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_bytes(self) -> int:
        """Resident memory of the server process (VmRSS from /proc), 0 once it is gone."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no answer to requests in progress."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self._close_log()

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 20 s)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        """What the server wrote to stderr so far."""
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""
