"""The incident the demo injects midway: a provider degradation on the large model.

Between ``start`` and ``end`` (shares of the run) the simulator makes gpt-4o slow (latency ×5),
flaky (a share of requests answered 500) and verbose (completions ×3 tokens). Everything else
about the run stays the same, so whatever llmpulse flags outside the window is a false alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmpulse.simulator import Faults

__all__ = ["BASELINE_FAULTS", "MODEL_BASELINES", "Incident"]

# What normal looks like per model: latencies are scaled down from real providers (ms, not
# seconds) so a few hundred tickets take seconds; everything else is realistic.
MODEL_BASELINES: dict[str, Faults] = {
    "gpt-4o": Faults(latency_median_ms=45.0, latency_sigma=0.25),
    "gpt-4o-mini": Faults(latency_median_ms=15.0, latency_sigma=0.25),
}
BASELINE_FAULTS = Faults()


@dataclass(frozen=True, slots=True)
class Incident:
    """A window of the run during which the large model degrades."""

    start: float = 0.45
    end: float = 0.65
    model: str = "gpt-4o"
    latency_scale: float = 5.0
    error_rate: float = 0.4
    token_blowup: float = 3.0

    def window(self, requests: int) -> tuple[int, int]:
        """First and one-past-last request index inside the incident."""
        return int(requests * self.start), int(requests * self.end)

    def faults(self) -> Faults:
        """The degraded model's faults during the incident."""
        base = MODEL_BASELINES[self.model]
        return Faults(
            latency_median_ms=base.latency_median_ms,
            latency_sigma=base.latency_sigma,
            latency_scale=self.latency_scale,
            error_rate=self.error_rate,
            token_blowup=self.token_blowup,
        )

    def describe(self) -> str:
        """One line for the report."""
        return (
            f"{self.model}: latency ×{self.latency_scale:g}, {self.error_rate:.0%} of requests fail (500), "
            f"completions ×{self.token_blowup:g} tokens"
        )
