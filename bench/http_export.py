"""The SDK's HTTP exporter: spans/s into a real ``llmpulse serve`` beside the embedded store,
and (``--overload S``) three times the sustainable ingest rate for S seconds.

    python bench/http_export.py [--spans 100000] [--overload 60]

* ``http_spans_per_s``: ``llmpulse.init(server_url=...)`` then ``record_llm_call`` N times
  (bench/ingest.py's realistic calls), clock from the first record until ``flush()`` returned,
  i.e. until the server acknowledged every batch (it answers after the commit). The server is
  a ``llmpulse serve`` subprocess on SQLite, on the same machine (it shares the 2 cores).
* ``embedded_spans_per_s``: the same calls with ``llmpulse.init(database_url=...)``, the SDK
  writing that SQLite itself (the peer the HTTP path is compared with).
* ``--overload S``: one sender recording ``--calibrate`` spans at once gives the server's
  sustainable rate (spans acknowledged per second until the last); then three SDK processes each send at that rate for S seconds
  (3x) against a server whose ingest gate is 1 batch at work and 1 waiting. Reported: the
  server's peak RSS (``/proc``) at 1x and at 3x, batches refused with 503 + Retry-After, the
  peak spooled records, and whether everything was stored once the overload ended.

The LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import LlmCalls  # noqa: E402

import llmpulse  # noqa: E402
from llmpulse.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SERVE = "from llmpulse.cli.main import main; main()"

SENDER = """
import json, sys, threading, time, llmpulse
url, spool, rate, seconds, limit = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
client = llmpulse.init(server_url=url, spool_dir=spool, instrument=(), queue_size=4_000_000)
peak, done = [0], threading.Event()
def watch():
    while not done.wait(0.05):
        peak[0] = max(peak[0], client.stats().spooled)
threading.Thread(target=watch, daemon=True).start()
start, n = time.monotonic(), 0
while not (seconds and time.monotonic() - start >= seconds) and not (limit and n >= limit):
    if rate and n >= rate * (time.monotonic() - start):
        time.sleep(0.002)
        continue
    for _ in range(100):
        llmpulse.record_llm_call("gpt-4o-mini", input_tokens=12, output_tokens=3, latency_ms=9.0)
    n += 100
