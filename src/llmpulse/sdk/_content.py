"""Bounding every text a record carries on the caller's thread, cheaply.

A 30 KB prompt must not sit in the export queue as 30 KB, nor a 1 MiB attribute, error message
or chat message: text longer than its cap is cut right away (the cut length is remembered, so
the stored marker still says how much was dropped), and what is kept counts against the queue's
byte budget, so that a dead exporter and huge values cannot grow memory without bound. Caps:
prompts, responses and each attribute value ``max_content_chars``; names, ids and other short
fields ``MAX_LABEL_CHARS``; error messages ``MAX_MESSAGE_CHARS``; the attributes of a record as
a whole ``MAX_ATTRIBUTES_CHARS`` and its events ``MAX_EVENTS`` / ``MAX_EVENTS_CHARS`` (see
``llmpulse._rows``). Structured values (chat messages, nested attributes) are copied with their
text cut to one shared allowance, so the queue never holds a reference to the caller's text.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from llmpulse._rows import MAX_ATTRIBUTES_CHARS, MAX_LABEL_CHARS

__all__ = [
    "DROPPED_ATTRIBUTES",
    "PartialText",
    "bounded",
    "bounded_attributes",
    "cut",
    "text_size",
    "truncate",
]

ITEM_OVERHEAD = 64  # bytes counted per value, message or entry beyond its text
_ITEM_OVERHEAD = ITEM_OVERHEAD
_MAX_ITEMS = 1000  # entries kept of one structured value, all levels together
_MAX_DEPTH = 16  # nesting kept of one structured value
#: Attribute saying how many attributes were left out because the record's cap was reached.
DROPPED_ATTRIBUTES = "llmpulse.dropped_attributes"


class PartialText(str):
    """Text whose tail was not kept by whoever collected it; ``dropped_chars`` says how much."""

    dropped_chars: int = 0


def truncate(text: str, limit: int, dropped: int = 0) -> str:
    """``text`` cut to ``limit`` characters plus a marker saying how much was cut.

    The marker is ASCII on purpose: cut ASCII text stays ASCII, which every later check
    (``llmpulse._rows.text_ok``) and the database driver's encoding handle without a scan.
    """
    total = len(text) + dropped
    if total <= limit:
        return text
    return f"{text[:limit]}...[truncated {total - limit} chars]"


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with the marker added now (for short fields)."""
    return text if len(text) <= limit else truncate(text, limit)


class PartialList(list):  # type: ignore[type-arg]
    """A copied list (chat messages) whose text was cut; ``dropped_chars`` says how much."""

    dropped_chars: int = 0


class PartialDict(dict):  # type: ignore[type-arg]
    """A copied dict whose text was cut; ``dropped_chars`` says how much."""

    dropped_chars: int = 0


def bounded(value: Any, limit: int) -> Any:
    """A copy of ``value`` safe to queue: its text cut to ``limit`` characters in all.

    A string longer than ``limit`` becomes a ``PartialText`` of ``limit`` characters. Lists,
    tuples and dicts (chat messages) are copied, nested ones too, their strings sharing one
    allowance of ``limit`` characters; what did not fit is counted in ``dropped_chars`` so the
    stored marker says how much was cut. Bytes become ``<N bytes>``.
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        part = PartialText(value[:limit])
        part.dropped_chars = len(value) - limit + getattr(value, "dropped_chars", 0)
        return part
    if isinstance(value, (list, tuple, dict)):
        room, dropped = [limit, _MAX_ITEMS], [0]
        copy = _copy(value, room, dropped, 0)
        if dropped[0]:
            copy = PartialDict(copy) if isinstance(copy, dict) else PartialList(copy)
            copy.dropped_chars = dropped[0]
        return copy
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return value


def _copy(value: Any, room: list[int], dropped: list[int], depth: int) -> Any:
    """``value`` copied with its strings cut to what is left of ``room[0]`` characters and its
    entries (all levels together) to what is left of ``room[1]``."""
    if isinstance(value, str):
        left = room[0]
        if len(value) <= left:
            room[0] = left - len(value)
            return value
        dropped[0] += len(value) - left
        room[0] = 0
        return value[:left]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (list, tuple, dict)):
        if depth >= _MAX_DEPTH:
            dropped[0] += 1
            return None
        keep = min(len(value), max(0, room[1]))
        room[1] -= keep
        if keep < len(value):
            dropped[0] += len(value) - keep
        if isinstance(value, dict):
            return {
                _copy(str(k), room, dropped, depth): _copy(v, room, dropped, depth + 1)
                for k, v in islice(value.items(), keep)
            }
        return [_copy(v, room, dropped, depth + 1) for v in islice(value, keep)]
    return value


def bounded_attributes(
    attributes: Any, limit: int, total: int = MAX_ATTRIBUTES_CHARS, *, owned: bool = False
) -> tuple[dict[str, Any], int]:
    """A copy of ``attributes`` safe to queue, and the bytes it counts in the queue's budget.

    Each value's text is cut to ``limit`` (as ``bounded``), each key to ``MAX_LABEL_CHARS``;
    once the attributes as a whole reach ``total`` bytes the rest are left out, and attribute
    ``DROPPED_ATTRIBUTES`` says how many. ``owned``: the dict is ours and nobody changes it any
    more (an ended span's), so when nothing in it needs cutting it is returned as it is.
    """
    if owned:
        plain = _plain_size(attributes, limit, total)
        if plain is not None:
            return attributes, plain
    return _bounded_copy(attributes, limit, total)


def _bounded_copy(attributes: Any, limit: int, total: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    size = left_out = 0
    key_cap, overhead = MAX_LABEL_CHARS, _ITEM_OVERHEAD
    for key, value in list(attributes.items()):
        if type(key) is not str:
            key = str(key)
        kind = type(value)
        if kind is str:
            n = len(value)
            if n > limit:
                value = bounded(value, limit)
                n = limit
        elif value is None or kind is float or kind is int or kind is bool:
            n = 8
        else:
            value = bounded(value, limit)
            n = text_size(value)
        if len(key) > key_cap:
            key = truncate(key, key_cap)
        n += len(key) + overhead
        if size + n > total:
            left_out += 1
            continue
        out[key] = value
        size += n
    if left_out:
        out[DROPPED_ATTRIBUTES] = left_out
    return out, size


def _plain_size(attributes: Any, limit: int, total: int) -> int | None:
    """The bytes ``attributes`` count when nothing in them needs cutting or copying (text keys
    and scalar values within every cap, the common case), else ``None``. Checking is about
    three times cheaper than building the copy.
    """
    if type(attributes) is not dict:
        return None
    size = 0
    key_cap, overhead = MAX_LABEL_CHARS, _ITEM_OVERHEAD
    try:
        for key, value in attributes.items():
            kind = type(value)
            if kind is str:
                n = len(value)
                if n > limit:
                    return None
            elif value is None or kind is int or kind is float or kind is bool:
                n = 8
            else:
                return None
            if type(key) is not str or len(key) > key_cap:
                return None
            size += n + len(key) + overhead
    except RuntimeError:  # changed by another thread meanwhile: the careful path copies
        return None
    return size if size <= total else None


def text_size(value: Any) -> int:
    """Approximate bytes of text held by ``value`` (strings, chat messages, dicts of strings)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(text_size(v) + _ITEM_OVERHEAD for v in value[:_MAX_ITEMS])
    if isinstance(value, dict):
        return sum(
            len(str(k)) + text_size(v) + _ITEM_OVERHEAD for k, v in list(value.items())[:_MAX_ITEMS]
        )
    return 0
