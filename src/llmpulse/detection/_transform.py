"""Variance-stabilising transforms, chosen from the data, so noise is about the same size everywhere.

- ``rate``: values in [0, 1] (error rate, branch rate, accuracy) are binomial, with variance
  p(1 - p)/n: arcsine-square-root makes it constant.
- ``log``: positive values (latency, tokens, cost, throughput) vary multiplicatively.
- ``sqrt``: non-negative values with zeros that are not rates behave like counts.
- ``none``: anything that can be negative.

Rates and counts are often whole numbers of events in disguise (3 errors in 400 requests is
0.0075). When the values sit on such a grid, Anscombe's 3/8 offset is added in grid units so a
point with zero events is not infinitely far from one with six.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmpulse.errors import DetectionInputError

__all__ = ["TRANSFORMS", "Transform", "choose_transform"]

TRANSFORMS = ("auto", "log", "rate", "sqrt", "none")
_MAX_EVENTS = 100_000  # a grid finer than 1/100000 is not counting anything
_MIN_DISTINCT = 4


def _event_quantum(values: np.ndarray) -> float:
    """The size of one event when every value is a whole multiple of it (1/n for rates), else 0.

    Needs a few distinct values: a series that only ever takes two values (a deterministic
    benchmark score) is not counting noise, it is a step or a glitch.
    """
    distinct = np.unique(values)
    if distinct.size < _MIN_DISTINCT:
        return 0.0
    steps = np.diff(distinct)
    steps = steps[steps > 1e-12]
    if steps.size == 0:
        return 0.0
    q = float(steps.min())
    if q * _MAX_EVENTS < float(distinct[-1]) or q <= 0:
        return 0.0
    units = distinct / q
    if np.max(np.abs(units - np.round(units))) > 1e-3:
        return 0.0
    return q


@dataclass(frozen=True, slots=True)
class Transform:
    """One transform and its offset; ``forward`` and ``inverse`` undo each other."""

    kind: str
    offset: float = 0.0  # added before the square root (Anscombe, in event units)

    @property
    def noise_floor(self) -> float:
        """Counting noise on the stabilised scale (0.5 / sqrt(events per unit)); 0 when not counts.

        Medians of whole-number data tie a lot, which shrinks a MAD below the real noise; the
        noise of counted events cannot be smaller than this.
        """
        return 0.5 * float(np.sqrt(self.offset / 0.375)) if self.offset > 0 else 0.0

    def forward(self, values: np.ndarray) -> np.ndarray:
        """Map metric values to the stabilised scale."""
        out: np.ndarray
        if self.kind == "log":
            if np.any(values <= 0):
                raise DetectionInputError("transform='log' needs values > 0; use 'auto' or 'sqrt'")
            out = np.log(values)
        elif self.kind == "rate":
            p = (np.clip(values, 0.0, 1.0) + self.offset) / (1.0 + 2.0 * self.offset)
            out = np.arcsin(np.sqrt(p))
        elif self.kind == "sqrt":
            if np.any(values < 0):
                raise DetectionInputError(
                    "transform='sqrt' needs values >= 0; use 'auto' or 'none'"
                )
            out = np.sqrt(values + self.offset)
        else:
            out = values.astype(np.float64, copy=True)
        return out

    def inverse(self, y: np.ndarray | float) -> np.ndarray:
        """Map stabilised numbers back to the metric's units."""
        arr = np.asarray(y, dtype=np.float64)
        out: np.ndarray
        if self.kind == "log":
            out = np.exp(arr)
        elif self.kind == "rate":
            p = np.sin(np.clip(arr, 0.0, np.pi / 2)) ** 2
            out = np.clip(p * (1.0 + 2.0 * self.offset) - self.offset, 0.0, 1.0)
        elif self.kind == "sqrt":
            out = np.maximum(np.square(np.maximum(arr, 0.0)) - self.offset, 0.0)
        else:
            out = arr
        return out


def _kind_for(values: np.ndarray) -> str:
    """Which transform fits the data (see the module docstring)."""
    if values.size == 0:
        return "none"
    low = float(values.min())
    # A few points above 1 (an accuracy glitch) do not stop a series from being a rate.
    if low >= 0.0 and float(np.quantile(values, 0.95)) <= 1.0:
        return "rate"
    if low > 0.0:
        return "log"
    return "sqrt" if low >= 0.0 else "none"


def choose_transform(values: np.ndarray, transform: str = "auto") -> Transform:
    """The transform named by `transform`, or the one that fits the data for 'auto'."""
    if transform not in TRANSFORMS:
        raise DetectionInputError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    kind = _kind_for(values) if transform == "auto" else transform
    offset = 0.375 * _event_quantum(values) if kind in ("rate", "sqrt") else 0.0
    return Transform(kind, offset)
