"""The demo, end to end: simulator → openai client → SDK → store → report."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from llmpulse.cli.main import app
from llmpulse.demo.runner import DemoResult, DemoSettings, run_demo
from llmpulse.store import Store


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, str]:
    """One 60-ticket demo run and its database, read (never written) by the tests below."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'llmpulse.db'}"
    return run_demo(DemoSettings(requests=60, database_url=url, workers=2)), url


class TestDemoRun:
    def test_everything_recorded_is_stored(self, demo_run: tuple[DemoResult, str]) -> None:
        """Every record the SDK took is in the store; nothing is dropped."""
        result, _ = demo_run
        stats = result.sdk_stats
        assert stats.dropped_total == 0
        assert stats.exported == stats.recorded > 60 * 5
        assert len(result.outcomes) == 60

    def test_spans_land_in_the_virtual_timeline(self, demo_run: tuple[DemoResult, str]) -> None:
        """LLM calls are placed at their ticket's simulated time, so the incident has its own window."""
        result, sqlite_url = demo_run
        store = Store.open(sqlite_url)
        try:
            inside = store.span_stats(
                result.incident_start, result.incident_end, kind="llm", model="gpt-4o"
            )
            # Rollups are per minute: stop a minute short so the incident's first minute is out.
            before = store.span_stats(
                result.start, result.incident_start - 60, kind="llm", model="gpt-4o"
            )
        finally:
            store.close()
        assert inside and before
        # ~20% of the tickets are inside the incident; allow for retries adding calls.
        assert 10 <= inside[0].calls <= 40
        # Failed calls have no tokens: compare completions per successful call.
        per_ok = [r.output_tokens / (r.calls - r.errors) for r in (inside[0], before[0])]
        assert per_ok[0] > 1.5 * per_ok[1]
        # The fault switch happens between requests, so nothing before the window failed.
        assert inside[0].errors > 0 and before[0].errors == 0


class TestDemoCommand:
    def test_cli_prints_the_report(self, sqlite_url: str) -> None:
        """`llmpulse demo` shows the per-model, per-step, timeline and routing tables."""
        out = CliRunner().invoke(app, ["demo", "-n", "40", "--database-url", sqlite_url])
        assert out.exit_code == 0, out.output
        for heading in (
            "Per model",
            "Per pipeline step",
            "Timeline of gpt-4o",
            "Routing decisions",
        ):
            assert heading in out.output
        assert "gpt-4o-mini" in out.output and "dropped 0" in out.output

    def test_a_rerun_starts_clean_and_keep_adds(self, sqlite_url: str) -> None:
        """Rerunning the demo on the same file replaces the earlier run (it used to merge into
        it and report both); --keep adds to it, and says so."""
        from llmpulse.store import Store

        def stored() -> int:
            with Store.open(sqlite_url) as store:
                return store.count_spans(0, 4e9)

        assert (
            CliRunner().invoke(app, ["demo", "-n", "20", "--database-url", sqlite_url]).exit_code
            == 0
        )
        first = stored()
        again = CliRunner().invoke(app, ["demo", "-n", "20", "--database-url", sqlite_url])
        assert again.exit_code == 0, again.output
        assert f"deleted the {first:,} spans of an earlier demo run" in again.output
        second = stored()
        assert 0.5 * first < second < 1.5 * first  # one run's worth, not two
        kept = CliRunner().invoke(app, ["demo", "-n", "20", "--keep", "--database-url", sqlite_url])
        assert kept.exit_code == 0 and f"adding to the {second:,} spans" in kept.output
        assert stored() > 1.5 * second

    def test_a_database_with_other_data_is_refused_untouched(self, sqlite_url: str) -> None:
        from llmpulse.schema import Span
        from llmpulse.store import Store

        with Store.open(sqlite_url) as store:
            store.write(spans=[Span("t", "s", "mine", 1e9, 1e9 + 1, service="billing")])
        out = CliRunner().invoke(app, ["demo", "-n", "20", "--database-url", sqlite_url])
        assert out.exit_code == 1
        assert "not the demo's (1 of billing)" in out.output and "--database-url" in out.output
        with Store.open(sqlite_url) as store:
            assert store.count_spans(0, 4e9) == 1

    def test_bad_database_url_is_one_clear_line(self, tmp_path) -> None:
        """An unusable database URL ends the demo with a clear error, not a traceback."""
        out = CliRunner().invoke(
            app, ["demo", "-n", "20", "--database-url", "postgresql://nobody@127.0.0.1:1/x"]
        )
        assert out.exit_code == 1
        assert "error" in out.output.lower() and "Traceback" not in out.output
