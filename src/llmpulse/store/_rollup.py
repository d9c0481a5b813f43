"""Fold a batch of span rows into per-minute and per-hour rollups, in Python.

The batch is aggregated before it touches the database, so thousands of spans become a few
rollup rows (one per key and minute or hour, with the latency histogram inside), written with
additive upserts. A key is (kind, name, model, provider, prompt_version, branch) with ``''``
for an absent part.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from llmpulse.store._histogram import GAMMA, MAX_BIN, MAX_MS, MIN_MS, ZERO_BIN, dense, to_bytes

__all__ = ["HOUR", "MINUTE", "ROLLUP_COLUMNS", "SUM_COLUMNS", "Rollups", "aggregate"]

MINUTE = 60
HOUR = 3600
SUM_COLUMNS = (
    "count", "errors", "input_tokens", "output_tokens", "total_tokens", "cache_read_tokens",
    "cache_write_tokens", "reasoning_tokens", "cost_usd", "priced_count", "latency_ms_sum",
    "ttft_ms_sum", "ttft_count",
)  # fmt: skip
ROLLUP_COLUMNS = ("resolution", "bucket_start", "key_id", *SUM_COLUMNS, "hist_lo", "hist")

_INV_LOG_GAMMA = 1.0 / math.log(GAMMA)
_N_SUMS = len(SUM_COLUMNS)

Key = tuple[str, str, str, str, str, str]
# Per (resolution, bucket_start, key): the SUM_COLUMNS values, then a {bin: count} dict.
Acc = list[Any]


class Rollups:
    """A batch's aggregates: ``{(resolution, bucket_start, key): acc}`` and every key seen."""

    __slots__ = ("accs", "keys")

    def __init__(self, accs: dict[tuple[int, int, Key], Acc], keys: set[Key]) -> None:
        self.accs = accs
        self.keys = keys

    def rows(self, ids: dict[Key, int], binary: bool) -> list[tuple[Any, ...]]:
        """Rollup rows in ``ROLLUP_COLUMNS`` order, histograms as bytes (``binary``) or lists.

        Sorted by primary key so that concurrent writers lock rows in one order (no deadlocks).
        """
        out = []
        for (res, bucket, key), acc in self.accs.items():
            lo, counts = dense(acc[_N_SUMS])
            out.append(
                (res, bucket, ids[key], *acc[:_N_SUMS], lo, to_bytes(counts) if binary else counts)
            )
        out.sort(key=lambda r: (r[0], r[1], r[2]))
        return out


def aggregate(  # noqa: C901 - one pass per batch on the ingest path, kept flat
    span_rows: Sequence[tuple[Any, ...]], keys: Sequence[Key]
) -> Rollups:
    """Rollups (both resolutions) of validated span rows (``SPAN_COLUMNS`` order) and their keys."""
    minutes: dict[tuple[int, Key], Acc] = {}
    log, ceil = math.log, math.ceil
    for r, key in zip(span_rows, keys, strict=True):
        # One unpack of the whole row (SPAN_COLUMNS order) is cheaper than indexing it.
        (_, _, _, _, _, start, _, latency, status, _, _, _, _, _,
         inp, out, total, cr, cw, rs, cost, ttft, _, _, _, _, _, _, _) = r  # fmt: skip
        mkey = (int(start // MINUTE) * MINUTE, key)
        acc = minutes.get(mkey)
        if acc is None:
            acc = minutes[mkey] = [0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0.0, 0.0, 0, {}]
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
        if latency <= MIN_MS:
            b = ZERO_BIN
        else:
            b = ceil(log(latency) * _INV_LOG_GAMMA) if latency < MAX_MS else MAX_BIN
        hist = acc[13]
        hist[b] = hist.get(b, 0) + 1
    return _with_hours(minutes)


def _with_hours(minutes: dict[tuple[int, Key], Acc]) -> Rollups:
    accs: dict[tuple[int, int, Key], Acc] = {}
    keys: set[Key] = set()
    for (minute, key), acc in minutes.items():
        keys.add(key)
        accs[(MINUTE, minute, key)] = acc
        hkey = (HOUR, minute // HOUR * HOUR, key)
        into = accs.get(hkey)
        if into is None:
            accs[hkey] = [*acc[:_N_SUMS], dict(acc[_N_SUMS])]
            continue
        for i in range(_N_SUMS):
            into[i] += acc[i]
        hist = into[_N_SUMS]
        for b, n in acc[_N_SUMS].items():
            hist[b] = hist.get(b, 0) + n
    return Rollups(accs, keys)
