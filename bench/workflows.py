"""Workflow queries at 1M stored spans: the Workflows page's API requests (p95) and the page's
load to data drawn in headless Chromium, beside floors measured in the same run.

    python bench/workflows.py [--spans 1000000] [--runs 20000] [--repeat 20] [--loads 3]

Data: ``--spans`` mixed spans over the 7 days before now (llm calls, tools, chains and 100k
branch decisions of another decision point, as bench/dashboard.py), plus ``--runs`` runs of a
``support`` workflow spread over the same week: classify (a model call under it) routes to
answer (70%), refund (25%) or escalate; answer loops back to classify one time in ten; each
target calls a model and decides the end. A real server (uvicorn in a thread, keys off) answers.
Each request the Workflows page makes (list, flow, SVG, node ranking, branch shares, a page of
runs, one run's path) is timed ``--repeat`` times over 24 h and 7 d, and the runs listing also
at its 20th page; floors: ``GET /api/v1/health`` and the Traces page's request over the last
hour (``/api/v1/traces?limit=50``), a keyset page over raw spans on the same data. The page is
then loaded ``--loads`` times in one warm tab, beside the System page (one request) as floor.
The LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from _data import mixed_spans  # noqa: E402
from dashboard import CHROMIUM, p95, serving  # noqa: E402

from llmpulse.schema import BRANCH_ATTRIBUTE, Span  # noqa: E402
from llmpulse.server.app import create_app  # noqa: E402
from llmpulse.server.settings import ServerSettings  # noqa: E402
from llmpulse.store import Store  # noqa: E402

WEEK = 7 * 86400
BATCH = 20_000


class _Run:
    """The spans of one run, built step by step."""

    def __init__(self, trace: str, rng: random.Random) -> None:
        self.trace, self.rng, self.spans = trace, rng, []  # type: ignore[var-annotated]
        self.ids = (f"{trace[-10:]}{k:04x}" for k in itertools.count())
        self.root = next(self.ids)

    def span(self, name: str, kind: str, at: float, ms: float, parent: str, **kw: Any) -> str:
        sid = next(self.ids)
        self.spans.append(Span(trace_id=self.trace, span_id=sid, parent_id=parent, name=name,
                               kind=kind, start_time=at, end_time=at + ms / 1000, **kw))  # fmt: skip
        return sid

    def node(self, name: str, at: float) -> tuple[str, float]:
        """A node span with a model call under it; its id and end."""
        ms = self.rng.lognormvariate(5.5, 0.5)
        attrs = {"llmpulse.workflow": "support"}
        sid = self.span(name, "chain", at, ms, self.root, attributes=attrs)
        self.span("chat gpt-4o-mini", "llm", at + 0.001, ms * 0.9, sid, model="gpt-4o-mini",
                  provider="openai", input_tokens=self.rng.randint(200, 900),
                  output_tokens=self.rng.randint(20, 200), cost_usd=0.0004)  # fmt: skip
        return sid, at + ms / 1000

    def decide(self, parent: str, source: str, target: str, at: float) -> None:
        attrs = {BRANCH_ATTRIBUTE: target, "llmpulse.workflow": "support"}
        self.span(f"support:{source}", "branch", at, 0.0, parent, attributes=attrs)


def support_runs(n: int, start: float, end: float, seed: int = 9) -> Iterator[Span]:
    """``n`` runs of the ``support`` workflow over ``[start, end)``, in time order."""
    rng = random.Random(seed)
    step = (end - start) / max(n, 1)
    for i in range(n):
        t = start + i * step
        run = _Run(f"wf{i:030x}", rng)
        at = t + 0.001
        for round_ in range(2):
            sid, at = run.node("classify", at)
            roll = rng.random()
            target = "answer" if roll < 0.7 else ("refund" if roll < 0.95 else "escalate")
            run.decide(sid, "classify", target, at)
            sid, at = run.node(target, at)
            if target == "answer" and round_ == 0 and rng.random() < 0.1:
                run.decide(sid, "answer", "classify", at)
                continue
            run.decide(sid, target, "__end__", at)
            break
        status = "error" if rng.random() < 0.02 else "ok"
        yield Span(trace_id=run.trace, span_id=run.root, name="support", kind="chain",
                   start_time=t, end_time=at + 0.001, status=status)  # fmt: skip
        yield from run.spans


def fill(store: Store, spans: Iterator[Span]) -> int:
    """Write ``spans`` in batches; how many."""
    n = 0
    while chunk := list(itertools.islice(spans, BATCH)):
        result = store.write(spans=chunk)
        assert result.rejected == 0, result.reasons
        n += len(chunk)
    return n


def requests(client: httpx.Client, now: float) -> dict[str, tuple[str, dict[str, Any]]]:
    """What the Workflows page asks (24 h and 7 d), and the floors."""
    day = {"start": now - 86400, "end": now}
    week = {"start": now - WEEK, "end": now}
    base = "/api/v1/workflows/support"
    cursor = None
    for _ in range(19):  # the 20th page of the week's runs
        page = client.get(f"{base}/runs", params={**week, "limit": 25, "cursor": cursor}).json()
        cursor = page["next_cursor"] or cursor
    first = client.get(f"{base}/runs", params={**day, "limit": 1}).json()["items"][0]
    out: dict[str, tuple[str, dict[str, Any]]] = {
        "floor: health": ("/api/v1/health", {}),
        "floor: traces 1h (the Traces page)": ("/api/v1/traces", {"start": now - 3600,
                                                                  "end": now, "limit": 50}),
        "run path": (f"{base}/runs/{first['trace_id']}", {}),
        "runs 7d, 20th page": (f"{base}/runs", {**week, "limit": 25, "cursor": cursor}),
    }  # fmt: skip
    for label, window in (("24h", day), ("7d", week)):
        out[f"workflows {label}"] = ("/api/v1/workflows", {**window, "limit": 500})
        out[f"flow {label}"] = (f"{base}/flow", window)
        out[f"flow.svg {label}"] = (f"{base}/flow.svg", window)
        out[f"nodes {label} (200 runs costed)"] = (f"{base}/nodes", {**window, "order": "p95"})
        out[f"branches {label}"] = (f"{base}/branches", window)
        out[f"runs {label}, first page"] = (f"{base}/runs", {**window, "limit": 25})
    return out


def time_api(url: str, now: float, repeat: int) -> tuple[dict[str, float], dict[str, float]]:
    """p95 and median ms of each request over ``repeat`` tries (after one untimed warm-up)."""
    out, medians = {}, {}
    with httpx.Client(base_url=url, timeout=120) as client:
        for name, (path, params) in requests(client, now).items():
            assert client.get(path, params=params).status_code == 200, (name, path)
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                response = client.get(path, params=params)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (name, response.text)
            out[name] = p95(times)
            medians[name] = statistics.median(times)
    return out, medians


def time_pages(url: str, loads: int) -> dict[str, float]:
    """Median ms from navigation to data drawn: the Workflows page (24 h, a run chosen) and the
    System page."""
    from playwright.sync_api import sync_playwright

    out: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-background-networking"])  # fmt: skip
        page = browser.new_page()
        page.goto(url + "/workflows?w=24h")
        page.wait_for_selector("body[data-ready=true]", timeout=60000)
        run = page.locator("#runs tbody a").first.get_attribute("href") or ""
        assert run.startswith("?w=24h&run="), run
        for path in ["/system", "/workflows?w=24h", "/workflows" + run]:
            times = []
            for _ in range(loads):
                t0 = time.perf_counter()
                page.goto(url + path)
                page.wait_for_selector("body[data-ready=true]", timeout=60000)
                times.append((time.perf_counter() - t0) * 1000)
                assert page.locator("#error").is_hidden(), (path, page.text_content("#error"))
            out[path] = statistics.median(times)
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument(
        "--db", help="SQLite file to use (kept; one that exists is reused as it is)"
    )
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="llmpulse-workflows-bench-")
    db = Path(args.db or Path(folder) / "bench.db")
    now = time.time()
    reuse = args.db is not None and db.exists()
    with Store.open(f"sqlite:///{db}") as store:
        t0 = time.perf_counter()
        if reuse:  # a --db filled by an earlier run (in the last hour: the windows end now)
            n = store.count_spans(0, now + 1)
            print(f"reusing {db}: {n:,} spans")
        else:
            n = fill(store, mixed_spans(args.spans, now - WEEK, now, seed=5, content=False))
            n += fill(store, support_runs(args.runs, now - WEEK, now - 60))
            took = time.perf_counter() - t0
            print(f"filled {n:,} spans ({args.runs:,} workflow runs) in {took:.0f} s")
        with serving(create_app(ServerSettings(), store=store)) as url:
            api, medians = time_api(url, now, args.repeat)
            pages = time_pages(url, args.loads) if args.loads else {}
    shutil.rmtree(folder, ignore_errors=True)
    floor = api["floor: health"]
    traces = api["floor: traces 1h (the Traces page)"]
    print(f"\n{'API request (of ' + str(args.repeat) + ')':<44} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p95 x traces':>13}")  # fmt: skip
    for name, ms in api.items():
        print(f"{name:<44} {medians[name]:8.1f} {ms:8.1f} {ms / traces:13.2f}")
    for path, ms in pages.items():
        print(f"page {path[:60]:<60} {ms:8.1f} ms")
    workflow = {k: v for k, v in api.items() if not k.startswith("floor")}
    figures = {
        "spans": n,
        "runs": args.runs,
        "api_p95_ms": round(max(workflow.values()), 1),
        "api_p95_worst": max(workflow, key=lambda k: workflow[k]),
        "floor_p95_ms": round(floor, 1),
        "traces_p95_ms": round(traces, 1),
        "page_ready_ms": round(max((v for k, v in pages.items() if k != "/system"), default=0), 1),
        "page_floor_ms": round(pages.get("/system", 0.0), 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
