"""The dashboard's static files: our own (``static/``) and plotly.js from the plotly package.

plotly.min.js is read from the installed ``plotly`` Python package on first use (never copied
into this repository) and served from memory with an ETag, so a browser fetches its ~4.8 MB once
per version. Our own files are a handful of small scripts and one stylesheet, read once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.util import find_spec
from pathlib import Path

from llmpulse.errors import ConfigError

__all__ = ["Asset", "asset"]

PLOTLY = "plotly.min.js"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    """A file's bytes, content type and entity tag."""

    body: bytes
    media_type: str
    etag: str


def _plotly_path() -> Path:
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the dashboard needs the plotly package: pip install 'llmpulse[server]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / PLOTLY
    if not path.is_file():
        raise ConfigError(f"the plotly package has no {PLOTLY} at {path}: reinstall plotly")
    return path


def _own_names() -> frozenset[str]:
    folder = resources.files("llmpulse.dashboard") / "static"
    return frozenset(p.name for p in folder.iterdir() if Path(p.name).suffix in _TYPES)


@lru_cache(maxsize=64)
def asset(name: str) -> Asset | None:
    """The static file ``name`` (ours or plotly.min.js), or ``None`` if there is none."""
    if name == PLOTLY:
        body = _plotly_path().read_bytes()
    elif name in _own_names():
        body = (resources.files("llmpulse.dashboard") / "static" / name).read_bytes()
    else:
        return None
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, _TYPES[Path(name).suffix], etag)
