"""From flags to incidents: the count scan, merging, and the fence for short spikes."""

from __future__ import annotations

import numpy as np
import pytest

from llmpulse.checks._incidents import count_flags, merge_flags, stands_out


def _flags(*bits: int) -> np.ndarray:
    return np.array(bits, dtype=bool)


class TestMerge:
    def test_a_run_of_three_is_an_incident_and_two_lone_flags_are_not(self) -> None:
        """Flags 1,1,1 make an incident; 1,0,1 elsewhere do not (no three in a row)."""
        flags = _flags(0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0)
        [inc] = merge_flags(flags, np.ones(12, dtype=bool), gap=1, min_run=3)
        assert (inc.first, inc.last, inc.flagged) == (1, 3, 3)

    def test_a_one_bucket_dip_does_not_split_an_incident(self) -> None:
        """1,1,1,0,1,1 with gap=1 is one incident of five flagged buckets."""
        [inc] = merge_flags(_flags(1, 1, 1, 0, 1, 1), np.ones(6, dtype=bool), gap=1, min_run=3)
        assert (inc.first, inc.last, inc.flagged) == (0, 5, 5)

    def test_buckets_without_a_value_neither_break_nor_join(self) -> None:
        """Two thin buckets inside a run are skipped over: the run is still three in a row."""
        flags = _flags(1, 0, 0, 1, 1, 0, 0)
        usable = np.array([1, 0, 0, 1, 1, 1, 1], dtype=bool)
        [inc] = merge_flags(flags, usable, gap=0, min_run=3)
        assert (inc.first, inc.last) == (0, 4)


class TestCountScan:
    @pytest.mark.parametrize("seed", range(20))
    def test_binomial_noise_flags_nothing(self, seed: int) -> None:
        """200 buckets of 6 calls at a 2% error rate: no bucket is flagged."""
        rng = np.random.default_rng(seed)
        trials = np.full(200, 6.0)
        flags = count_flags(
            rng.binomial(6, 0.02, 200).astype(float),
            trials,
            alpha=0.01,
            min_delta=0.02,
            direction="up",
        )
        assert not flags.flagged.any()
        assert flags.baseline_rate is not None and flags.baseline_rate < 0.05

    def test_a_burst_is_flagged_where_it_is(self) -> None:
        """Buckets 100-114 at 35% errors over a 1% baseline are flagged, give or take an edge."""
        rng = np.random.default_rng(7)
        p = np.full(200, 0.01)
        p[100:115] = 0.35
        hits = rng.binomial(6, p).astype(float)
        flags = count_flags(hits, np.full(200, 6.0), alpha=0.01, min_delta=0.02, direction="up")
        where = np.flatnonzero(flags.flagged)
        assert 98 <= where.min() <= 103 and 111 <= where.max() <= 116
        assert flags.baseline_rate is not None and flags.baseline_rate < 0.03

    def test_a_long_incident_does_not_hide_itself(self) -> None:
        """An incident over 30% of the series still stands out (the first baseline is a median of blocks)."""
        hits = np.zeros(100)
        hits[40:70] = 2.0
        flags = count_flags(hits, np.full(100, 6.0), alpha=0.01, min_delta=0.02, direction="up")
        assert (
            flags.flagged[40:70].all()
            and not flags.flagged[:40].any()
            and not flags.flagged[70:].any()
        )

    def test_two_sided_scan_finds_a_drop(self) -> None:
        """A branch taken 50% of the time that drops to 5% is found by the two-sided scan."""
        rng = np.random.default_rng(3)
        p = np.full(120, 0.5)
        p[60:80] = 0.05
        hits = rng.binomial(10, p).astype(float)
        flags = count_flags(hits, np.full(120, 10.0), alpha=0.01, min_delta=0.1, direction="both")
        assert flags.flagged[62:78].all() and flags.flagged.sum() <= 24


class TestFence:
    def test_lumpy_noise_does_not_stand_out(self) -> None:
        """In a series that often doubles (a mix of short and long calls) a doubled stretch is normal."""
        outside = np.array([8.0] * 60 + [22.0] * 30 + [38.0] * 6)
        assert not stands_out(np.array([24.0, 22.0, 26.0]), outside)

    def test_a_real_spike_stands_out(self) -> None:
        """Three buckets at 3x a tight baseline clear the fence."""
        outside = 200.0 * np.exp(0.1 * np.random.default_rng(1).standard_normal(80))
        assert stands_out(np.array([600.0, 580.0, 640.0]), outside)
