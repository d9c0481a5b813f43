"""Help pages that name value types as click always has (INTEGER, TEXT, [a|b]) and flags none.

Typer 0.2x renders its own type labels (``<int>``, ``<str>``, ``<list[str]>``) and prints one
after every flag as well, even ``--help``: ``--keep <bool>`` reads as if the flag took a value.
``plain_type_labels()`` wraps typer's label method once, for both options and arguments
(``--help`` included, which typer builds lazily), to turn the label into click's word and to
give flags and counters none. A typer that has no such method (the click-based releases) already
prints click's words, and is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["click_label", "plain_type_labels"]

# typer's label -> the word click prints for the same type.
_CLICK_WORDS = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "FLOAT",
    "bool": "BOOLEAN",
    "int range": "INTEGER RANGE",
    "float range": "FLOAT RANGE",
    "uuid": "UUID",
}
_MARK = "_llmpulse_plain_types"


def click_label(label: str) -> str:
    """click's word for typer's type ``label``: ``<int>`` → INTEGER, ``<a|b>`` → [a|b], a
    repeated option → its item's word (click marks repetition nowhere in the type either)."""
    inner = label[1:-1] if label.startswith("<") and label.endswith(">") else label
    if inner.startswith("list[") and inner.endswith("]"):
        inner = inner[len("list[") : -1]
    if "|" in inner:  # choices, or datetime formats: click lists them in brackets
        return f"[{inner}]"
    return _CLICK_WORDS.get(inner, inner.upper())


def plain_type_labels() -> None:
    """Make typer's help pages print click's type words, and nothing after a flag (idempotent)."""
    from typer.core import TyperArgument, TyperOption

    for cls in (TyperOption, TyperArgument):
        label_of = getattr(cls, "display_type", None)
        if label_of is None or getattr(label_of, _MARK, False):
            continue
        setattr(cls, "display_type", _plain(label_of))  # noqa: B010 - mypy: assigning a method


def _plain(label_of: Callable[[Any, Any], str]) -> Callable[[Any, Any], str | None]:
    def display_type(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None  # a flag takes no value: nothing to name
        return click_label(label_of(self, ctx))

    setattr(display_type, _MARK, True)
    return display_type
