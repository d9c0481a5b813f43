"""Every benchmark in bench/ still runs, at toy size, and ends with the JSON keys it promises.

The numbers here mean nothing (tiny inputs, no timing asserted): this only keeps the benchmarks
runnable as the code under them changes. Real figures come from running them at full size.

One is left out: ``langgraph_instructions.py`` runs ``langgraph_overhead.py``'s variants (which
run here) in child processes under valgrind, minutes at any size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import service_missing

BENCH = Path(__file__).resolve().parents[1] / "bench"

CASES = {
    "langgraph_overhead.py": (
        ["--runs", "4", "--rounds", "2", "--nodes", "3", "--steps", "3"],
        {
            "plain_s",
            "instrumented_s",
            "overhead_ratio",
            "peer_ratio",
            "chain_overhead_ratio",
            "added_us_per_node",
        },
    ),
    "sdk_overhead.py": (
        ["--rounds", "3", "--per-round", "200", "--pause-ms", "0"],
        {"llmpulse_p50_us", "llmpulse_p99_us", "floor_p50_us", "otel_p50_us", "prometheus_p50_us"},
    ),
    "http_export.py": (
        ["--spans", "2000", "--overload", "2", "--calibrate", "2000"],
        {
            "http_spans_per_s",
            "embedded_spans_per_s",
            "http_vs_embedded",
            "overload_peak_rss_mb_3x",
            "overload_refused_batches",
        },
    ),
    "ingest.py": (
        ["--spans", "3000", "--batch", "500", "--rounds", "1"],
        {
            "sqlite_spans_per_s",
            "sqlite_floor_rows_per_s",
            "postgres_spans_per_s",
            "postgres_floor_rows_per_s",
        },
    ),
    "alerting.py": (
        ["--spans", "3000", "--rules", "60", "--ticks", "3"],
        {"rules", "spans", "tick_ms_p50", "tick_ms_p95"},
    ),
    "dashboard.py": (
        ["--spans", "2000", "--repeat", "2", "--loads", "1", "--colds", "1"],
        {"spans", "api_p95_ms", "page_ready_ms_max"},
    ),
    "chart_libraries.py": (["--loads", "1"], {"plotly_served_ms", "plotly_full_ms"}),
    "workflows.py": (
        ["--spans", "2000", "--runs", "40", "--repeat", "1", "--loads", "0"],
        {"spans", "runs", "api_p95_ms", "floor_p95_ms", "traces_p95_ms"},
    ),
    "query.py": (
        ["--small", "3000", "--large", "6000", "--repeat", "3"],
        {"p95_ms_1m", "p95_ms_5m"},
    ),
    "detection.py": (
        ["--repeat", "1"],
        {"anomalies_ms_10k", "change_points_ms_10k", "stream_us_per_point"},
    ),
    "recovery.py": (
        ["--calls", "60", "--threads", "4"],
        {"success_rate_with", "success_rate_without", "added_latency_ms_p50"},
    ),
    "server_ingest.py": (
        [
            "--spans",
            "600",
            "--senders",
            "2",
            "--native-batch",
            "200",
            "--otlp-batch",
            "128",
            "--no-phoenix",
        ],
        {"native_spans_per_s", "otlp_spans_per_s", "phoenix_otlp_spans_per_s", "server_rss_mb"},
    ),
    "soak.py": (
        ["--spans", "3000", "--every", "1000", "--stalled-calls", "20", "--budget-mb", "8"],
        {"rss_mb_start", "rss_mb_end", "rss_growth_after_warmup_mb", "rss_growth_mb", "budget_mb"},
    ),
}


def _needs_chromium(script: str) -> bool:
    return script in ("dashboard.py", "chart_libraries.py")


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess[str] | BaseException:
    """One benchmark at its toy size in ``cwd`` (what it raised, if it did not finish)."""
    try:
        return subprocess.run(
            [sys.executable, str(BENCH / script), *CASES[script][0]],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=240,
        )
    except BaseException as exc:  # a timeout: reported by the test that reads it
        return exc


@pytest.fixture(scope="module")
def bench_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str] | BaseException]:
    """The selected benchmarks run once each, two at a time: each run is mostly a fresh
    interpreter's imports and its own servers, on one core, and the suite would otherwise wait
    for them one by one (about 75 s in all). They share nothing: each has its own directory,
    ports chosen by the OS and, for PostgreSQL, its own schema."""
    scripts = sorted(
        {
            item.callspec.params["script"]
            for item in request.session.items
            if item.module is request.module and hasattr(item, "callspec")
        }
    )
    if not Path("/usr/bin/chromium").exists():
        scripts = [s for s in scripts if not _needs_chromium(s)]
    dirs = [tmp_path_factory.mktemp(script.removesuffix(".py")) for script in scripts]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(scripts, pool.map(_run, scripts, dirs), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(CASES))
class TestBenchmarksRun:
    def test_ends_with_its_json_keys(
        self, script: str, bench_runs: dict[str, subprocess.CompletedProcess[str] | BaseException]
    ) -> None:
        """The benchmark exits 0 and its last line is a JSON object with the promised keys."""
        keys = CASES[script][1]
        if _needs_chromium(script) and not Path("/usr/bin/chromium").exists():
            service_missing("Chromium", "/usr/bin/chromium is missing (apt-get install chromium)")
        proc = bench_runs[script]
        if isinstance(proc, BaseException):
            raise proc
        assert proc.returncode == 0, proc.stderr[-3000:]
        last = proc.stdout.strip().splitlines()[-1]
        figures = json.loads(last)
        assert keys <= set(figures), f"missing {keys - set(figures)}"


@pytest.mark.slow
class TestDetectionScoreFromTheRepository:
    def test_shipped_sample_scores_what_the_docs_say(self, tmp_path: Path) -> None:
        """`bench/detection.py --score` runs on the sample in the repository, from any directory,
        and the batch detectors keep the quality docs/detection.md claims for it."""
        proc = subprocess.run(
            [sys.executable, str(BENCH / "detection.py"), "--score"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        assert figures["series"] == 48
        assert figures["anomaly_f1_batch"] >= 0.95 and figures["change_point_f1"] >= 0.9
        assert figures["covering"] > figures["covering_null"]
        assert 0 <= figures["anomaly_f1_stream"] <= 1
