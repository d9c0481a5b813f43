"""The SDK's own numbers: what it was given, delivered, dropped (by reason) and still holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DROP_REASONS", "REPAIR_REASONS", "SdkStats", "rejected_count"]

# Why a record was not exported. Sampling is not a drop: see SdkStats.sampled_out.
# ``in_flight_at_shutdown``: taken by an export that had not finished when shutdown's timeout
# ran out (moved back to ``exported`` if that export still finishes while the process runs).
# The HTTP exporter's: ``rejected_by_server`` (a 4xx other than 401/403 and the retryable
# ones), ``unauthorized`` (401/403: the API key), ``spool_full`` (the oldest spooled batches
# made room for new ones).
DROP_REASONS = (
    "queue_full",
    "export_failed",
    "rejected_by_store",
    "shutdown",
    "in_flight_at_shutdown",
    "invalid",
    "rejected_by_server",
    "unauthorized",
    "spool_full",
)
# Why a value of a record was changed so that the record could be stored (the record is kept):
# non_finite_number (NaN or an infinity became null), invalid_text (NUL characters or lone
# surrogates became U+FFFD), negative_number (a negative cost or ttft became null),
# out_of_range (a count beyond a 64-bit column became null), too_long (a kind cut to its
# limit), missing_name (an empty span name became the span's kind).
REPAIR_REASONS = (
    "non_finite_number", "invalid_text", "negative_number", "out_of_range", "too_long",
    "missing_name",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SdkStats:
    """The SDK's own numbers: what it was given, delivered, dropped (by reason) and holds.

    ``recorded = exported + dropped_total + queue_depth + in_flight + spooled`` at all times.
    """

    recorded: int
    exported: int
    dropped: dict[str, int]
    sampled_out: int
    queue_depth: int
    in_flight: int
    export_failures: int
    export_batches: int
    repaired: dict[str, int] = field(default_factory=dict)
    # In the HTTP exporter's file spool, waiting for the server (part of the identity below).
    spooled: int = 0
    # Records a dead process left in the spool that this one delivered (not in ``recorded``).
    recovered: int = 0
    dropped_total: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dropped_total", sum(self.dropped.values()))


def rejected_count(result: Any, size: int) -> int:
    """How many records of a batch the exporter refused (from a ``WriteResult`` or an int)."""
    if result is None:
        return 0
    value = result if isinstance(result, int) else getattr(result, "rejected", 0)
    try:
        return max(0, min(int(value or 0), size))
    except (TypeError, ValueError):
        return 0
