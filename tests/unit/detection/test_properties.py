"""Properties of the anomaly scores for any finite input (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmpulse.detection import (
    anomaly_scores,
    detect_anomalies,
    detect_anomalies_online,
)

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
series = st.lists(finite, min_size=0, max_size=300)


@_SETTINGS
@given(series)
def test_scores_are_finite_for_any_finite_input(values: list[float]) -> None:
    scored = anomaly_scores(values)
    assert len(scored.scores) == len(values)
    assert np.all(np.isfinite(scored.scores)) and np.isfinite(scored.threshold)
    for a in detect_anomalies(values) + detect_anomalies_online(values):
        assert np.isfinite(a.score) and np.isfinite(a.expected) and 0 <= a.index < len(values)


# Values on a 0.001 grid: a shift must not round a value away (1.0 + 3e-233 is 1.0, which is
# another series, not the same one moved), so the property is about the detector, not floats.
grid = st.integers(min_value=-1_000_000, max_value=1_000_000).map(lambda i: i / 1000)


@_SETTINGS
@given(
    st.lists(grid, min_size=20, max_size=300),
    st.floats(min_value=-1e4, max_value=1e4),
    st.floats(min_value=1e-3, max_value=1e3),
)
def test_invariant_to_shift_and_scale(values: list[float], shift: float, scale: float) -> None:
    """On the untransformed scale, moving or stretching the values changes nothing found."""
    moved = [shift + scale * v for v in values]
    a = anomaly_scores(values, transform="none")
    b = anomaly_scores(moved, transform="none")
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6, atol=1e-6)
    found = [x.index for x in detect_anomalies(values, transform="none")]
    assert found == [x.index for x in detect_anomalies(moved, transform="none")]


@_SETTINGS
@given(
    st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=20, max_size=300),
    st.floats(min_value=1e-3, max_value=1e3),
)
def test_positive_metrics_are_invariant_to_units(values: list[float], scale: float) -> None:
    """ms or s, tokens or thousands of tokens: the log scale makes units irrelevant."""
    a = anomaly_scores(values, transform="log")
    b = anomaly_scores([scale * v for v in values], transform="log")
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6, atol=1e-6)


@_SETTINGS
@given(finite, st.integers(min_value=0, max_value=3_000))
def test_constant_or_empty_series_never_alarms(value: float, n: int) -> None:
    values = [value] * n
    assert detect_anomalies(values) == [] and detect_anomalies_online(values) == []
    assert all(s == 0.0 for s in anomaly_scores(values).scores)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.floats(min_value=-1e4, max_value=1e4),
    st.floats(min_value=1e-3, max_value=1e3),
    st.floats(min_value=-20.0, max_value=20.0),
)
def test_sustained_scores_are_finite_and_invariant_on_long_series(
    seed: int, shift: float, scale: float, jump: float
) -> None:
    """Series long enough for the sustained score (2,000 points, heavy tails, a level jump)."""
    rng = np.random.default_rng(seed)
    values = rng.standard_t(3, 2_000)
    values[1_200:] += jump
    moved = shift + scale * values
    a = anomaly_scores(values, transform="none")
    b = anomaly_scores(moved, transform="none")
    assert np.all(np.isfinite(a.sustained)) and len(a.sustained) == values.size
    np.testing.assert_allclose(a.sustained, b.sustained, rtol=1e-6, atol=1e-6)
    assert (a.sustained_threshold is None) == (b.sustained_threshold is None)
    found = [(x.index, x.kind) for x in detect_anomalies(values, transform="none")]
    assert found == [(x.index, x.kind) for x in detect_anomalies(moved, transform="none")]
    online = detect_anomalies_online(values, transform="none")
    assert all(np.isfinite(x.score) and np.isfinite(x.expected) for x in online)
    assert [(x.index, x.kind) for x in online] == [
        (x.index, x.kind) for x in detect_anomalies_online(moved, transform="none")
    ]
