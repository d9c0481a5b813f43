"""One convention for lists: cursor pagination, time windows and the page body.

* **Cursor.** ``?limit=N`` (1..1000) and ``?cursor=<opaque>``. A page is
  ``{"items": [...], "next_cursor": "..." | null}``; pass ``next_cursor`` back as ``cursor`` to
  get the next page, with the same filters. The cursor is the sort key of the last item
  (keyset paging: page N costs what page 1 costs) tagged with the listing it belongs to; a
  cursor from another listing, or one that is not ours, is a 400.
* **Time window.** ``?start=`` and ``?end=`` take Unix seconds (``1764680000.5``) or ISO 8601
  (``2026-12-02T17:00:00Z``; no zone means UTC). Defaults: ``end`` = now, ``start`` = 24 h
  before ``end``. ``end`` must be after ``start``.
* **Filters.** Exact matches on named query parameters (``?model=gpt-4o&status=error``),
  always bound as SQL parameters; enumerations (kind, status, order) are validated (422).
* **Order.** ``?order=desc`` (newest first, the default) or ``asc``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from llmpulse.server.problems import Problem

__all__ = [
    "DEFAULT_WINDOW_SECONDS",
    "Order",
    "Page",
    "TimeWindow",
    "decode_cursor",
    "encode_cursor",
    "page_of",
    "parse_time",
    "time_window",
]

DEFAULT_WINDOW_SECONDS = 86400.0
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a listing and the cursor of the next one (``null`` on the last page)."""

    items: list[T]
    next_cursor: str | None = None


class Order(str, Enum):
    """Sort direction of a listing by time."""

    desc = "desc"
    asc = "asc"


def encode_cursor(listing: str, key: Sequence[Any]) -> str:
    """The opaque cursor after ``key`` in ``listing``."""
    raw = json.dumps([listing, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str | None, types: Sequence[type]) -> list[Any] | None:
    """The sort key inside ``cursor`` (``None`` for the first page); 400 when it is not valid."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        if not (isinstance(data, list) and data and data[0] == listing):
            raise ValueError
        key = data[1:]
        if len(key) != len(types):
            raise ValueError
        out = []
        for value, kind in zip(key, types, strict=True):
            if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError
            out.append(value)
        return out
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, "cursor is not valid for this listing: pass back the next_cursor "
                      "of the previous page unchanged", kind="bad-cursor") from None  # fmt: skip


def page_of(listing: str, rows: Sequence[tuple[T, Sequence[Any]]], limit: int) -> Page[T]:
    """A page from ``limit + 1`` fetched rows of (item, sort key): the extra row says more exist."""
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor(listing, rows[-1][1]) if more and rows else None
    return Page(items=[item for item, _ in rows], next_cursor=cursor)


def parse_time(value: str | None, name: str) -> float | None:
    """Unix seconds from Unix seconds or ISO 8601 text; 422 naming ``name`` when neither."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Problem(422, f"{name}: {value!r} is not a time; use Unix seconds or ISO 8601 "
                          "(2026-12-02T17:00:00Z)", kind="validation") from None  # fmt: skip
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        seconds = parsed.timestamp()
    # Year 1 to year 9999: anything outside is a typo, and keeps float arithmetic exact enough.
    if not math.isfinite(seconds) or not -62135596800 <= seconds <= 253402300799:
        raise Problem(422, f"{name}: {value!r} is out of range", kind="validation")
    return seconds


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """``[start, end)`` in Unix seconds."""

    start: float
    end: float


def time_window(
    start: str | None = Query(
        None, description="Window start: Unix seconds or ISO 8601. Default: 24 h before end."
    ),
    end: str | None = Query(
        None, description="Window end (excluded): Unix seconds or ISO 8601. Default: now."
    ),
) -> TimeWindow:
    """Dependency: the request's time window (see the module docstring)."""
    end_s = parse_time(end, "end")
    end_s = time.time() if end_s is None else end_s
    start_s = parse_time(start, "start")
    start_s = end_s - DEFAULT_WINDOW_SECONDS if start_s is None else start_s
    if not end_s > start_s:
        raise Problem(422, f"end ({end_s}) must be after start ({start_s})", kind="validation")
    return TimeWindow(start_s, end_s)
