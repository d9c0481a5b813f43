"""WriteResult.skipped_spans names the spans of a batch that were not stored."""

from __future__ import annotations

from llmpulse.schema import Span
from llmpulse.store import Store


def _span(i: int, **kw) -> Span:  # type: ignore[no-untyped-def]
    return Span(trace_id="t", span_id=f"s{i}", name="n", start_time=1.0, end_time=2.0, **kw)


class TestSkippedSpans:
    def test_all_stored_is_empty(self, database_url: str) -> None:
        """The common path: every span stored, nothing named."""
        with Store.open(database_url) as store:
            assert store.write(spans=[_span(0), _span(1)]).skipped_spans == ()

    def test_refused_and_duplicate_spans_are_named(self, database_url: str) -> None:
        """A span the checks refuse and one the database refuses (duplicate) are both named."""
        with Store.open(database_url) as store:
            store.write(spans=[_span(2)])
            result = store.write(spans=[_span(0), _span(1, status="weird"), _span(2), _span(3)])
            assert result.spans == 2
            assert result.skipped_spans == (1, 2)
            assert result.stored_before == (2,)  # the refused one was not stored before
