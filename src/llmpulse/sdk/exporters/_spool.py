"""A bounded, crash-safe file spool of request bodies, one directory per process.

The HTTP exporter writes a batch here when the server cannot take it, and replays the spool
in order once the server is back. Layout::

    <spool_dir>/<server key>/            one per server URL: a batch only goes where it was sent
        <host>-<pid>-<random>/           one per process (the owner)
            lock                         flock-ed by the owner for as long as it lives
            000000000001.seg             one batch: a header line, then the gzip body
            000000000002.seg

* **Durable.** A segment is written to a temporary name, fsync-ed, renamed into place and its
  directory fsync-ed: after a crash a segment is either whole or absent. Each header carries
  the body's length and CRC-32, so a segment damaged anyway (a disk that lied) is detected,
  counted and removed instead of being sent.
* **One owner per directory.** The owner holds an exclusive ``flock`` on its ``lock`` file.
  The kernel releases it when the process dies, even by SIGKILL; a process that can take the
  lock of another directory knows its owner is gone, adopts the directory (keeping the lock,
  so no third process adopts it too) and replays its segments before its own. Processes never
  write into each other's directories, so a spool shared by many processes is never corrupted.
  Without ``fcntl`` (Windows) the owner's pid, written in the lock file, is checked instead.
* **Bounded.** ``max_bytes`` bounds the segments this process holds (its own and adopted).
  When a new batch does not fit, the **oldest** segments are dropped until it does (the recent
  data an operator looks at after an outage is kept) and their records counted as
  ``spool_full``; a batch larger than the whole spool is dropped itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Segment", "Spool", "SpoolCorrupt", "default_spool_dir", "server_key"]

_SUFFIX = ".seg"
_LOCK = "lock"
_VERSION = 1

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class SpoolCorrupt(Exception):
    """A segment whose header or body does not check out (counted, then removed)."""


@dataclass(slots=True)
class Segment:
    """One spooled batch: where it is, its size and what it holds."""

    path: Path
    size: int  # bytes on disk
    counted: int  # records this process counts in its stats (0 for an adopted segment)
    records: int  # records in the body (counted + self-metric points, or all if adopted)
    adopted: bool
    uncounted_points: int = 0  # trailing metric points of the body that are not counted


def default_spool_dir() -> Path:
    """Where spools go unless told: the user's state (or cache) directory, per platform.

    ``$XDG_STATE_HOME/llmpulse/spool`` (``~/.local/state``) on Linux,
    ``~/Library/Caches/llmpulse/spool`` on macOS, ``%LOCALAPPDATA%\\llmpulse\\spool`` on Windows.
    """
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "llmpulse" / "spool"
    if os.uname().sysname == "Darwin":
        return Path.home() / "Library" / "Caches" / "llmpulse" / "spool"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "llmpulse" / "spool"


def server_key(server_url: str) -> str:
    """The spool subdirectory of a server: readable host and port, plus a hash of the URL."""
    digest = hashlib.sha256(server_url.encode()).hexdigest()[:12]
    host = server_url.split("://", 1)[-1].split("/", 1)[0]
    safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in host)[:64]
    return f"{safe}-{digest}"


class Spool:
    """The segments of one process (and of dead processes it adopted), oldest first.

    Thread-safe: the export thread appends, the replay thread reads the head and removes it.
    """

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._segments: deque[Segment] = deque()
        self._bytes = 0
        self._own: Path | None = None  # created on the first write
        self._own_lock_fd: int | None = None
        self._held: dict[Path, int] = {}  # adopted directories -> their lock fds
        self._seq = 0
        self._busy: Segment | None = None  # the head, while the replay thread sends it

    # -- state -------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Bytes of the segments held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._segments)

    def counts(self) -> tuple[int, int]:
        """(records this process counts, records adopted from dead processes) held."""
        with self._lock:
            own = sum(s.counted for s in self._segments)
            adopted = sum(s.records for s in self._segments if s.adopted)
        return own, adopted

    @property
    def own_dir(self) -> Path | None:
        """This process's directory, once something was spooled."""
        return self._own

    # -- writing -----------------------------------------------------------------------------
    def append(
        self, body: bytes, counted: int, records: int, uncounted_points: int
    ) -> list[Segment]:
        """Write one batch durably; returns the segments dropped to make room (oldest first).

        The new segment itself is returned among the dropped when it is larger than the whole
        spool (nothing is written then). Raises ``OSError`` when the disk refuses.
        """
        header = {
            "v": _VERSION, "len": len(body), "crc": zlib.crc32(body), "counted": counted,
            "records": records, "uncounted_points": uncounted_points, "pid": os.getpid(),
        }  # fmt: skip
        data = json.dumps(header, separators=(",", ":")).encode() + b"\n" + body
        if len(data) > self.max_bytes:
            return [Segment(Path(), len(data), counted, records, False, uncounted_points)]
        own = self._own_dir()
        with self._lock:
            self._seq += 1
            seq = self._seq
        path = own / f"{seq:012d}{_SUFFIX}"
        tmp = own / f".{seq:012d}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(own)
        segment = Segment(path, len(data), counted, records, False, uncounted_points)
        dropped: list[Segment] = []
        with self._lock:
            while self._bytes + segment.size > self.max_bytes and self._segments:
                victim = self._oldest_idle()
                if victim is None:
                    break
                self._segments.remove(victim)
                self._bytes -= victim.size
                dropped.append(victim)
            self._segments.append(segment)
            self._bytes += segment.size
        for victim in dropped:
            _unlink(victim.path)
        return dropped

    def _oldest_idle(self) -> Segment | None:
        for segment in self._segments:
            if segment is not self._busy:
                return segment
        return None

    def _own_dir(self) -> Path:
        if self._own is not None:
            return self._own
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"{socket.gethostname()[:32]}-{os.getpid()}-{secrets.token_hex(4)}"
        # Made under a hidden name and renamed once its lock is held: no other process (nor
        # another exporter of this one) can see it unlocked and take it for an orphan.
        hidden = self.root / f".new-{name}"
        hidden.mkdir(mode=0o700)
        fd = os.open(hidden / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, str(os.getpid()).encode())
        path = self.root / name
        os.replace(hidden, path)
        self._own, self._own_lock_fd = path, fd
        return path

    # -- reading -----------------------------------------------------------------------------
    def head(self) -> Segment | None:
        """The oldest segment, marked busy (eviction spares it) until ``done`` or ``release``."""
        with self._lock:
            if not self._segments:
                return None
            self._busy = self._segments[0]
            return self._busy

    def release(self) -> None:
        """The head was not delivered: it stays first."""
        with self._lock:
            self._busy = None

    def done(self, segment: Segment) -> None:
        """The head was delivered or given up: remove it."""
        with self._lock:
            self._busy = None
            if segment in self._segments:
                self._segments.remove(segment)
                self._bytes -= segment.size
        _unlink(segment.path)
        self._tidy(segment.path.parent)

    def rewrite(self, segment: Segment, body: bytes, counted: int, records: int,
                uncounted_points: int) -> None:  # fmt: skip
        """Replace the head's body (records refused by the server taken out), durably."""
        header = {
            "v": _VERSION, "len": len(body), "crc": zlib.crc32(body), "counted": counted,
            "records": records, "uncounted_points": uncounted_points, "pid": os.getpid(),
        }  # fmt: skip
        data = json.dumps(header, separators=(",", ":")).encode() + b"\n" + body
        tmp = segment.path.with_name("." + segment.path.stem + ".tmp")
        tmp.write_bytes(data)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, segment.path)
        with self._lock:
            self._bytes += len(data) - segment.size
            segment.size, segment.counted, segment.records = len(data), counted, records
            segment.uncounted_points = uncounted_points

    @staticmethod
    def read(segment: Segment) -> bytes:
        """The body of ``segment``; ``SpoolCorrupt`` when its header or checksum is wrong."""
        try:
            data = segment.path.read_bytes()
        except FileNotFoundError as exc:
            raise SpoolCorrupt(f"{segment.path} vanished") from exc
        header, body = _split(data, segment.path)
        if len(body) != header["len"] or zlib.crc32(body) != header["crc"]:
            raise SpoolCorrupt(f"{segment.path}: body length or CRC-32 does not match its header")
        return body

    # -- adoption ----------------------------------------------------------------------------
    def adopt_orphans(self) -> tuple[int, int, list[str]]:
        """Adopt the directories of dead processes; returns (segments, records, problems).

        Their segments go before this process's own, oldest directory first. A segment whose
        header cannot be read is removed and named in ``problems``.
        """
        if not self.root.is_dir():
            return 0, 0, []
        found: list[tuple[float, Path, int]] = []
        for path in self.root.iterdir():
            if path == self._own or path in self._held or not path.is_dir():
                continue
            if path.name.startswith("."):  # being made, or left by a crash while being made
                _remove_abandoned(path)
                continue
            fd = _try_lock(path / _LOCK)
            if fd is None:
                continue
            try:
                found.append((os.stat(path / _LOCK).st_mtime, path, fd))
            except OSError:
                os.close(fd)
        segments: list[Segment] = []
        problems: list[str] = []
        for _, path, fd in sorted(found, key=lambda item: (item[0], str(item[1]))):
            self._held[path] = fd
            mine = _read_dir(path, problems)
            segments += mine
            if not mine:
                self._tidy(path)
        with self._lock:
            self._segments.extendleft(reversed(segments))
            self._bytes += sum(s.size for s in segments)
        return len(segments), sum(s.records for s in segments), problems

    def _tidy(self, path: Path) -> None:
        """Remove an adopted directory once it is empty (never the own one while alive)."""
        fd = self._held.get(path)
        if fd is None:
            return
        with self._lock:
            if any(s.path.parent == path for s in self._segments):
                return
            self._held.pop(path, None)
        with contextlib.suppress(OSError):
            for leftover in path.iterdir():
                leftover.unlink()
            path.rmdir()
        os.close(fd)

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Let go of the locks; an empty own directory is removed, a full one left for adoption."""
        with self._lock:
            own, fd, self._own, self._own_lock_fd = self._own, self._own_lock_fd, None, None
            held, self._held = self._held, {}
            remaining = {s.path.parent for s in self._segments}
            self._segments.clear()
            self._bytes = 0
        if own is not None and own not in remaining:
            with contextlib.suppress(OSError):
                (own / _LOCK).unlink()
                own.rmdir()
        if fd is not None:
            os.close(fd)
        for fd in held.values():
            os.close(fd)

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's directory and locks stay the parent's."""
        for fd in [self._own_lock_fd, *self._held.values()]:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)  # the parent's fd stays open: its lock is not released
        self._lock = threading.Lock()
        self._segments = deque()
        self._bytes = 0
        self._own = None
        self._own_lock_fd = None
        self._held = {}
        self._seq = 0
        self._busy = None


