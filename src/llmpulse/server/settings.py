"""The server's settings in one place: flags > environment (``LLMPULSE_*``) > file > defaults.

=================================  ==============================================  =========================
variable                           meaning                                         default
=================================  ==============================================  =========================
``LLMPULSE_HOST``                  address to bind                                 ``127.0.0.1``
``LLMPULSE_PORT``                  port to bind                                    ``8000``
``LLMPULSE_DATABASE_URL``          the store (shared with the SDK)                 ``sqlite:///./llmpulse.db``
``LLMPULSE_WORKERS``               server processes                                ``1``
``LLMPULSE_INSECURE``              allow no API keys on a non-loopback address     ``false``
``LLMPULSE_MAX_BODY_BYTES``        largest request body, after decompression       ``67108864`` (64 MiB)
``LLMPULSE_INGEST_CONCURRENCY``    ingest batches worked on at once per process    ``2``
``LLMPULSE_INGEST_QUEUE``          ingest batches waiting per process before 503   ``16``
``LLMPULSE_RETRY_AFTER_SECONDS``   Retry-After sent with 429/503                   ``1``
``LLMPULSE_ALERT_RULES``           alert rules file (rules, channels, inhibition)  ``""`` (API rules only)
``LLMPULSE_ALERT_INTERVAL``        seconds between alert evaluations; 0: none here ``30``
``LLMPULSE_ALERT_ALLOW_NETWORK``   internal hosts/CIDRs channels may reach [#]_     ``""``
``LLMPULSE_PUBLIC_URL``            this server's URL, for links in notifications   ``""``
``LLMPULSE_SERVER_CONFIG``         a YAML file with any of these settings          ``None``
=================================  ==============================================  =========================

The file holds the same names in lower case (``port: 8080``), at its top level or under a
``server:`` key, so one ``llmpulse.yaml`` can carry the server's section beside others.

.. [#] Comma-separated (``127.0.0.1,10.20.0.0/16,*.corp.example``), a YAML list in the file, or
   ``--alert-allow-network`` repeated; a rules file's ``network: {allow: [...]}`` adds to it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from llmpulse.config import DEFAULT_DATABASE_URL, ENV_DATABASE_URL, resolve_database_url
from llmpulse.errors import ConfigError

__all__ = ["ENV_ALERT_ALLOW_NETWORK", "ENV_CONFIG_FILE", "ServerSettings", "is_loopback"]

ENV_CONFIG_FILE = "LLMPULSE_SERVER_CONFIG"
#: Also read by ``llmpulse alerts run|validate|rules|resolve`` when ``--allow-network`` is not given.
ENV_ALERT_ALLOW_NETWORK = "LLMPULSE_ALERT_ALLOW_NETWORK"

_ENV_OF = {
    "host": "LLMPULSE_HOST",
    "port": "LLMPULSE_PORT",
    "database_url": ENV_DATABASE_URL,
    "workers": "LLMPULSE_WORKERS",
    "insecure": "LLMPULSE_INSECURE",
    "max_body_bytes": "LLMPULSE_MAX_BODY_BYTES",
    "ingest_concurrency": "LLMPULSE_INGEST_CONCURRENCY",
    "ingest_queue": "LLMPULSE_INGEST_QUEUE",
    "retry_after_seconds": "LLMPULSE_RETRY_AFTER_SECONDS",
    "alert_rules": "LLMPULSE_ALERT_RULES",
    "alert_interval": "LLMPULSE_ALERT_INTERVAL",
    "alert_allow_network": ENV_ALERT_ALLOW_NETWORK,
    "public_url": "LLMPULSE_PUBLIC_URL",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What ``llmpulse serve`` and ``create_app`` need; build it with ``resolve``."""

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = DEFAULT_DATABASE_URL
    workers: int = 1
    insecure: bool = False
    max_body_bytes: int = 64 * 1024 * 1024
    # Two: one batch being written while the next is decoded keeps a process's writer busy
    # (on SQLite one write runs at a time anyway); more only hold decoded batches in memory
    # (4 took a server's peak 5 MB higher for the same rate, docs/benchmarks.md).
    ingest_concurrency: int = 2
    ingest_queue: int = 16
    retry_after_seconds: int = 1
    alert_rules: str = ""
    alert_interval: int = 30
    alert_allow_network: str = ""
    public_url: str = ""

    @property
    def alert_network_allow(self) -> list[str]:
        """The entries of ``alert_allow_network``: internal receivers channels may reach."""
        from llmpulse.alerting.channels._network import split_allow_setting

        return split_allow_setting(self.alert_allow_network)

    @property
    def require_auth(self) -> bool:
        """Every request (but health and /metrics) needs a key even before one was created."""
        return not (is_loopback(self.host) or self.insecure)

    @classmethod
    def resolve(
        cls,
        env: Mapping[str, str] | None = None,
        config_file: str | Path | None = None,
        **flags: Any,
    ) -> ServerSettings:
        """Flags (``None`` = not given) over env over the YAML file over defaults."""
        env = os.environ if env is None else env
        unknown = set(flags) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown server setting(s): {sorted(unknown)}")
        values: dict[str, Any] = {}
        path = config_file or env.get(ENV_CONFIG_FILE)
        if path:
            values.update(_read_file(cls, path))
        for f in fields(cls):
            if f.name == "database_url":  # as every command resolves it, file as the config
                values[f.name] = resolve_database_url(flags.get(f.name), env, values.get(f.name))
            elif flags.get(f.name) is not None:
                where = f"--{f.name.replace('_', '-')}"
                values[f.name] = _coerce_or_fail(cls, f.name, flags[f.name], where)
            elif _ENV_OF[f.name] in env:
                where = _ENV_OF[f.name]
                values[f.name] = _coerce_or_fail(cls, f.name, env[where], where)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the first out-of-range setting."""
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {self.port}")
        for name in ("workers", "ingest_concurrency", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("ingest_queue", "retry_after_seconds", "alert_interval"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_json(self) -> str:
        """The settings as JSON (how ``llmpulse serve --workers N`` hands them to each worker)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerSettings:
        """Settings from ``to_json`` output."""
        return cls(**json.loads(text))


