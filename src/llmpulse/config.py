"""Settings in one place.

The SDK reads its settings from ``llmpulse.init(...)`` arguments first, then from these
environment variables, then from the defaults below. Every variable is a documented constant
here, so this file answers "what can I set?".

=============================  =============================================  ==========================
variable                       meaning                                        default
=============================  =============================================  ==========================
``LLMPULSE_ENABLED``           ``false`` turns recording off (no-op SDK)      ``true``
``LLMPULSE_DATABASE_URL``      where the embedded exporter writes             ``sqlite:///./llmpulse.db``
``LLMPULSE_SAMPLE_RATE``       share of traces kept, 0.0 to 1.0               ``1.0``
``LLMPULSE_REDACT``            ``true`` drops prompt and response text        ``false``
``LLMPULSE_MAX_CONTENT_CHARS`` prompt/response longer than this is truncated  ``16384``
``LLMPULSE_QUEUE_SIZE``        records held in memory before drops            ``100000``
``LLMPULSE_BATCH_SIZE``        records per exported batch                     ``2000``
``LLMPULSE_FLUSH_INTERVAL``    seconds between background flushes             ``0.5``
``LLMPULSE_SHUTDOWN_TIMEOUT``  seconds ``shutdown()`` waits at exit           ``5.0``
``LLMPULSE_SERVICE_NAME``      service name put on every span                 ``None``
``LLMPULSE_PRICES_FILE``       YAML price overrides (see llmpulse.pricing)    ``None``
``LLMPULSE_STREAM_USAGE``      ``false``: do not ask streams for token usage  ``true``
``LLMPULSE_SERVER_URL``        send to this llmpulse server instead           ``None``
``LLMPULSE_API_KEY``           API key (ingest scope) for the server          ``None``
``LLMPULSE_SPOOL_DIR``         where batches wait while the server is down    user state dir [#]_
``LLMPULSE_MAX_SPOOL_BYTES``   spool size per process; past it, oldest go     ``268435456``
=============================  =============================================  ==========================

.. [#] ``$XDG_STATE_HOME/llmpulse/spool`` (``~/.local/state/...``) on Linux,
   ``~/Library/Caches/llmpulse/spool`` on macOS, ``%LOCALAPPDATA%\\llmpulse\\spool`` on Windows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from llmpulse.errors import ConfigError

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ENV_API_KEY",
    "ENV_BATCH_SIZE",
    "ENV_DATABASE_URL",
    "ENV_ENABLED",
    "ENV_FLUSH_INTERVAL",
    "ENV_MAX_CONTENT_CHARS",
    "ENV_MAX_SPOOL_BYTES",
    "ENV_PRICES_FILE",
    "ENV_QUEUE_SIZE",
    "ENV_REDACT",
    "ENV_SAMPLE_RATE",
    "ENV_SERVER_URL",
    "ENV_SERVICE_NAME",
    "ENV_SHUTDOWN_TIMEOUT",
    "ENV_SPOOL_DIR",
    "ENV_STREAM_USAGE",
    "SdkConfig",
    "normalize_database_url",
    "resolve_database_url",
]

ENV_ENABLED = "LLMPULSE_ENABLED"
ENV_DATABASE_URL = "LLMPULSE_DATABASE_URL"
ENV_SAMPLE_RATE = "LLMPULSE_SAMPLE_RATE"
ENV_REDACT = "LLMPULSE_REDACT"
ENV_MAX_CONTENT_CHARS = "LLMPULSE_MAX_CONTENT_CHARS"
ENV_QUEUE_SIZE = "LLMPULSE_QUEUE_SIZE"
ENV_BATCH_SIZE = "LLMPULSE_BATCH_SIZE"
ENV_FLUSH_INTERVAL = "LLMPULSE_FLUSH_INTERVAL"
ENV_SHUTDOWN_TIMEOUT = "LLMPULSE_SHUTDOWN_TIMEOUT"
ENV_SERVICE_NAME = "LLMPULSE_SERVICE_NAME"
ENV_PRICES_FILE = "LLMPULSE_PRICES_FILE"
ENV_STREAM_USAGE = "LLMPULSE_STREAM_USAGE"
ENV_SERVER_URL = "LLMPULSE_SERVER_URL"
ENV_API_KEY = "LLMPULSE_API_KEY"
ENV_SPOOL_DIR = "LLMPULSE_SPOOL_DIR"
ENV_MAX_SPOOL_BYTES = "LLMPULSE_MAX_SPOOL_BYTES"

DEFAULT_DATABASE_URL = "sqlite:///./llmpulse.db"

_ENV_OF = {
    "enabled": ENV_ENABLED,
    "database_url": ENV_DATABASE_URL,
    "sample_rate": ENV_SAMPLE_RATE,
    "redact": ENV_REDACT,
    "max_content_chars": ENV_MAX_CONTENT_CHARS,
    "queue_size": ENV_QUEUE_SIZE,
    "batch_size": ENV_BATCH_SIZE,
    "flush_interval": ENV_FLUSH_INTERVAL,
    "shutdown_timeout": ENV_SHUTDOWN_TIMEOUT,
    "service_name": ENV_SERVICE_NAME,
    "prices_file": ENV_PRICES_FILE,
    "stream_usage": ENV_STREAM_USAGE,
    "server_url": ENV_SERVER_URL,
    "api_key": ENV_API_KEY,
    "spool_dir": ENV_SPOOL_DIR,
    "max_spool_bytes": ENV_MAX_SPOOL_BYTES,
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class SdkConfig:
    """The SDK's resolved settings (arguments > environment > defaults)."""

    enabled: bool = True
    database_url: str = DEFAULT_DATABASE_URL
    sample_rate: float = 1.0
    redact: bool = False
    max_content_chars: int = 16384
    queue_size: int = 100_000
    batch_size: int = 2000
    flush_interval: float = 0.5
    shutdown_timeout: float = 5.0
    service_name: str | None = None
    prices_file: str | None = None
    stream_usage: bool = True
    server_url: str | None = None  # set: batches go to this server, not to database_url
    api_key: str | None = field(default=None, repr=False)  # never printed
    spool_dir: str | None = None  # None: the user's state directory (see the table above)
    max_spool_bytes: int = 256 << 20

    @classmethod
    def resolve(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> SdkConfig:
        """Build settings from keyword overrides (``None`` = not given), then ``env``, then defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            given = overrides.pop(f.name, None)
            if given is not None:
                values[f.name] = _coerce(f.name, given, f"argument {f.name}")
            elif _ENV_OF[f.name] in env:
                values[f.name] = _coerce(
                    f.name, env[_ENV_OF[f.name]], f"environment variable {_ENV_OF[f.name]}"
                )
        if overrides:
            raise ConfigError(f"unknown setting(s): {sorted(overrides)}")
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the first out-of-range setting."""
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ConfigError(f"sample_rate must be between 0.0 and 1.0, got {self.sample_rate}")
        if self.max_content_chars < 0:
            raise ConfigError(f"max_content_chars must be >= 0, got {self.max_content_chars}")
        for name in ("queue_size", "batch_size", "max_spool_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("flush_interval", "shutdown_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {getattr(self, name)}")


_KIND = {
    "enabled": bool,
    "redact": bool,
    "stream_usage": bool,
    "sample_rate": float,
    "flush_interval": float,
    "shutdown_timeout": float,
    "max_content_chars": int,
    "queue_size": int,
    "batch_size": int,
    "max_spool_bytes": int,
}


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = _KIND.get(name, str)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        expected = {bool: "true/false", int: "a whole number", float: "a number"}.get(kind, "text")
        raise ConfigError(f"{where} must be {expected}, got {value!r}") from None


def resolve_database_url(
    given: str | None = None,
    env: Mapping[str, str] | None = None,
    configured: str | None = None,
) -> str:
    """The database a command opens: ``given`` (its ``--database-url``), else
    ``$LLMPULSE_DATABASE_URL``, else ``configured`` (a settings file's), else the default file.

    Every command that opens the store resolves it here (``llmpulse serve`` through
    ``ServerSettings``), so one set of flags and variables names one database everywhere, as
    ``SdkConfig`` names it for the application that writes there. A value that is there wins
    even when empty or malformed: opening it then fails with the store's one message
    ("database URL is empty; ...", "unsupported database ...") instead of quietly opening
    another database, ``./llmpulse.db`` say, where a ``keys create`` would put a key.
    """
    env = os.environ if env is None else env
    if given is not None:
        return given
    if ENV_DATABASE_URL in env:
        return env[ENV_DATABASE_URL]
    return DEFAULT_DATABASE_URL if configured is None else configured


def normalize_database_url(url: str) -> str:
    """Map the URL spellings people use onto the drivers llmpulse installs.

    ``postgres://`` and ``postgresql://`` use psycopg 3; a bare file path becomes SQLite. A
    SQLite path starting with ``~`` (``sqlite:///~/llmpulse.db``) is in the user's home, as in
    a shell (SQLite itself would look for a directory named ``~`` under the current one).
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            "database URL is empty; use e.g. sqlite:///./llmpulse.db or postgresql://user@host/db"
        )
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if "://" not in url:
        return f"sqlite:///{os.path.expanduser(url)}"
    scheme, rest = url.split("://", 1)
    if (scheme == "sqlite" or scheme.startswith("sqlite+")) and rest.startswith("/~"):
        return f"{scheme}:///{os.path.expanduser(rest[1:])}"
    return url
