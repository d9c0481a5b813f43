"""Trace and span ids: W3C-shaped, unique, and ordered so stored spans stay close in indexes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

from llmpulse.sdk._context import (
    new_span_id,
    new_trace_id,
    sample_threshold,
    span_hex,
    trace_hex,
    trace_sampled,
)


class TestTraceIds:
    def test_top_48_bits_are_the_creation_millisecond(self) -> None:
        """A trace id starts with the Unix millisecond it was made in."""
        before = time.time_ns() // 1_000_000
        trace = new_trace_id()
        after = time.time_ns() // 1_000_000
        assert before <= trace >> 80 <= after
        assert len(trace_hex(trace)) == 32

    def test_sampling_bits_stay_random(self) -> None:
        """The low 64 bits, which sampling reads, keep about the asked share of traces."""
        threshold = sample_threshold(0.25)
        kept = sum(trace_sampled(new_trace_id(), threshold) for _ in range(20_000))
        assert 4_400 < kept < 5_600

    def test_ids_made_in_one_millisecond_differ(self) -> None:
        """Trace ids made back to back are all distinct."""
        assert len({new_trace_id() for _ in range(10_000)}) == 10_000


class TestSpanIds:
    def test_consecutive_ids_are_adjacent(self) -> None:
        """Span ids of one process count up, so a batch lands on neighbouring index pages."""
        first, second, third = new_span_id(), new_span_id(), new_span_id()
        assert (second - first) % 2**64 == 1 and (third - second) % 2**64 == 1
        assert len(span_hex(first)) == 16 and first != 0

    def test_a_forked_child_starts_its_own_sequence(self) -> None:
        """After os.fork the child's span ids do not repeat the parent's."""
        script = textwrap.dedent(
            """
            import json, os, sys
            from llmpulse.sdk._context import new_span_id
            new_span_id()
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.write(write, json.dumps([new_span_id() for _ in range(100)]).encode())
                os._exit(0)
            os.close(write)
            child = json.loads(os.read(read, 1 << 16))
            os.waitpid(pid, 0)
            print(json.dumps({"parent": [new_span_id() for _ in range(100)], "child": child}))
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        ids = json.loads(proc.stdout)
        assert not set(ids["parent"]) & set(ids["child"])
