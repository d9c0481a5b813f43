"""Where batches go: the ``Exporter`` protocol and the built-in exporters.

An exporter gets whole batches on the export thread, never single records. ``export`` may
raise (the batch is retried with backoff, then dropped and counted) and may return an object
with a ``rejected`` count (or an int) for records the destination refused.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from llmpulse.schema import MetricPoint, Run, Span

__all__ = ["Exporter", "Record"]

Record = Span | MetricPoint | Run


@runtime_checkable
class Exporter(Protocol):
    """Receives batches of records from the SDK's export thread."""

    def export(self, batch: list[Record]) -> Any:
        """Deliver one batch (one transaction / one request); raise to have it retried."""

    def shutdown(self) -> None:
        """Release connections; called once when the client shuts down."""
