"""The dashboard's static files: our own (``static/``) and plotly.js from the plotly package.

plotly.min.js is read from the installed ``plotly`` Python package on first use (never copied
into this repository). That file is plotly.js's full bundle (4.8 MB, ~50 trace types) and the
package ships no partial bundle; evaluating it registers every trace type, which cost a cold
page load over a second of main-thread time in headless Chromium (bench/dashboard.py). The
dashboard draws only scatter (built into plotly's core) and bar traces, so the file is served
with its registration list cut to ``CHART_TRACES`` (``trim_plotly``): the code of the other
traces is still in the file but never runs. When the list cannot be found as expected (another
plotly.js build), the full file is served as it is.

Every file is served from memory with an ETag and, for a client that accepts it, gzipped once
(plotly: 4.8 MB → ~1.4 MB). Pages link each file with ``?v=<its ETag>`` (``asset_url``), so a
browser may keep it for a year without asking again (``immutable``); a new version is a new URL.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.util import find_spec
from pathlib import Path

from llmpulse.errors import ConfigError

__all__ = [
    "CHART_TRACES",
    "PLOTLY",
    "Asset",
    "asset",
    "asset_url",
    "asset_version",
    "preload",
    "trim_plotly",
]

log = logging.getLogger(__name__)

PLOTLY = "plotly.min.js"
# Trace types the dashboard's scripts draw, besides scatter (always in plotly's core). A page
# that needs another type (e.g. "heatmap") adds its name here.
CHART_TRACES = ("bar",)
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_MIN_GZIP = 1024

# plotly.js's bundle ends with `X.register([a(),b(),...])`: one lazily evaluated module per
# trace type (esbuild's CommonJS wrappers: a module's body runs on its first call). Each entry
# `a` is `var a=W((e,t)=>{"use strict";t.exports=b()})` and the body of `b` declares the trace's
# `moduleType:"trace",name:"bar"`.
_REGISTER = re.compile(rb"\.register\(\[((?:[\w$]+\(\),)*[\w$]+\(\))\]\)")
_TRACE_NAME = re.compile(rb'moduleType:"trace",name:"(\w+)"')
_DEFINITION = re.compile(rb"[\s,;]([\w$]+)=[\w$]+\(\(")
_REEXPORT = re.compile(rb'[\w$]+,[\w$]+\)=>\{"use strict";[\w$]+\.exports=([\w$]+)\(\)\}\)')


@dataclass(frozen=True)
class Asset:
    """A file's bytes (and gzipped bytes, when worth it), content type and entity tag."""

    body: bytes
    media_type: str
    etag: str
    gzipped: bytes | None = None


def _plotly_path() -> Path:
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the dashboard needs the plotly package: pip install 'llmpulse[server]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / PLOTLY
    if not path.is_file():
        raise ConfigError(f"the plotly package has no {PLOTLY} at {path}: reinstall plotly")
    return path


def _definitions(bundle: bytes, names: set[bytes]) -> dict[bytes, list[int]]:
    """Where each of ``names`` is defined as a CommonJS wrapper (``name=W((``): one pass."""
    found: dict[bytes, list[int]] = {}
    for m in _DEFINITION.finditer(bundle):
        if m.group(1) in names:
            found.setdefault(m.group(1), []).append(m.end())
    return found


def _inner(bundle: bytes, at: list[int] | None) -> bytes | None:
    """The module an index wrapper re-exports (``t.exports=b()``), if it is plainly one."""
    if not at or len(at) != 1:
        return None
    m = _REEXPORT.match(bundle, at[0], at[0] + 200)
    return m.group(1) if m else None


