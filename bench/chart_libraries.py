"""What a chart library costs a cold first page load in headless Chromium: the same five
charts (60 points each, lines and bars) drawn with plotly.js as the dashboard serves it (the
`plotly` package's bundle with only the bar trace registered), the package's full bundle, and,
given its file, another packaged library (dygraphs: `pip download dygraphs`, then
``--dygraphs .../dygraphs/assets/dygraph-combined.js``). Each load is in a fresh browser
context (empty cache), the libraries alternating so they see the same machine load.

    python bench/chart_libraries.py [--loads 5] [--dygraphs PATH]

The LAST line printed is one JSON object: median ms per library, navigation to charts drawn.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from llmpulse.dashboard.assets import _plotly_path, trim_plotly  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
DATA = ("const N=60;const xs=[...Array(N).keys()].map(i=>new Date(Date.now()-(N-i)*60000));"
        "const ys=xs.map((_,i)=>Math.random()*100+i);")  # fmt: skip
PLOTLY_DRAW = (
    "for(let k=0;k<5;k++){const d=document.createElement('div');document.body.appendChild(d);"
    "Plotly.newPlot(d,[{x:xs,y:ys,type:k%2?'bar':'scatter'}],{height:260,title:{text:'c'+k}},"
    "{responsive:true});}document.title='done';"
)
DYGRAPHS_DRAW = (
    "for(let k=0;k<5;k++){const d=document.createElement('div');d.style.height='260px';"
    "d.style.width='600px';document.body.appendChild(d);new Dygraph(d,xs.map((x,i)=>[x,ys[i]]),"
    "{title:'c'+k,labels:['t','v']});}document.title='done';"
)
PAGE = (b"<!doctype html><html><head><script src='/lib.js' defer></script>"
        b"<script src='/app.js' defer></script></head><body></body></html>")  # fmt: skip


def load(browser: Any, lib: bytes, code: str) -> float:
    """ms from navigation to the charts drawn, in a fresh context."""
    context = browser.new_context()
    page = context.new_page()
    files = {"/lib.js": lib, "/app.js": (DATA + code).encode()}

    def answer(route: Any, request: Any) -> None:
        path = "/" + request.url.split("/", 3)[-1]
        body = files.get(path)
        kind = "text/javascript" if body is not None else "text/html"
        route.fulfill(body=body if body is not None else PAGE, content_type=kind)

    page.route("http://bench.test/**", answer)
    t0 = time.perf_counter()
    page.goto("http://bench.test/")
    page.wait_for_function("document.title === 'done'", timeout=60000)
    elapsed = (time.perf_counter() - t0) * 1000
    context.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--dygraphs", help="path of dygraph-combined.js (the dygraphs package)")
    args = parser.parse_args()
    full = _plotly_path().read_bytes()
    libraries = {"plotly_served": (trim_plotly(full) or full, PLOTLY_DRAW),
                 "plotly_full": (full, PLOTLY_DRAW)}  # fmt: skip
    if args.dygraphs:
        libraries["dygraphs"] = (Path(args.dygraphs).read_bytes(), DYGRAPHS_DRAW)
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {name: [] for name in libraries}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        for _ in range(args.loads):
            for name, (lib, code) in libraries.items():
                times[name].append(load(browser, lib, code))
        browser.close()
    for name, values in times.items():
        size = len(libraries[name][0]) / 1e6
        print(f"{name:<14} {size:5.2f} MB  median {statistics.median(values):7.0f} ms  "
              f"{[round(v) for v in values]}")  # fmt: skip
    print(json.dumps({f"{k}_ms": round(statistics.median(v), 1) for k, v in times.items()}))


if __name__ == "__main__":
    main()
