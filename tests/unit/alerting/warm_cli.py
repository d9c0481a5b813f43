"""``llmpulse`` commands as real processes, forked from one interpreter that imported them once.

A crash test that starts ``llmpulse alerts run`` 30 times pays Python's start and the imports
(SQLAlchemy, the store, alerting: ~1 s on 2 cores, more under load) 30 times, none of which it
tests: it kills the process at random points after the command printed its first line. Here one
process imports the CLI once; each :meth:`WarmCli.start` forks it, and the child runs the
command's ``main()`` with the given arguments: its own process, pid, connections, threads and
signals, killed and reaped like the one ``python -m llmpulse`` starts.

The interpreter forks from a single thread (checked), before any database is opened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys

_SERVER = r"""
import json, os, sys, threading
import llmpulse.alerting, llmpulse.cli.alerts, llmpulse.cli.main, llmpulse.store
try:
    import psycopg, sqlalchemy.dialects.postgresql.psycopg
except ImportError:
    pass
assert threading.active_count() == 1, threading.enumerate()
print("ready", flush=True)
for line in sys.stdin:
    argv = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        print(f"pid {os.getpid()}", flush=True)
        sys.argv = ["llmpulse", *argv]
        # Typer ends with SystemExit; it (or an error) leaves this loop and ends the child's
        # interpreter as `python -m llmpulse` ends: atexit handlers, flushes, the exit code.
        llmpulse.cli.main.main()
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    print(f"exited {os.waitstatus_to_exitcode(status)}", flush=True)
"""


class WarmCli:
    """Runs ``llmpulse ARGS`` one at a time, each in a fresh child forked from a warm parent."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )  # fmt: skip
        self.running: int | None = None  # the pid of the command started and not yet reaped
        self._ended: int | None = None  # the exit code of a command that ended before printing
        assert self._line() == "ready"

    def _line(self) -> str:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        assert line, f"the warm interpreter ended (exit {self.proc.poll()})"
        return line.rstrip("\n")

    def start(self, *args: str) -> tuple[int, str]:
        """Fork ``llmpulse ARGS``; returns its pid and the first line it printed."""
        self.proc.stdin.write(json.dumps(args) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        pid_line = self._line()
        assert pid_line.startswith("pid "), pid_line
        pid = self.running = int(pid_line.split()[1])
        first = self._line()
        if first.startswith("exited "):  # it ended without printing anything
            self.running, self._ended = None, int(first.split()[1])
        return pid, first

    def wait(self) -> int:
        """Wait until the running command ended (reaped); its exit code, -N for signal N."""
        if self._ended is not None:
            code, self._ended = self._ended, None
            return code
        while not (line := self._line()).startswith("exited "):
            pass  # the command's later output
        self.running = None
        return int(line.split()[1])

    def close(self) -> None:
        """End the warm interpreter, killing a command still running (a failed test's)."""
        if self.running is not None:
            with contextlib.suppress(ProcessLookupError):  # it may have ended meanwhile
                os.kill(self.running, signal.SIGKILL)
            self.wait()
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(10)
        self.proc.stdout.close()  # type: ignore[union-attr]

    def __enter__(self) -> WarmCli:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