def _remove_abandoned(path: Path) -> None:
    """Remove a hidden directory a process died making (its lock is free, it holds nothing).

    Only one older than a minute: a younger one may be in the making right now.
    """
    try:
        if time.time() - path.stat().st_mtime < 60:
            return
    except OSError:
        return
    fd = _try_lock(path / _LOCK)
    if fd is None:
        return
    with contextlib.suppress(OSError):
        (path / _LOCK).unlink()
        path.rmdir()
    os.close(fd)


def _read_dir(path: Path, problems: list[str]) -> list[Segment]:
    """The segments of an adopted directory in order; unreadable ones removed and named."""
    for tmp in path.glob(".*.tmp"):  # a write the dead process did not finish
        _unlink(tmp)
    segments = []
    for file in sorted(path.glob("*" + _SUFFIX)):
        try:
            with open(file, "rb") as f:  # the header only: the body is checked when sent
                header, _ = _split(f.readline(4096), file)
            size = file.stat().st_size
        except (OSError, SpoolCorrupt) as exc:
            problems.append(str(exc))
            _unlink(file)
            continue
        uncounted = header.get("uncounted_points", 0)
        segments.append(Segment(file, size, 0, int(header["records"]), True,
                                uncounted if isinstance(uncounted, int) else 0))  # fmt: skip
    return segments


def _split(data: bytes, path: Path) -> tuple[dict[str, Any], bytes]:
    end = data.find(b"\n")
    try:
        header = json.loads(data[:end]) if end > 0 else None
    except ValueError:
        header = None
    if (
        not isinstance(header, dict)
        or header.get("v") != _VERSION
        or not all(isinstance(header.get(k), int) for k in ("len", "crc", "records"))
    ):
        raise SpoolCorrupt(f"{path}: not an llmpulse spool segment (bad header)")
    return header, data[end + 1 :]


def _try_lock(path: Path) -> int | None:
    """An fd holding ``path``'s exclusive lock if its owner is gone, else ``None``."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None  # no lock file: a directory being created (or not ours at all)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            os.close(fd)
            return None
    try:  # pragma: no cover - without flock: is the pid written there still alive?
        pid = int(os.read(fd, 32) or b"0")
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # pragma: no cover - directories cannot be opened there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
