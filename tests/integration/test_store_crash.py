"""A writer killed with SIGKILL mid-batch leaves a sound database: committed batches whole."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from llmpulse.store import Store

BATCH = 400

WRITER = textwrap.dedent(
    """
    import sys, time, uuid
    from llmpulse.schema import Span
    from llmpulse.store import Store

    store = Store.open(sys.argv[1])
    batch = int(sys.argv[2])
    n = 0
    while True:
        t = time.time()
        tag = uuid.uuid4().hex
        spans = [
            Span(trace_id=tag, span_id=f"{tag}-{i}", name="chat", kind="llm", model=f"m{i % 4}",
                 start_time=t + i * 0.01, end_time=t + i * 0.01 + 0.3, input_tokens=5, output_tokens=1,
                 input="x" * 200, attributes={"i": i})
            for i in range(batch)
        ]
        store.write(spans=spans)
        n += 1
        print(n, flush=True)
    """
)


def _counts(path: str) -> tuple[str, int, int, int, int]:
    conn = sqlite3.connect(path)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        spans = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
        minute = conn.execute(
            "SELECT coalesce(sum(count), 0) FROM rollups WHERE resolution = 60"
        ).fetchone()[0]
        hour = conn.execute(
            "SELECT coalesce(sum(count), 0) FROM rollups WHERE resolution = 3600"
        ).fetchone()[0]
        # Every histogram holds as many latencies as its row counts spans.
        rows = conn.execute("SELECT hist FROM rollups WHERE resolution = 60").fetchall()
        hist = int(sum(np.frombuffer(blob, dtype="<i8").sum() for (blob,) in rows))
    finally:
        conn.close()
    return check, spans, minute, hour, hist


@pytest.mark.slow
class TestSigkill:
    def test_killed_writer_leaves_whole_batches(self, tmp_path) -> None:
        """After SIGKILL: integrity ok, span count a multiple of the batch, rollups equal raw."""
        path = str(tmp_path / "crash.db")
        url = f"sqlite:///{path}"
        Store.open(url).close()
        rng = random.Random(11)
        acknowledged = 0
        for _ in range(3):
            with subprocess.Popen(
                [sys.executable, "-c", WRITER, url, str(BATCH)], stdout=subprocess.PIPE, text=True
            ) as proc:
                assert proc.stdout is not None
                seen = 0
                while seen < 2:  # at least two batches committed in this round
                    line = proc.stdout.readline()
                    assert line, "writer exited early"
                    seen = int(line)
                time.sleep(rng.uniform(0.0, 0.05))  # land somewhere inside a later batch
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            acknowledged += seen
            check, spans, minute, hour, hist = _counts(path)
            assert check == "ok"
            assert spans % BATCH == 0, "a partial batch was committed"
            assert spans >= acknowledged * BATCH, "an acknowledged batch was lost"
            assert minute == hour == hist == spans
            acknowledged = spans // BATCH
