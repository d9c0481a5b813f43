"""Fold a batch of span rows into per-minute and per-hour rollups, in Python.

The batch is aggregated before it touches the database, so thousands of spans become a few
rollup rows (one per key and minute or hour) and histogram rows (one per non-empty latency
bin), written with additive upserts. A key is (kind, name, model, provider, prompt_version,
branch) with ``''`` for an absent part.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from llmpulse.store._histogram import GAMMA, MIN_MS, ZERO_BIN

__all__ = [
    "HIST_COLUMNS",
    "MINUTE",
    "HOUR",
    "ROLLUP_COLUMNS",
    "VALUE_COLUMNS",
    "Rollups",
    "aggregate",
]

MINUTE = 60
HOUR = 3600
VALUE_COLUMNS = (
    "count", "errors", "input_tokens", "output_tokens", "total_tokens", "cache_read_tokens",
    "cache_write_tokens", "reasoning_tokens", "cost_usd", "priced_count", "latency_ms_sum",
    "ttft_ms_sum", "ttft_count",
)  # fmt: skip
ROLLUP_COLUMNS = ("resolution", "bucket_start", "key_id", *VALUE_COLUMNS)
HIST_COLUMNS = ("resolution", "bucket_start", "key_id", "bin", "count")

_INV_LOG_GAMMA = 1.0 / math.log(GAMMA)
_N_VALUES = len(VALUE_COLUMNS)

Key = tuple[str, str, str, str, str, str]


class Rollups:
    """A batch's aggregates before key ids are known.

    ``sums``: ``{(resolution, bucket_start, key): [values in VALUE_COLUMNS order]}``;
    ``bins``: ``{(resolution, bucket_start, key, bin): count}``; ``keys``: every key seen.
    """

    __slots__ = ("bins", "keys", "sums")

    def __init__(
        self,
        sums: dict[tuple[Any, ...], list[Any]],
        bins: dict[tuple[Any, ...], int],
        keys: set[Key],
    ) -> None:
        self.sums = sums
        self.bins = bins
        self.keys = keys

    def rows(self, ids: dict[Key, int]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Rollup and histogram rows (``ROLLUP_COLUMNS``/``HIST_COLUMNS``), sorted.

        Sorted so that concurrent writers lock rows in the same order (no deadlocks).
        """
        rows = sorted(
            (res, bucket, ids[key], *acc) for (res, bucket, key), acc in self.sums.items()
        )
        hist = sorted(
            (res, bucket, ids[key], b, n) for (res, bucket, key, b), n in self.bins.items()
        )
        return rows, hist


def aggregate(span_rows: Sequence[tuple[Any, ...]], keys: Sequence[Key]) -> Rollups:
    """Rollups (both resolutions) of validated span rows (``SPAN_COLUMNS`` order) and their keys."""
    minutes: dict[tuple[Any, ...], list[Any]] = {}
    bins: dict[tuple[Any, ...], int] = {}
    log, ceil = math.log, math.ceil
    for r, key in zip(span_rows, keys, strict=True):
        # r follows SPAN_COLUMNS: 5 start_time, 7 latency_ms, 8 status, 14..19 tokens (input,
        # output, total, cache read, cache write, reasoning), 20 cost_usd, 21 ttft_ms
        mkey = (int(r[5] // MINUTE) * MINUTE, key)
        acc = minutes.get(mkey)
        if acc is None:
            acc = minutes[mkey] = [0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0.0, 0.0, 0]
        (
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            latency,
            status,
            _,
            _,
            _,
            _,
            _,
            inp,
            out,
            total,
            cr,
            cw,
            rs,
            cost,
            ttft,
        ) = r[:22]
        acc[0] += 1
        if status == "error":
            acc[1] += 1
        if inp is not None:
            acc[2] += inp
        if out is not None:
            acc[3] += out
        if total is not None:
            acc[4] += total
        elif inp is not None or out is not None:
            acc[4] += (inp or 0) + (out or 0)
        if cr is not None:
            acc[5] += cr
        if cw is not None:
            acc[6] += cw
        if rs is not None:
            acc[7] += rs
        if cost is not None:
            acc[8] += cost
            acc[9] += 1
        acc[10] += latency
        if ttft is not None:
            acc[11] += ttft
            acc[12] += 1
        bkey = (mkey, ceil(log(latency) * _INV_LOG_GAMMA) if latency > MIN_MS else ZERO_BIN)
        bins[bkey] = bins.get(bkey, 0) + 1
    return _with_hours(minutes, bins)


def _with_hours(
    minutes: dict[tuple[Any, ...], list[Any]], minute_bins: dict[tuple[Any, ...], int]
) -> Rollups:
    sums: dict[tuple[Any, ...], list[Any]] = {}
    keys: set[Key] = set()
    for (minute, key), acc in minutes.items():
        keys.add(key)
        sums[(MINUTE, minute, key)] = acc
        hkey = (HOUR, minute // HOUR * HOUR, key)
        into = sums.get(hkey)
        if into is None:
            sums[hkey] = list(acc)
        else:
            for i in range(_N_VALUES):
                into[i] += acc[i]
    bins: dict[tuple[Any, ...], int] = {}
    for ((minute, key), b), n in minute_bins.items():
        bins[(MINUTE, minute, key, b)] = n
        hkey = (HOUR, minute // HOUR * HOUR, key, b)
        bins[hkey] = bins.get(hkey, 0) + n
    return Rollups(sums, bins, keys)