recorded_at = time.monotonic()
flushed = client.flush(600)
done.set()
s = client.stats()
print(json.dumps({"flushed": flushed, "recorded": s.recorded, "exported": s.exported,
                  "dropped": s.dropped_total, "peak_spooled": peak[0],
                  "seconds": time.monotonic() - start}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A ``llmpulse serve`` subprocess on ``db`` (SQLite), ready when health answers."""

    def __init__(self, db: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", "--port", str(self.port),
             "--database-url", f"sqlite:///{db}"],
            cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("llmpulse serve did not start")
            time.sleep(0.1)

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=10) as r:
            doc: dict[str, Any] = json.loads(r.read())
            return doc

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def spans_in(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])
    finally:
        conn.close()


def timed(calls: LlmCalls, **init: Any) -> float:
    """Spans/s from the first record until flush returned (everything stored)."""
    client = llmpulse.init(queue_size=calls.n + 1000, instrument=(), **init)
    try:
        t0 = time.perf_counter()
        calls.record_all()
        flushed = llmpulse.flush(timeout=900)
        elapsed = time.perf_counter() - t0
        stats = client.stats()
    finally:
        llmpulse.shutdown()
    if not flushed or stats.dropped_total or stats.exported != calls.n:
        raise SystemExit(f"lost records: {stats}")
    return calls.n / elapsed


def throughput(tmp: Path, n: int) -> dict[str, float]:
    calls = LlmCalls(n)
    embedded_db = tmp / "embedded.db"
    Store.open(f"sqlite:///{embedded_db}").close()  # migrated first, as in bench/ingest.py
    embedded = timed(calls, database_url=f"sqlite:///{embedded_db}")
    server = Server(tmp / "server.db")
    try:
        http = timed(calls, server_url=server.url, spool_dir=str(tmp / "spool"))
    finally:
        server.stop()
    if spans_in(tmp / "server.db") != n or spans_in(embedded_db) != n:
        raise SystemExit("a store does not hold every span")
    print(f"HTTP exporter -> llmpulse serve (SQLite): {http:10,.0f} spans/s")
    print(f"embedded store exporter (SQLite):        {embedded:10,.0f} spans/s")
    print(f"ratio http / embedded:                   {http / embedded:10.2f}")
    return {"http_spans_per_s": round(http), "embedded_spans_per_s": round(embedded),
            "http_vs_embedded": round(http / embedded, 3)}  # fmt: skip


def overload(tmp: Path, seconds: float, calibrate: int) -> dict[str, Any]:
    db = tmp / "overload.db"
    server = Server(db, {"LLMPULSE_INGEST_CONCURRENCY": "1", "LLMPULSE_INGEST_QUEUE": "1",
                         "LLMPULSE_RETRY_AFTER_SECONDS": "1"})  # fmt: skip
    spool = str(tmp / "spool-overload")
    samples: list[tuple[str, float]] = []
    phase, stop = ["1x"], threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            samples.append((phase[0], server.rss_mb()))

    def sender(rate: float, secs: float, limit: int = 0) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", SENDER, server.url, spool, str(rate),
                                 str(secs), str(limit)], cwd=ROOT, text=True,
                                stdout=subprocess.PIPE)  # fmt: skip

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        # 1x: ``calibrate`` spans recorded at once; the rate at which the server acknowledged
        # them all is its sustainable rate.
        results = [json.loads(sender(0, 0, calibrate).communicate()[0].splitlines()[-1])]
        sustainable = results[0]["recorded"] / results[0]["seconds"]
        phase[0] = "3x"
        refused_before = _gate(server.health())["rejected_batches"]
        procs = [sender(sustainable, seconds) for _ in range(3)]
        results += [json.loads(p.communicate()[0].splitlines()[-1]) for p in procs]
        refused = _gate(server.health())["rejected_batches"] - refused_before
    finally:
        stop.set()
        sampler.join()
        server.stop()
    recorded = sum(r["recorded"] for r in results)
    stored = spans_in(db)
    peak_1x = max(v for p, v in samples if p == "1x")
    peak_3x = max(v for p, v in samples if p == "3x")
    print(f"overload: sustainable {sustainable:,.0f} spans/s; 3 senders x that for {seconds:.0f} s")
    print(f"  server peak RSS: {peak_1x:.0f} MB at 1x, {peak_3x:.0f} MB at 3x")
    print(f"  refused with 503 + Retry-After: {refused} batches; peak spooled per sender: "
          f"{[r['peak_spooled'] for r in results[1:]]}")  # fmt: skip
    print(
        f"  stored {stored:,} of {recorded:,} recorded; dropped {sum(r['dropped'] for r in results)}"
    )
    return {"overload_seconds": seconds, "overload_sustainable_spans_per_s": round(sustainable),
            "overload_peak_rss_mb_1x": round(peak_1x), "overload_peak_rss_mb_3x": round(peak_3x),
            "overload_refused_batches": refused, "overload_all_stored": stored == recorded}  # fmt: skip


def _gate(doc: Any) -> dict[str, Any]:
    if isinstance(doc, dict):
        if "rejected_batches" in doc:
            return doc
        for value in doc.values():
            found = _gate(value)
            if found:
                return found
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--overload", type=float, default=0.0, metavar="SECONDS",
                        help="also run 3x the sustainable rate for this long (0: skip)")  # fmt: skip
    parser.add_argument("--calibrate", type=int, default=40_000,
                        help="spans the 1x sender records to measure the sustainable rate")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmpulse-http-bench-") as tmp:
        figures: dict[str, Any] = throughput(Path(tmp), args.spans)
        if args.overload > 0:
            figures |= overload(Path(tmp), args.overload, args.calibrate)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
