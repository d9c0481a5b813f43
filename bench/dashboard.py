"""Dashboard speed at 1M stored spans: how fast each page's data requests answer (p95, over the
REST API the pages call) and how soon each page is usable (data loaded, charts drawn) in
headless Chromium, beside floors measured in the same run.

    python bench/dashboard.py [--spans 1000000] [--repeat 30] [--loads 5] [--db PATH]

Data: mixed spans (llm calls of 4 models, tools, chains, branch decisions) over the 7 days
before now, written through ``Store.write`` (the rows and rollups ingest makes). A real server
(uvicorn in a thread, keys off) serves the API and the dashboard. For each page the requests
its script makes are timed ``--repeat`` times with httpx (p95 per request; the worst is
``api_p95_ms``; the floor is ``GET /api/v1/health``). The overview's findings are answered from
the server's cache after the first request of a window, which runs ``llmpulse check``: that
first request is reported apart (``findings_first_ms_max``). The overview is first loaded ``--colds``
times, each in a fresh browser context (empty cache: plotly.js fetched, parsed and evaluated,
as on a user's first visit; the median is ``cold_load_ms``). Each page is then loaded
``--loads`` times in one warm Chromium tab (plotly.js cached, as for a user moving between
pages) from navigation to the page's "data drawn" mark (``body[data-ready=true]``, set after
its charts are plotted); the median per page. ``page_ready_ms_max`` is the worst of these and
the cold load; the floor is the Workflows page, which over this data (its branch spans name
no workflow) loads the same shell and scripts and one small rollup request, then says there is
no workflow (bench/workflows.py times that page with workflows); beside the cold load, the
first load of /traces (no chart: no plotly.js). Needs /usr/bin/chromium and playwright.
The LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from _data import mixed_spans  # noqa: E402

from llmpulse.server.app import create_app  # noqa: E402
from llmpulse.server.settings import ServerSettings  # noqa: E402
from llmpulse.store import Store  # noqa: E402

WEEK = 7 * 86400
BATCH = 20_000
CHROMIUM = "/usr/bin/chromium"


def fill(store: Store, n: int, end: float) -> float:
    """Write ``n`` spans over the week before ``end``; returns spans/s."""
    t0 = time.perf_counter()
    spans = mixed_spans(n, end - WEEK, end, seed=5, content=False)
    while chunk := list(itertools.islice(spans, BATCH)):
        result = store.write(spans=chunk)
        assert result.rejected == 0, result.reasons
    return n / (time.perf_counter() - t0)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, in a thread."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)


def page_requests(client: httpx.Client, now: float) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The API requests each page's script makes (default 1h window; Models at 24h)."""
    hour = {"start": now - 3600, "end": now}
    before = {"start": now - 7200, "end": now - 3600}
    day = {"start": now - 86400, "end": now}
    trace = client.get("/api/v1/traces", params={**day, "limit": 1}).json()["items"][0]
    tid = trace["trace_id"]
    return {
        "overview": [
            ("/api/v1/dashboard/overview", hour),
            ("/api/v1/dashboard/overview", before),
            ("/api/v1/dashboard/findings", hour),
        ],
        "overview 7d": [
            ("/api/v1/dashboard/overview", {"start": now - WEEK, "end": now}),
            ("/api/v1/dashboard/findings", {"start": now - WEEK, "end": now}),
        ],
        "models 24h": [("/api/v1/dashboard/overview", day)],
        "model": [("/api/v1/dashboard/model-performance/gpt-4o-mini", {"days_back": 1})],
        "traces": [("/api/v1/traces", {**hour, "limit": 50})],
        "traces filtered": [
            ("/api/v1/traces", {**day, "limit": 50, "model": "gpt-4o", "status": "error"})
        ],
        "traces minimums": [
            ("/api/v1/traces", {**hour, "limit": 50, "min_latency_ms": 2000}),
            ("/api/v1/traces", {**day, "limit": 50, "min_latency_ms": 5000, "min_cost_usd": 0.01}),
        ],
        "trace": [(f"/api/v1/traces/{tid}", {}), (f"/api/v1/traces/{tid}/spans", {"limit": 1000})],
        "runs": [("/api/v1/runs", {"limit": 100})],
        "alerts": [("/api/v1/alerts", {"limit": 200})],
        "system": [
            ("/api/v1/health", {}),
            ("/api/v1/dashboard/system", {}),
            ("/api/v1/metrics/names", hour),
        ],
    }


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def time_api(url: str, now: float, repeat: int) -> tuple[dict[str, float], dict[str, float]]:
    """p95 ms per request of each page; and the first request of each findings window (the
    one that runs the checks; the others are answered from the server's cache)."""
    out: dict[str, float] = {}
    first: dict[str, float] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        for page, requests in page_requests(client, now).items():
            for i, (path, params) in enumerate(requests):
                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    answer = client.get(path, params=params)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert answer.status_code == 200, (path, answer.text[:300])
                out[f"{page} #{i + 1} {path.split('/api/v1/')[1][:40]}"] = p95(times)
                if path.endswith("/findings"):
                    first[page] = times[0]
    return out, first


