"""StreamingDetector: the anomaly model one point at a time, from the past only."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from llmpulse.detection import StreamingDetector, detect_anomalies, detect_anomalies_online
from llmpulse.errors import DetectionInputError

T0 = 1_700_000_000.0


def _latency(n: int, seed: int = 0) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    values = 800.0 * np.exp(0.08 * rng.standard_normal(n))
    return values.tolist(), (T0 + 300.0 * np.arange(n)).tolist()


class TestScores:
    def test_uses_only_the_past(self) -> None:
        """Changing the future never changes a score already given."""
        values, times = _latency(3_000)
        other = values[:2_000] + [v * 5 for v in values[2_000:]]
        a, b = StreamingDetector(), StreamingDetector()
        sa = [a.update(v, t) for v, t in zip(values, times, strict=True)]
        sb = [b.update(v, t) for v, t in zip(other, times, strict=True)]
        assert sa[:2_000] == sb[:2_000] and sa[2_000:] != sb[2_000:]

    def test_spike_alarms_once_and_says_what_was_expected(self) -> None:
        values, times = _latency(500, seed=1)
        values[300] = 4_000.0
        found = detect_anomalies_online(values, times)
        assert [(a.index, a.direction) for a in found] == [(300, "up")]
        assert 700 < found[0].expected < 900 and found[0].score > found[0].threshold

    def test_level_shift_is_one_event_at_its_start(self) -> None:
        """A 3x jump alarms once at the jump; the trailing median then moves to the new level."""
        values, times = _latency(800, seed=2)
        values = values[:500] + [3 * v for v in values[500:]]
        assert [a.index for a in detect_anomalies_online(values, times)] == [500]

    def test_sustained_shift_alarms_once_like_the_batch_detector(self) -> None:
        """A 25 % step, too small for the spike score: one sustained event, right after it."""
        values, times = _latency(14 * 288, seed=5)
        values = values[:3_000] + [1.25 * v for v in values[3_000:]]
        online = detect_anomalies_online(values, times)
        assert [(a.kind, a.direction) for a in online] == [("sustained", "up")]
        assert 3_000 <= online[0].index <= 3_012
        assert online[0].expected == pytest.approx(800.0, rel=0.05)
        [batch] = [a for a in detect_anomalies(values, times) if a.kind == "sustained"]
        assert abs(batch.index - online[0].index) <= 12

    def test_sustained_score_waits_for_a_calibrated_tail(self) -> None:
        """Before 1,500 deviations are seen the sustained score cannot alarm."""
        values, times = _latency(1_500, seed=6)
        values = values[:1_000] + [1.5 * v for v in values[1_000:]]
        assert [a.kind for a in detect_anomalies_online(values, times)] == ["spike"]

    def test_warmup_never_alarms_and_non_finite_points_are_skipped(self) -> None:
        det = StreamingDetector(warmup=30)
        assert [det.update(v) for v in [1.0, 50.0, 1.0] * 10] == [0.0] * 30
        assert math.isnan(det.update(math.nan))
        values = [100.0 + (i % 3) for i in range(200)]
        values[150] = math.inf
        assert detect_anomalies_online(values) == []

    def test_constant_stream_never_alarms(self) -> None:
        det = StreamingDetector()
        assert all(det.step(42.0) is None for _ in range(3_000))


class TestState:
    def test_state_round_trips_through_json(self) -> None:
        """A detector restored from its JSON state scores the rest exactly like the original."""
        values, times = _latency(4_000, seed=3)
        a = StreamingDetector()
        for v, t in zip(values[:2_500], times[:2_500], strict=True):
            a.update(v, t)
        b = StreamingDetector.from_dict(json.loads(json.dumps(a.to_dict())))
        rest = list(zip(values[2_500:], times[2_500:], strict=True))
        assert a.sustained_threshold is not None  # the sustained score is calibrated by now
        assert [(a.step(v, t), a.sustained) for v, t in rest] == [
            (b.step(v, t), b.sustained) for v, t in rest
        ]
        assert a.threshold == b.threshold and a.sustained_threshold == b.sustained_threshold

    def test_state_is_bounded(self) -> None:
        values, times = _latency(20_000, seed=4)
        det = StreamingDetector()
        for v, t in zip(values, times, strict=True):
            det.update(v, t)
        assert len(json.dumps(det.to_dict())) < 150_000

    def test_damaged_state_is_a_clear_error(self) -> None:
        with pytest.raises(DetectionInputError, match="state"):
            StreamingDetector.from_dict({"version": 1})
        with pytest.raises(DetectionInputError, match="version"):
            StreamingDetector.from_dict({"version": 99})

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"threshold": 0}, "threshold"),
            ({"false_alarms_per_day": -1}, "false_alarms_per_day"),
            ({"window": 2}, "window"),
            ({"warmup": 5}, "warmup"),
            ({"transform": "cube"}, "transform"),
        ],
    )
    def test_bad_options_are_clear_errors(self, kwargs: dict[str, object], match: str) -> None:
        with pytest.raises(DetectionInputError, match=match):
            StreamingDetector(**kwargs)  # type: ignore[arg-type]
