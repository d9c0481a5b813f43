"""Window planning (hour rows inside, minute rows at the edges) and the latency histogram."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmpulse.store._histogram import GAMMA, RELATIVE_ERROR, ZERO_BIN, bin_of, bin_value, quantiles
from llmpulse.store.queries.window import HOUR, MINUTE, minute_bounds, plan, plan_series

H = 1_700_000_000 // HOUR * HOUR


def _covered(segments: list[tuple[int, int, int]]) -> list[int]:
    """Every minute covered by the segments, in order (each hour row stands for 60 minutes)."""
    return [m for _, a, b in segments for m in range(a, b, MINUTE)]


class TestPlan:
    def test_ragged_window_uses_hours_inside(self) -> None:
        """A window with ragged edges reads minute rows at both ends and hour rows between."""
        lo, hi = H - 17 * MINUTE, H + 2 * HOUR + 13 * MINUTE
        assert plan(lo, hi) == [
            (MINUTE, lo, H),
            (HOUR, H, H + 2 * HOUR),
            (MINUTE, H + 2 * HOUR, hi),
        ]

    def test_aligned_window_is_hours_only(self) -> None:
        """A window of whole hours reads hour rows only."""
        assert plan(H, H + 24 * HOUR) == [(HOUR, H, H + 24 * HOUR)]

    def test_short_window_is_minutes_only(self) -> None:
        """A window inside one hour reads minute rows only; an empty window reads nothing."""
        assert plan(H + MINUTE, H + 30 * MINUTE) == [(MINUTE, H + MINUTE, H + 30 * MINUTE)]
        assert plan(H, H) == []

    @pytest.mark.parametrize("offset", [0, 1, 59, 61, 3599])
    def test_every_minute_exactly_once(self, offset: int) -> None:
        """Whatever the edges, the plan covers each minute of the window exactly once."""
        lo, hi = minute_bounds(H + offset, H + 5 * HOUR + offset * 7)
        assert _covered(plan(lo, hi)) == list(range(lo, hi, MINUTE))

    def test_minute_bounds(self) -> None:
        """Start rounds down and end rounds up to whole minutes; bad windows raise ValueError."""
        assert minute_bounds(H + 59.9, H + 60.1) == (H, H + 120)
        assert minute_bounds(H, H + 60) == (H, H + 60)
        with pytest.raises(ValueError, match="before start"):
            minute_bounds(H + 1, H)
        with pytest.raises(ValueError, match="finite"):
            minute_bounds(float("nan"), H)


class TestPlanSeries:
    def test_no_hour_row_straddles_buckets(self) -> None:
        """With an unaligned origin every hour row used lies inside one series bucket."""
        lo, hi, step = H + 20 * MINUTE, H + 6 * HOUR, 2 * HOUR
        segments = plan_series(lo, hi, step)
        assert _covered(segments) == list(range(lo, hi, MINUTE))
        for res, a, b in segments:
            if res == HOUR:
                for h in range(a, b, HOUR):
                    assert h // step == (h + HOUR - MINUTE) // step

    def test_buckets_are_epoch_aligned(self) -> None:
        """Series buckets start at multiples of the step, the first one before the window's start."""
        from llmpulse.store.queries.window import series_buckets

        assert list(series_buckets(H + 20 * MINUTE, H + 3 * HOUR, HOUR)) == [
            H,
            H + HOUR,
            H + 2 * HOUR,
        ]
        assert list(series_buckets(H + 20 * MINUTE, H + 30 * MINUTE, 600)) == [H + 1200]

    def test_small_steps_read_minutes(self) -> None:
        """Steps under an hour read minute rows only."""
        assert plan_series(H, H + HOUR, 300) == [(MINUTE, H, H + HOUR)]

    @pytest.mark.parametrize("step", [0, -60, 90])
    def test_bad_step(self, step: int) -> None:
        """Steps that are not positive whole minutes raise ValueError."""
        with pytest.raises(ValueError, match="step_seconds"):
            plan_series(H, H + HOUR, step)