def _trace_names(bundle: bytes, entries: list[bytes]) -> list[str | None]:
    """The trace type each registration entry loads (None where not plainly one)."""
    outer = _definitions(bundle, set(entries))
    inner = {e: _inner(bundle, outer.get(e)) for e in entries}
    bodies = _definitions(bundle, {i for i in inner.values() if i})
    names: list[str | None] = []
    for entry in entries:
        at = bodies.get(inner[entry] or b"")
        if not at or len(at) != 1:
            names.append(None)
            continue
        # A trace's index module declares its type before the next module starts.
        end = bundle.find(b"=W((", at[0])
        found = _TRACE_NAME.search(bundle, at[0], end if end > 0 else len(bundle))
        names.append(found.group(1).decode() if found else None)
    return names


def trim_plotly(bundle: bytes, traces: tuple[str, ...] = CHART_TRACES) -> bytes | None:
    """``bundle`` with only ``traces`` registered (and the core's scatter), or None when its
    registration list is not the expected one (each wanted trace found exactly once)."""
    found = list(_REGISTER.finditer(bundle))
    if len(found) != 1:
        return None
    entries = [e[:-2] for e in found[0].group(1).split(b",")]
    names = _trace_names(bundle, entries)
    keep = [e for e, name in zip(entries, names, strict=True) if name in traces]
    if sorted(n for n in names if n in traces) != sorted(traces):
        return None
    listed = b",".join(e + b"()" for e in keep)
    return bundle[: found[0].start(1)] + listed + bundle[found[0].end(1) :]


def _plotly() -> bytes:
    full = _plotly_path().read_bytes()
    trimmed = trim_plotly(full)
    if trimmed is None:
        log.warning("plotly.js's trace registration was not recognised: serving the full bundle")
        return full
    return trimmed


def _own_names() -> frozenset[str]:
    folder = resources.files("llmpulse.dashboard") / "static"
    return frozenset(p.name for p in folder.iterdir() if Path(p.name).suffix in _TYPES)


def _tag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _pack(name: str, body: bytes, etag: str | None = None) -> Asset:
    etag = etag or _tag(body)
    packed = gzip.compress(body, 9, mtime=0) if len(body) >= _MIN_GZIP else None
    return Asset(body, _TYPES[Path(name).suffix], etag, packed)


_plotly_lock = threading.Lock()


@lru_cache(maxsize=1)
def _plotly_etag() -> str:
    # From the packaged file's identity, not its bytes: a page can link plotly.min.js without
    # waiting for it to be prepared.
    path = _plotly_path()
    stat = path.stat()
    return _tag(f"{path}:{stat.st_size}:{stat.st_mtime_ns}:{','.join(CHART_TRACES)}".encode())


@lru_cache(maxsize=1)
def _plotly_asset() -> Asset:
    return _pack(PLOTLY, _plotly(), _plotly_etag())


@lru_cache(maxsize=64)
def _own_asset(name: str) -> Asset | None:
    if name not in _own_names():
        return None
    return _pack(name, (resources.files("llmpulse.dashboard") / "static" / name).read_bytes())


def asset(name: str) -> Asset | None:
    """The static file ``name`` (ours or plotly.min.js), or ``None`` if there is none."""
    if name != PLOTLY:
        return _own_asset(name)
    with _plotly_lock:  # prepared once, even when the preload and a request ask together
        return _plotly_asset()


def asset_version(name: str) -> str | None:
    """The version of ``name`` (its ETag's hash), without preparing plotly.min.js."""
    found = _own_asset(name) if name != PLOTLY else None
    etag = found.etag if found else (_plotly_etag() if name == PLOTLY else None)
    return etag.strip('"') if etag else None


def asset_url(name: str) -> str:
    """The URL pages link ``name`` by: ``/static/<name>?v=<version>``."""
    version = asset_version(name)
    return f"/static/{name}?v={version}" if version else f"/static/{name}"


def preload() -> None:
    """Prepare plotly.min.js (trimmed and gzipped: about a second of CPU) in a background
    thread, so the first page that draws charts does not wait for it."""

    def work() -> None:
        try:
            asset(PLOTLY)
        except ConfigError as error:  # shown again, to the page, when the file is asked for
            log.warning("the dashboard cannot serve plotly.js: %s", error)

    threading.Thread(target=work, name="llmpulse-dashboard-assets", daemon=True).start()