def _read_file(cls: type[ServerSettings], path: str | Path) -> dict[str, Any]:
    """The settings of a YAML file (its top level, or its ``server:`` section), coerced; a bad
    one is a ``ConfigError`` naming the file, its line and the setting."""
    from llmpulse._config_file import FieldError, read_yaml_file

    doc = read_yaml_file(path, "server config")
    data, section = doc.data, ""
    if data is None:
        return {}
    if isinstance(data, dict) and isinstance(data.get("server"), dict):
        data, section = data["server"], "server."
    try:
        if not isinstance(data, dict):
            raise FieldError("server config is not a mapping", "", _NOT_A_MAPPING)
        known = sorted(f.name for f in fields(cls))
        values = {}
        for name, value in data.items():
            field = f"{section}{name}"
            if name not in known:
                detail = f"is not a server setting; known: {', '.join(known)}"
                raise FieldError(f"{field} {detail}", field, detail)
            values[name] = _coerce(cls, name, value, field)
        return values
    except FieldError as exc:
        raise doc.locate(exc) from None


def _allow_list(value: Any, field: str) -> str:
    """The network allow-list as its comma-separated text, every entry checked: a list (in the
    file) or comma-separated text; a bad entry is a ``FieldError`` naming it."""
    from llmpulse._config_file import FieldError
    from llmpulse.alerting.channels._network import parse_allow_entry, split_allow_setting

    def at(i: int) -> str:
        return field if isinstance(value, str) else f"{field}[{i}]"

    if isinstance(value, str):
        entries: list[Any] = split_allow_setting(value)
    elif isinstance(value, list):
        entries = value
    else:
        detail = f"must be a list or comma-separated text of addresses, CIDRs or hostnames, got {value!r}"
        raise FieldError(f"{field} {detail}", field, detail)
    for i, entry in enumerate(entries):
        try:
            parse_allow_entry(entry, at(i))
        except FieldError as exc:
            raise FieldError(f"{at(i)} {exc.detail}", at(i), exc.detail) from None
    return ",".join(str(e).strip() for e in entries)


_NOT_A_MAPPING = "must be a mapping of setting: value (at the top level or under server:)"


def _coerce_or_fail(cls: type, name: str, value: Any, where: str) -> Any:
    """``_coerce`` for a flag or an environment variable: the error names it."""
    from llmpulse._config_file import FieldError

    try:
        return _coerce(cls, name, value, where)
    except FieldError as exc:
        raise ConfigError(f"{where} {exc.detail}") from None


def _coerce(cls: type, name: str, value: Any, field: str) -> Any:
    """``value`` as the type of setting ``name``; a ``FieldError`` at ``field`` otherwise."""
    from llmpulse._config_file import FieldError

    kind = str({f.name: f.type for f in fields(cls)}[name])
    if name == "alert_allow_network":
        return _allow_list(value, field)
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if not isinstance(value, (str, int, float)):
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        expected = {"bool": "true/false", "int": "a whole number"}.get(kind, "text")
        detail = f"must be {expected}, got {value!r}"
        raise FieldError(f"{field} {detail}", field, detail) from None
