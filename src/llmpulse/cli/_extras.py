"""Which optional extra a command needs, and a clear message when it is not installed.

The base install records into SQLite; the simulator, the demo, detection and the PostgreSQL
driver are extras (pyproject's ``[project.optional-dependencies]``). The requirements of each
extra are read from the installed package's metadata, so pyproject stays the one list: a
command calls :func:`require_extra` first and, when a distribution is missing, the user reads
``pip install 'llmpulse[demo]'`` instead of an ``ImportError`` traceback.
"""

from __future__ import annotations

import re
from importlib import metadata

import typer

__all__ = ["missing_for_extra", "require_extra"]

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _requirements_by_extra(requires: list[str]) -> dict[str, list[tuple[str, list[str]]]]:
    """Map each extra to its requirements as (distribution name, extras it asks for)."""
    by_extra: dict[str, list[tuple[str, list[str]]]] = {}
    for line in requires:
        requirement, _, marker = line.partition(";")
        extra = _EXTRA_MARKER.search(marker)
        name = _NAME.match(requirement)
        if extra is None or name is None:
            continue  # a base requirement: installed with the package
        asked = [e.strip() for e in (name.group(2) or "").split(",") if e.strip()]
        by_extra.setdefault(extra.group(1), []).append((name.group(1), asked))
    return by_extra


def missing_for_extra(extra: str, requires: list[str] | None = None) -> list[str]:
    """Distributions the extra needs that are not installed (following ``llmpulse[...]``).

    ``requires`` are requirement lines as in the package metadata (default: llmpulse's own).
    An extra the metadata does not declare raises ``ValueError``: a typo must not pass as
    "nothing missing".
    """
    if requires is None:
        try:
            requires = metadata.requires("llmpulse") or []
        except metadata.PackageNotFoundError:  # a source tree without metadata: cannot tell
            return []
    by_extra = _requirements_by_extra(requires)
    if extra not in by_extra:
        raise ValueError(f"llmpulse declares no extra {extra!r} (known: {sorted(by_extra)})")
    missing: list[str] = []
    seen: set[str] = set()
    pending = [extra]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for name, asked in by_extra.get(current, []):
            if name.lower() == "llmpulse":
                pending.extend(asked)
                continue
            try:
                metadata.distribution(name)
            except metadata.PackageNotFoundError:
                if name not in missing:
                    missing.append(name)
    return missing


def require_extra(
    extra: str, command: str, code: int = 1, requires: list[str] | None = None
) -> None:
    """Exit with ``code`` and the pip command to run when ``extra`` is not fully installed."""
    missing = missing_for_extra(extra, requires)
    if missing:
        typer.echo(
            f"{command} needs the '{extra}' extra, which is not installed "
            f"(missing: {', '.join(missing)}). Install it with:\n"
            f"  pip install 'llmpulse[{extra}]'",
            err=True,
        )
        raise typer.Exit(code)
