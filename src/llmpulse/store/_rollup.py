"""Fold a batch of span rows into per-minute and per-hour rollup rows, in Python.

The batch is aggregated before it touches the database, so a batch of thousands of spans
becomes a few rollup rows (one per key and minute or hour) and a few histogram rows (one per
non-empty latency bin), written with additive upserts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from llmpulse.store._histogram import GAMMA, MIN_MS, ZERO_BIN

__all__ = [
    "HIST_COLUMNS",
    "KEY_COLUMNS",
    "RESOLUTIONS",
    "ROLLUP_COLUMNS",
    "VALUE_COLUMNS",
    "Rollups",
    "aggregate",
]

MINUTE = 60
HOUR = 3600
RESOLUTIONS = (MINUTE, HOUR)
KEY_COLUMNS = (
    "resolution",
    "bucket_start",
    "kind",
    "name",
    "model",
    "provider",
    "prompt_version",
    "branch",
)
VALUE_COLUMNS = (
    "count", "errors", "input_tokens", "output_tokens", "total_tokens", "cache_read_tokens",
    "cache_write_tokens", "reasoning_tokens", "cost_usd", "priced_count", "latency_ms_sum",
    "ttft_ms_sum", "ttft_count",
)  # fmt: skip
ROLLUP_COLUMNS = KEY_COLUMNS + VALUE_COLUMNS
HIST_COLUMNS = KEY_COLUMNS + ("bin", "count")

_INV_LOG_GAMMA = 1.0 / math.log(GAMMA)
_N_VALUES = len(VALUE_COLUMNS)


class Rollups:
    """Rollup and histogram rows of one batch: ``rows`` and ``hist`` as column-ordered tuples."""

    __slots__ = ("hist", "rows")

    def __init__(self, rows: list[tuple[Any, ...]], hist: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.hist = hist


def aggregate(span_rows: Sequence[tuple[Any, ...]], branches: Sequence[str]) -> Rollups:
    """Rollup rows (both resolutions) of validated span rows (``SPAN_COLUMNS`` order)."""
    minutes: dict[tuple[Any, ...], list[Any]] = {}
    bins: dict[tuple[Any, ...], int] = {}
    log = math.log
    ceil = math.ceil
    for r, branch in zip(span_rows, branches, strict=True):
        # r: see SPAN_COLUMNS. Key: (minute, kind, name, model, provider, prompt_version, branch)
        key = (
            int(r[5] // MINUTE) * MINUTE,
            r[4],
            r[3],
            r[11] or "",
            r[12] or "",
            r[13] or "",
            branch,
        )
        acc = minutes.get(key)
        if acc is None:
            acc = minutes[key] = [0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0.0, 0.0, 0]
        inp = r[14] or 0
        out = r[15] or 0
        total = r[16]
        acc[0] += 1
        if r[8] == "error":
            acc[1] += 1
        acc[2] += inp
        acc[3] += out
        acc[4] += (inp + out) if total is None else total
        acc[5] += r[17] or 0
        acc[6] += r[18] or 0
        acc[7] += r[19] or 0
        if r[20] is not None:
            acc[8] += r[20]
            acc[9] += 1
        latency = r[7]
        acc[10] += latency
        if r[21] is not None:
            acc[11] += r[21]
            acc[12] += 1
        b = ceil(log(latency) * _INV_LOG_GAMMA) if latency > MIN_MS else ZERO_BIN
        hkey = (key, b)
        bins[hkey] = bins.get(hkey, 0) + 1
    return _both_resolutions(minutes, bins)


def _both_resolutions(
    minutes: dict[tuple[Any, ...], list[Any]], bins: dict[tuple[Any, ...], int]
) -> Rollups:
    hours: dict[tuple[Any, ...], list[Any]] = {}
    for key, acc in minutes.items():
        hkey = (key[0] // HOUR * HOUR,) + key[1:]
        into = hours.get(hkey)
        if into is None:
            hours[hkey] = list(acc)
        else:
            for i in range(_N_VALUES):
                into[i] += acc[i]
    hour_bins: dict[tuple[Any, ...], int] = {}
    for (key, b), n in bins.items():
        hkey = ((key[0] // HOUR * HOUR,) + key[1:], b)
        hour_bins[hkey] = hour_bins.get(hkey, 0) + n
    # Sorted so concurrent writers lock rows in one order (no deadlocks on PostgreSQL).
    rows = sorted(_rows(MINUTE, minutes.items())) + sorted(_rows(HOUR, hours.items()))
    hist = sorted(_hist(MINUTE, bins.items())) + sorted(_hist(HOUR, hour_bins.items()))
    return Rollups(rows, hist)


def _rows(
    resolution: int, items: Iterable[tuple[tuple[Any, ...], list[Any]]]
) -> list[tuple[Any, ...]]:
    return [(resolution, *key, *acc) for key, acc in items]


def _hist(resolution: int, items: Iterable[tuple[tuple[Any, ...], int]]) -> list[tuple[Any, ...]]:
    return [(resolution, *key, b, n) for (key, b), n in items]