def time_pages(url: str, loads: int, colds: int) -> tuple[dict[str, float], float]:
    """Median ms from navigation to data drawn, per page (warm tab); and the median of
    ``colds`` first loads of / in a fresh browser context each (empty cache: plotly.js fetched,
    parsed and evaluated with nothing kept from before). Beside it, as its floor, first loads
    of /traces (no chart, so no plotly.js) alternating with them."""
    from playwright.sync_api import sync_playwright

    pages = ["/", "/?w=7d", "/models?w=24h", "/models/gpt-4o-mini", "/traces", "/runs", "/alerts",
             "/system", "/workflows"]  # fmt: skip
    out: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-background-networking"])  # fmt: skip
        cold_times: dict[str, list[float]] = {"/": [], "/traces": []}
        for _ in range(colds):  # alternating, so both see the same load
            for path, times in cold_times.items():
                context = browser.new_context()
                page = context.new_page()
                t0 = time.perf_counter()
                page.goto(url + path)
                page.wait_for_selector("body[data-ready=true]", timeout=60000)
                times.append((time.perf_counter() - t0) * 1000)
                assert page.locator("#error").is_hidden(), page.text_content("#error")
                context.close()
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=60000)
        trace = page.evaluate("fetch('/api/v1/traces?limit=1').then(r => r.json())")
        pages.append("/traces/" + trace["items"][0]["trace_id"])
        for path in pages:
            times = []
            for _ in range(loads):
                t0 = time.perf_counter()
                page.goto(url + path)
                page.wait_for_selector("body[data-ready=true]", timeout=60000)
                times.append((time.perf_counter() - t0) * 1000)
                assert page.locator("#error").is_hidden(), (path, page.text_content("#error"))
            out[path] = statistics.median(times)
        browser.close()
    out["cold /traces (no charts)"] = statistics.median(cold_times["/traces"])
    return out, statistics.median(cold_times["/"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--colds", type=int, default=5, help="cold first loads (fresh contexts)")
    parser.add_argument("--db", help="SQLite file to use (kept); default a temp file")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="llmpulse-dashboard-bench-")
    db = Path(args.db or Path(folder) / "bench.db")
    now = time.time()
    with Store.open(f"sqlite:///{db}") as store:
        rate = fill(store, args.spans, now)
        print(f"filled {args.spans:,} spans at {rate:,.0f} spans/s into {db}")
        with serving(create_app(ServerSettings(), store=store)) as url:
            api, checks = time_api(url, now, args.repeat)
            pages, cold = time_pages(url, args.loads, args.colds)
    shutil.rmtree(folder, ignore_errors=True)  # the temp database (a --db file is kept)
    floor_api = next(v for k, v in api.items() if k.startswith("system #1 health"))
    floor_page = pages["/workflows"]
    print(f"\n{'API request (p95 of ' + str(args.repeat) + ')':<62} {'ms':>8} {'x floor':>8}")
    for name, ms in api.items():
        print(f"{name:<62} {ms:8.1f} {ms / floor_api:8.1f}")
    print(f"\n{'page: navigation to data drawn (median of ' + str(args.loads) + ')':<62} {'ms':>8}")
    for path, ms in pages.items():
        print(f"{path[:62]:<62} {ms:8.1f} {ms / floor_page:8.1f}")
    for page, ms in checks.items():
        print(f"findings of the {page} window, first request (the checks run): {ms:.0f} ms")
    print(f"first load of / with an empty cache, median of {args.colds}: {cold:.0f} ms")
    figures = {
        "spans": args.spans,
        "api_p95_ms": round(max(api.values()), 1),
        "api_floor_p95_ms": round(floor_api, 1),
        "page_ready_ms_max": round(max(*pages.values(), cold), 1),  # the cold floor is lower
        "page_floor_ms": round(floor_page, 1),
        "cold_floor_ms": round(pages["cold /traces (no charts)"], 1),
        "cold_load_ms": round(cold, 1),
        "findings_first_ms_max": round(max(checks.values()), 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
