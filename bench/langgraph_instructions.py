"""What the LangChain/LangGraph handler adds, counted in instructions instead of seconds.

``langgraph_overhead.py`` times the same variants on the wall clock; on a shared machine its
ratios move by several points between runs, more than the changes being measured. This runs
each variant (the same 20-node graph and 10-runnable chain, the same floors and peer) in its
own process under valgrind's callgrind, which counts the instructions executed by every thread
(the export thread's conversion included), whatever else the machine is doing: the same build
and inputs give the same count to within a fraction of a percent.

Instructions are not time: a cache miss costs more than an add, and the cyclic garbage
collector's full passes (tens of milliseconds, every few thousand nodes) rarely fall inside a
short counted run. The wall-clock bench stays the measure of record; this one says, without
noise, whether a change made the handler cheaper and by how much.

Each child imports everything, runs its variant ``--warmup`` times, flushes, collects garbage,
then turns counting on (``callgrind_control``), runs ``--runs`` times and flushes inside the
count. Needs valgrind (Debian package ``valgrind``).

Run: python bench/langgraph_instructions.py [--runs 20] [--jobs 2]
Last line: one JSON object with the instructions per run of each variant and the ratios to
plain: ``overhead_ratio`` (the graph) and ``chain_overhead_ratio``, the floors' beside them.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

VARIANTS = ("plain", "noop", "span", "llmpulse", "peer")
KINDS = ("graph", "chain")


def child(variant: str, kind: str, runs: int, warmup: int, nodes: int, steps: int) -> None:
    """Run one variant, counting only its measured runs (called under callgrind)."""
    import langgraph_overhead as bench

    import llmpulse
    from llmpulse.sdk.instrumentation.langchain import CallbackHandler

    llmpulse.init(exporter=bench.DiscardingExporter(), instrument=(), queue_size=1_000_000)
    configs = {
        "plain": None,
        "noop": {"callbacks": [bench.NoopHandler()]},
        "span": {"callbacks": [bench.BareSpanHandler()]},
        "llmpulse": {"callbacks": [CallbackHandler()]},
        "peer": {"callbacks": [bench.DiscardingTracer()]},
    }
    runnable = bench.build_graph(nodes) if kind == "graph" else bench.build_chain(steps)
    payload = {"n": 0} if kind == "graph" else 0
    config = configs[variant]
    for _ in range(warmup):
        runnable.invoke(payload, config=config)
    llmpulse.flush(60)
    gc.collect()
    toggle = ["callgrind_control", "--instr"]
    subprocess.run([*toggle, "on", str(os.getpid())], check=True, capture_output=True)
    for _ in range(runs):
        runnable.invoke(payload, config=config)
    llmpulse.flush(60)
    subprocess.run([*toggle, "off", str(os.getpid())], check=True, capture_output=True)
    llmpulse.shutdown()


def count(variant: str, kind: str, args: argparse.Namespace, out_dir: str) -> int:
    """Instructions executed by ``variant``'s measured runs of ``kind``."""
    cmd = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={out_dir}/{kind}.{variant}.out",
        sys.executable, __file__, "--child", variant, "--kind", kind,
        "--runs", str(args.runs), "--warmup", str(args.warmup),
        "--nodes", str(args.nodes), "--steps", str(args.steps),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{kind} {variant} under callgrind failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="counted runs per variant")
    parser.add_argument("--warmup", type=int, default=20, help="uncounted runs first")
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2, help="variants counted at once")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=KINDS, default="graph", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.kind, args.runs, args.warmup, args.nodes, args.steps)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("needs valgrind: apt-get install valgrind")

    jobs = [(kind, variant) for kind in KINDS for variant in VARIANTS]
    counts: dict[tuple[str, str], int] = {}
    with (
        tempfile.TemporaryDirectory() as out_dir,
        concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool,
    ):
        futures = {pool.submit(count, v, k, args, out_dir): (k, v) for k, v in jobs}
        for future in concurrent.futures.as_completed(futures):
            counts[futures[future]] = future.result()
            print(f"counted {' '.join(futures[future])}", file=sys.stderr, flush=True)

    units = {"graph": args.nodes, "chain": args.steps + 1}  # a chain's runs: its steps and itself
    summary: dict[str, float] = {}
    for kind in KINDS:
        plain = counts[(kind, "plain")]
        parts = [f"plain {plain / args.runs / 1e6:.2f}M per run"]
        prefix = "" if kind == "graph" else "chain_"
        unit = "node" if kind == "graph" else "runnable run"
        for variant, label in (("llmpulse", "llmpulse"), ("noop", "floor: no-op handler"),
                               ("span", "floor: bare span per run"), ("peer", "peer BaseTracer")):  # fmt: skip
            n = counts[(kind, variant)]
            ratio = round(n / plain, 3)
            added = (n - plain) / args.runs / units[kind]
            parts.append(f"{label} {ratio:.3f}x (+{added / 1e3:.1f}k per {unit})")
            key = {"llmpulse": "overhead", "noop": "floor_noop", "span": "floor_span"}.get(
                variant, "peer"
            )
            summary[f"{prefix}{key}_ratio"] = ratio
        summary[f"{prefix}plain_instructions_per_run"] = round(plain / args.runs)
        summary[f"{prefix}added_instructions_per_unit"] = round(
            (counts[(kind, "llmpulse")] - plain) / args.runs / units[kind]
        )
        print(f"{kind} (instructions): " + "; ".join(parts))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