class TestHistogram:
    def test_bin_value_within_error_of_every_value_in_bin(self) -> None:
        """Any latency is within RELATIVE_ERROR of the value its bin reports."""
        values = np.exp(np.linspace(math.log(0.002), math.log(1e7), 20_000))
        for v in values:
            assert abs(bin_value(bin_of(float(v))) - v) <= RELATIVE_ERROR * v * (1 + 1e-9)

    def test_stated_error(self) -> None:
        """The stated error follows from GAMMA = 1.05: 2.44 %."""
        assert GAMMA == 1.05 and pytest.approx(0.0244, abs=1e-4) == RELATIVE_ERROR

    def test_zero_and_tiny(self) -> None:
        """Zero and sub-microsecond latencies share the zero bin, reported as 0."""
        assert bin_of(0.0) == bin_of(1e-6) == ZERO_BIN and bin_value(ZERO_BIN) == 0.0

    def test_quantiles_match_numpy(self) -> None:
        """Quantiles of a histogram match numpy's on the raw values within the error."""
        rng = np.random.default_rng(1)
        values = rng.lognormal(6, 1.2, 5001)
        counts: dict[int, int] = {}
        for v in values:
            counts[bin_of(float(v))] = counts.get(bin_of(float(v)), 0) + 1
        qs = [0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0]
        for q, got in zip(qs, quantiles(counts, qs), strict=True):
            low = np.quantile(values, q, method="lower")
            high = np.quantile(values, q, method="higher")
            assert low * (1 - RELATIVE_ERROR) <= got <= high * (1 + RELATIVE_ERROR)

    def test_empty_histogram(self) -> None:
        """An empty histogram has no quantiles."""
        assert quantiles({}, [0.5, 0.99]) == [None, None]

    def test_merge_is_addition(self) -> None:
        """Merging two histograms by adding counts gives the histogram of the union."""
        a, b = [1.0, 5.0, 9.0], [5.0, 700.0]
        merged: dict[int, int] = {}
        for v in a + b:
            merged[bin_of(v)] = merged.get(bin_of(v), 0) + 1
        separately: dict[int, int] = {}
        for part in (a, b):
            for v in part:
                separately[bin_of(v)] = separately.get(bin_of(v), 0) + 1
        assert merged == separately and quantiles(merged, [0.5]) == [bin_value(bin_of(5.0))]


class TestDenseHistograms:
    def test_hist_add_bytes_equals_dict_merge(self) -> None:
        """Adding two dense arrays with different first bins equals merging their dicts."""
        from llmpulse.store._histogram import dense, hist_add_bytes, to_bytes

        a, b = {3: 2, 5: 1}, {-2: 4, 4: 1, 5: 3}
        lo_a, ca = dense(a)
        lo_b, cb = dense(b)
        merged = np.frombuffer(hist_add_bytes(lo_a, to_bytes(ca), lo_b, to_bytes(cb)), dtype="<i8")
        lo, expected = dense({-2: 4, 3: 2, 4: 1, 5: 4})
        assert min(lo_a, lo_b) == lo and merged.tolist() == expected
        assert hist_add_bytes(None, None, lo_b, to_bytes(cb)) == to_bytes(cb)

    def test_sparse_and_dense_paths_agree(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Many groups (the sparse path) give the same quantiles as the dense matrix path."""
        from llmpulse.store import _histogram

        rng = np.random.default_rng(3)
        groups = rng.integers(0, 50, 4000)
        bins = rng.integers(-20, 200, 4000)
        counts = rng.integers(0, 5, 4000).astype(float)
        qs = (0.0, 0.5, 0.95, 1.0)
        dense_result = _histogram.group_quantiles(groups, bins, counts, 60, qs)
        monkeypatch.setattr(_histogram, "_DENSE_LIMIT", 0)
        sparse_result = _histogram.group_quantiles(groups, bins, counts, 60, qs)
        assert np.array_equal(dense_result, sparse_result, equal_nan=True)
        assert np.isnan(dense_result[55]).all()  # groups 50..59 have no entries

    def test_ingest_bins_match_bin_of(self) -> None:
        """The inlined binning of the ingest path agrees with bin_of, edges included."""
        from llmpulse.store._histogram import MAX_MS, MIN_MS
        from llmpulse.store._rollup import aggregate
        from llmpulse.store._validate import span_row
        from tests.unit.store.conftest import make_span

        latencies = [0.0, MIN_MS, MIN_MS * 1.01, 0.5, 1.0, 1.05, 250.0, 1e6, MAX_MS, MAX_MS * 10]
        rows = [
            span_row(make_span(1_700_000_000.0, lat, name=f"n{i}"))
            for i, lat in enumerate(latencies)
        ]
        rollups = aggregate([r for r, _ in rows], [k for _, k in rows])
        for (res, _, key), acc in rollups.accs.items():
            if res == 60:
                i = int(key[1][1:])
                expected = bin_of(rows[i][0][7])
                assert acc[-1] == {expected: 1}, (latencies[i], acc[-1])
