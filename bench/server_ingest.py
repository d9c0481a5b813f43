"""Server ingest: spans/s a real `llmpulse serve` makes queryable, native and OTLP, beside Phoenix.

    python bench/server_ingest.py [--spans 100000] [--senders 4] [--rounds 1]
        [--phoenix-python /work/phoenix-venv/bin/python] [--phoenix-spans 2000]

What runs, all in one sitting on one machine:

* ``llmpulse serve`` as a subprocess (its defaults: one process, SQLite in a temporary
  directory). Its peak resident memory is read from /proc for the server process and its
  children (sampled every 50 ms, and each process's ``VmHWM`` at the end; the larger is kept).
* ``native``: ``POST /api/v1/ingest``, bodies made by the SDK's own HTTP exporter encoder
  (``llmpulse.schema.Span`` fields as JSON, unset ones left out, gzip), in batches of
  ``--native-batch`` (the SDK's default batch, 2000).
* ``otlp``: ``POST /v1/traces``, protobuf ``ExportTraceServiceRequest`` built with the real
  opentelemetry-proto messages, in batches of ``--otlp-batch`` (512, the default of OTel's
  ``BatchSpanProcessor``), uncompressed (the OTLP exporter's default). Spans look like what the
  OpenAI GenAI instrumentation emits: ``gen_ai.operation.name``, ``gen_ai.system``, request and
  response model, usage, finish reasons, response id, server address, the conversation id, the
  prompt and answer in ``gen_ai.input.messages`` / ``gen_ai.output.messages``; one in four spans
  is the application's parent span with a few attributes of its own.
* ``phoenix``: Arize Phoenix (``python -m phoenix.server.main serve``, its SQLite default in a
  temporary working directory) gets the same kind of OTLP protobuf requests at its /v1/traces.
  Phoenix answers before it writes (it queues spans and inserts them in the background), so its
  clock stops when its database holds every span sent. Phoenix lives in its own virtualenv
  (``--phoenix-python`` or ``$PHOENIX_PYTHON``); without it its figures are null, and the
  benchmark says why.

Every body is encoded before the clock starts (the encoding cost per span is printed, so it can
be compared with the server's), and ``--senders`` threads post them over keep-alive
connections with http.client, each waiting for its answer before sending the next: the
clock runs from the first request to the last answer. A span counts once the store holds it:
after the run the benchmark counts the rows in the server's database and fails if any span sent
is missing (llmpulse acknowledges only after the commit, so the count is the answers' count).
The client's own CPU time during each run is printed beside it, to show it is not the limit.

The LAST line printed is one JSON object: ``native_spans_per_s``, ``otlp_spans_per_s``,
``phoenix_otlp_spans_per_s`` (null without Phoenix), ``server_rss_mb`` and more.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import ANSWER, LLM_NAMES, MODELS, PROMPT, PROMPT_VERSIONS  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan  # noqa: E402

from llmpulse.schema import Span  # noqa: E402
from llmpulse.sdk.exporters._wire import encode_body  # noqa: E402

PAGE = 4096
PER_TRACE = 4  # one parent span (the application's) and three LLM calls
START_WAIT_S = 120.0
INPUT_MESSAGES = json.dumps([{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}])
OUTPUT_MESSAGES = json.dumps(
    [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}],
      "finish_reason": "stop"}]
)  # fmt: skip


# -- the spans ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One span of the workload, in neutral terms both encodings are built from."""

    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    start_ns: int
    end_ns: int
    llm: bool
    model: str
    provider: str
    name: str
    prompt_version: str
    input_tokens: int
    output_tokens: int
    session: str
    failed: bool


def workload(n: int, seed: int, t0: float) -> list[Call]:
    """``n`` spans in traces of four (a parent and three LLM calls), about 1 ms apart from
    ``t0``: values drawn from small pools, 2 % of the LLM calls failed."""
    rng = random.Random(seed)
    calls: list[Call] = []
    start = int(t0 * 1e9)
    for i in range(n):
        trace = i // PER_TRACE
        trace_id = (seed << 96 | trace + 1).to_bytes(16, "big")
        root = (seed << 40 | trace * PER_TRACE + 1).to_bytes(8, "big")
        model, provider = MODELS[rng.randrange(len(MODELS))][:2]
        llm = i % PER_TRACE != 0
        begin = start + i * 1_000_000
        latency = int(rng.lognormvariate(-0.4, 0.6) * 1e9)
        calls.append(
            Call(
                trace_id=trace_id,
                span_id=(seed << 40 | i + 1).to_bytes(8, "big"),
                parent_id=root if llm else b"",
                start_ns=begin,
                end_ns=begin + latency,
                llm=llm,
                model=model,
                provider=provider,
                name=LLM_NAMES[rng.randrange(len(LLM_NAMES))] if llm else "answer_ticket",
                prompt_version=PROMPT_VERSIONS[rng.randrange(2)],
                input_tokens=rng.randint(50, 4000),
                output_tokens=rng.randint(10, 800),
                session=f"s{rng.randrange(1000)}",
                failed=llm and rng.random() < 0.02,
            )
        )
    return calls


def native_span(c: Call) -> Span:
    """The span as the application records it (``llmpulse.schema.Span``)."""
    common = {"trace_id": c.trace_id.hex(), "span_id": c.span_id.hex(), "name": c.name,
              "start_time": c.start_ns / 1e9, "end_time": c.end_ns / 1e9,
              "service": "support-bot", "session_id": c.session}  # fmt: skip
    if not c.llm:
        return Span(**common, kind="chain",
                    attributes={"app.route": "/tickets/answer", "app.tenant": "acme"})  # fmt: skip
    span = Span(
        **common, parent_id=c.parent_id.hex(), kind="llm", model=c.model, provider=c.provider,
        prompt_version=c.prompt_version, input_tokens=c.input_tokens,
        output_tokens=c.output_tokens, total_tokens=c.input_tokens + c.output_tokens,
        ttft_ms=(c.end_ns - c.start_ns) / 4e6, input=PROMPT, output=ANSWER,
        attributes={"gen_ai.request.temperature": 0.2, "gen_ai.request.max_tokens": 1024},
    )  # fmt: skip
    if c.failed:
        span.status, span.error_type, span.error_message = "error", "RateLimitError", "429"
    return span


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        kv = KeyValue(key=key)
        kv.value.array_value.values.extend(AnyValue(string_value=v) for v in value)
        return kv
    return KeyValue(key=key, value=AnyValue(string_value=value))


def otlp_span(c: Call) -> PbSpan:
    """The span as the OpenAI GenAI instrumentation (content capture on) and an app emit it."""
    if not c.llm:
        pb = PbSpan(trace_id=c.trace_id, span_id=c.span_id, name=c.name,
                    kind=PbSpan.SPAN_KIND_INTERNAL, start_time_unix_nano=c.start_ns,
                    end_time_unix_nano=c.end_ns)  # fmt: skip
        pb.attributes.extend([
            _kv("app.route", "/tickets/answer"), _kv("app.tenant", "acme"),
            _kv("session.id", c.session),
        ])  # fmt: skip
        return pb
    pb = PbSpan(trace_id=c.trace_id, span_id=c.span_id, parent_span_id=c.parent_id,
                name=f"chat {c.model}", kind=PbSpan.SPAN_KIND_CLIENT,
                start_time_unix_nano=c.start_ns, end_time_unix_nano=c.end_ns)  # fmt: skip
    attributes = [
        ("gen_ai.operation.name", "chat"), ("gen_ai.system", c.provider),
        ("gen_ai.request.model", c.model), ("gen_ai.request.temperature", 0.2),
        ("gen_ai.request.max_tokens", 1024), ("gen_ai.response.model", c.model),
        ("gen_ai.response.id", f"chatcmpl-{c.span_id.hex()}"),
        ("gen_ai.response.finish_reasons", ["stop"]),
        ("gen_ai.usage.input_tokens", c.input_tokens),
        ("gen_ai.usage.output_tokens", c.output_tokens),
        ("gen_ai.conversation.id", c.session), ("gen_ai.prompt.version", c.prompt_version),
        ("server.address", "api.openai.com"), ("server.port", 443),
        ("gen_ai.input.messages", INPUT_MESSAGES), ("gen_ai.output.messages", OUTPUT_MESSAGES),
    ]  # fmt: skip
    if c.failed:
        attributes.append(("error.type", "RateLimitError"))
        pb.status.code = 2
        pb.status.message = "429 from provider"
    pb.attributes.extend(_kv(k, v) for k, v in attributes)
    return pb


def otlp_request(calls: list[Call]) -> ExportTraceServiceRequest:
    """One export request: one resource, one instrumentation scope, as the SDK groups them."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend([
        _kv("service.name", "support-bot"), _kv("telemetry.sdk.language", "python"),
        _kv("telemetry.sdk.name", "opentelemetry"), _kv("telemetry.sdk.version", "1.38.0"),
        _kv("deployment.environment", "bench"),
    ])  # fmt: skip
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "opentelemetry.instrumentation.openai_v2"
    scope_spans.scope.version = "2.1b0"
    scope_spans.spans.extend(otlp_span(c) for c in calls)
    return request


def _chunks(items: list[Call], size: int) -> Iterator[list[Call]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass(slots=True)
class Payloads:
    """Encoded request bodies and what encoding them cost the client."""

    bodies: list[bytes]
    spans: int
    encode_s: float

    @property
    def encode_us_per_span(self) -> float:
        return self.encode_s / max(self.spans, 1) * 1e6


def native_payloads(calls: list[Call], batch: int) -> Payloads:
    """Bodies as the SDK's HTTP exporter encodes them (its own encoder: JSON without unset
    fields, gzip), timed from the recorded spans to the bytes."""
    t0 = time.perf_counter()
    bodies = []
    for chunk in _chunks(calls, batch):
        body, invalid = encode_body([native_span(c) for c in chunk], len(chunk))
        assert invalid == 0
        bodies.append(body.encode())
    return Payloads(bodies, len(calls), time.perf_counter() - t0)


def otlp_payloads(calls: list[Call], batch: int) -> Payloads:
    """Protobuf bodies, timed from the spans to the bytes."""
    t0 = time.perf_counter()
    bodies = [otlp_request(chunk).SerializeToString() for chunk in _chunks(calls, batch)]
    return Payloads(bodies, len(calls), time.perf_counter() - t0)


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def cpu_seconds(root: int) -> float:
    """User + system CPU time of ``root`` and its descendants so far, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _tree(root):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _status_kb(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssWatch:
    """Peak resident memory of a process tree: sampled sums, and each process's high-water mark."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid = pid
        self.every = every
        self.peak_kb = 0
        self.hwm_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        total = 0
        for pid in _tree(self.pid):
            total += _status_kb(pid, "VmRSS")
            hwm = _status_kb(pid, "VmHWM")
            if hwm:
                self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
        self.peak_kb = max(self.peak_kb, total)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def stop(self) -> float:
        """Stop sampling (call before the process exits); the peak in MB."""
        self._sample()
        self._stop.set()
        self._thread.join()
        return max(self.peak_kb, sum(self.hwm_kb.values())) / 1024


def _wait_http(proc: subprocess.Popen[bytes], port: int, path: str, log: Path) -> None:
    deadline = time.monotonic() + START_WAIT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"not answering on {path} after {START_WAIT_S:.0f} s")
        time.sleep(0.2)


@contextmanager
def running(
    argv: list[str], env: dict[str, str], cwd: Path, port: int, ready_path: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A server subprocess (own session, log in ``cwd``), stopped with SIGTERM then SIGKILL."""
    log = cwd / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        _wait_http(proc, port, ready_path, log)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


# -- sending ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Sent:
    """What one run sent and got back."""

    seconds: float
    requests: int
    spans: int
    client_cpu_s: float
    failures: list[str] = field(default_factory=list)


def send_all(
    port: int,
    path: str,
    bodies: list[bytes],
    headers: dict[str, str],
    senders: int,
    check: Callable[[int, bytes], str | None],
    spans: int,
) -> Sent:
    """Post every body from ``senders`` threads over keep-alive connections; each thread waits
    for an answer before its next request. ``check(status, body)`` returns a failure or None."""
    work: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    for _ in range(senders):
        work.put(None)
    failures: list[str] = []
    start = threading.Barrier(senders + 1)

    def sender() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        start.wait()
        try:
            while (body := work.get()) is not None:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                why = check(response.status, response.read())
                if why:
                    failures.append(why)
        except OSError as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    cpu0 = time.process_time()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return Sent(elapsed, len(bodies), spans, time.process_time() - cpu0, failures)


def native_check(status: int, body: bytes) -> str | None:
    if status != 200:
        return f"native: HTTP {status}: {body[:300]!r}"
    answer = json.loads(body)
    if answer.get("rejected") or answer.get("duplicates"):
        return f"native: not all stored: {answer}"
    return None


def otlp_check(status: int, body: bytes) -> str | None:
    if status != 200:
        return f"otlp: HTTP {status}: {body[:300]!r}"
    answer = ExportTraceServiceResponse.FromString(body)
    if answer.partial_success.rejected_spans:
        return (
            f"otlp: rejected {answer.partial_success.rejected_spans}: "
            + (answer.partial_success.error_message[:300])
        )
    return None


def count_rows(db: Path, sql: str) -> int:
    """Rows in a SQLite database another process writes (read-only, waits out its locks)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


# -- llmpulse -----------------------------------------------------------------------------------

NATIVE_HEADERS = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
OTLP_HEADERS = {"Content-Type": "application/x-protobuf"}


def _serve_argv(port: int, db: Path) -> list[str]:
    script = Path(sys.executable).with_name("llmpulse")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "llmpulse"]
    return [*head, "serve", "--port", str(port), "--database-url", f"sqlite:///{db}"]


@dataclass(slots=True)
class Measured:
    """Spans/s of each path, the server's peak RSS and what the client spent."""

    rates: dict[str, float] = field(default_factory=dict)
    client_cpu: dict[str, float] = field(default_factory=dict)
    server_cpu_us: dict[str, float] = field(default_factory=dict)  # server CPU per span
    rss_mb: float | None = None


def _run_phase(
    label: str, port: int, path: str, payloads: Payloads, headers: dict[str, str],
    senders: int, check: Callable[[int, bytes], str | None],
) -> Sent:  # fmt: skip
    sent = send_all(port, path, payloads.bodies, headers, senders, check, payloads.spans)
    if sent.failures:
        raise SystemExit(f"{label}: {len(sent.failures)} request(s) failed, first: "
                         f"{sent.failures[0]}")  # fmt: skip
    return sent


def bench_llmpulse(
    native: Payloads, otlp: Payloads, warm: Payloads, senders: int, server: list[str]
) -> Measured:
    """Native then OTLP ingest against one `llmpulse serve` on a fresh SQLite database."""
    out = Measured()
    with tempfile.TemporaryDirectory(prefix="llmpulse-bench-") as tmp:
        db = Path(tmp) / "llmpulse.db"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMPULSE_")}
        env.update(setting.split("=", 1) for setting in server)  # type: ignore[misc]
        with running(_serve_argv(port, db), env, Path(tmp), port, "/api/v1/health") as proc:
            watch = RssWatch(proc.pid)
            try:
                # One small request per path first: imports and the first connections are
                # start-up, not ingest.
                _run_phase("warm-up", port, "/v1/traces", warm, OTLP_HEADERS, 1, otlp_check)
                expected = warm.spans
                for label, path, payloads, headers, check in (
                    ("native", "/api/v1/ingest", native, NATIVE_HEADERS, native_check),
                    ("otlp", "/v1/traces", otlp, OTLP_HEADERS, otlp_check),
                ):
                    cpu0 = cpu_seconds(proc.pid)
                    sent = _run_phase(label, port, path, payloads, headers, senders, check)
                    out.server_cpu_us[label] = (cpu_seconds(proc.pid) - cpu0) / sent.spans * 1e6
                    expected += payloads.spans
                    stored = count_rows(db, "SELECT count(*) FROM spans")
                    if stored != expected:
                        raise SystemExit(f"{label}: {stored} spans stored, {expected} expected")
                    out.rates[label] = sent.spans / sent.seconds
                    out.client_cpu[label] = sent.client_cpu_s / sent.seconds
                    print(f"llmpulse {label:<7}{out.rates[label]:>10,.0f} spans/s  "
                          f"({sent.requests} requests in {sent.seconds:.2f} s; server CPU "
                          f"{out.server_cpu_us[label]:.1f} µs/span; client CPU "
                          f"{out.client_cpu[label]:.0%} of one core)")  # fmt: skip
            finally:
                out.rss_mb = watch.stop()
        print(f"llmpulse peak RSS {out.rss_mb:.1f} MB (server process and children)")
    return out


# -- Phoenix ------------------------------------------------------------------------------------


def phoenix_python(arg: str | None) -> tuple[str | None, str]:
    """The Python of a virtualenv with arize-phoenix, or None and why not."""
    path = arg or os.environ.get("PHOENIX_PYTHON")
    if not path:
        return None, "no --phoenix-python (or $PHOENIX_PYTHON) given"
    if not Path(path).exists():
        return None, f"{path} does not exist"
    probe = subprocess.run([path, "-c", "import phoenix; print(phoenix.__version__)"],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    if probe.returncode != 0:
        return None, f"{path} cannot import phoenix: {probe.stderr.strip().splitlines()[-1:]}"
    return path, probe.stdout.strip()


def bench_phoenix(
    python: str, otlp: Payloads, warm: Payloads, senders: int, wait_s: float
) -> Measured:
    """The same OTLP requests to Phoenix; the clock stops when its database holds them all."""
    out = Measured()
    with tempfile.TemporaryDirectory(prefix="phoenix-bench-") as tmp:
        port, grpc_port = free_port(), free_port()
        env = {**os.environ, "PHOENIX_WORKING_DIR": tmp, "PHOENIX_PORT": str(port),
               "PHOENIX_GRPC_PORT": str(grpc_port), "PHOENIX_HOST": "127.0.0.1",
               "PHOENIX_TELEMETRY_ENABLED": "false"}  # fmt: skip
        env = {k: v for k, v in env.items() if not k.startswith("LLMPULSE_")}
        argv = [python, "-m", "phoenix.server.main", "serve"]
        db = Path(tmp) / "phoenix.db"
        with running(argv, env, Path(tmp), port, "/healthz") as proc:
            watch = RssWatch(proc.pid)
            try:
                _run_phase("phoenix warm-up", port, "/v1/traces", warm, OTLP_HEADERS, 1,
                           _phoenix_check)  # fmt: skip
                _wait_rows(db, warm.spans, wait_s)
                cpu0 = cpu_seconds(proc.pid)
                t0 = time.perf_counter()
                sent = _run_phase("phoenix", port, "/v1/traces", otlp, OTLP_HEADERS, senders,
                                  _phoenix_check)  # fmt: skip
                answered = time.perf_counter() - t0
                stored = _wait_rows(db, warm.spans + otlp.spans, wait_s)
                elapsed = time.perf_counter() - t0
                done = stored - warm.spans
                out.server_cpu_us["otlp"] = (cpu_seconds(proc.pid) - cpu0) / max(done, 1) * 1e6
                out.rates["otlp"] = done / elapsed
                out.client_cpu["otlp"] = sent.client_cpu_s / sent.seconds
                print(f"phoenix  otlp   {out.rates['otlp']:>10,.1f} spans/s  ({done} of "
                      f"{otlp.spans} stored {elapsed:.1f} s after the first request; all "
                      f"answered after {answered:.1f} s; server CPU "
                      f"{out.server_cpu_us['otlp']:,.0f} µs/span)")  # fmt: skip
                if done < otlp.spans:
                    print(f"phoenix: only {done} of {otlp.spans} spans stored after waiting "
                          f"{wait_s:.0f} s; the rate counts those")  # fmt: skip
            finally:
                out.rss_mb = watch.stop()
        print(f"phoenix  peak RSS {out.rss_mb:.1f} MB (server process and children)")
    return out


def _phoenix_check(status: int, body: bytes) -> str | None:
    return None if status == 200 else f"phoenix: HTTP {status}: {body[:300]!r}"


def _wait_rows(db: Path, expected: int, wait_s: float) -> int:
    """Poll Phoenix's spans table until it holds ``expected`` rows or ``wait_s`` passed."""
    deadline = time.monotonic() + wait_s
    stored = 0
    while True:
        try:
            stored = count_rows(db, "SELECT count(*) FROM spans")
        except sqlite3.Error:
            stored = 0  # not created yet
        if stored >= expected or time.monotonic() > deadline:
            return stored
        time.sleep(0.05)


# -- main ---------------------------------------------------------------------------------------


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000, help="spans per path (native, otlp)")
    parser.add_argument("--senders", type=int, default=4, help="concurrent client connections")
    parser.add_argument("--native-batch", type=int, default=2000)
    parser.add_argument("--otlp-batch", type=int, default=512)
    parser.add_argument("--server-env", action="append", default=[], metavar="LLMPULSE_X=V",
                        help="a server setting, e.g. LLMPULSE_WORKERS=2 (default: none)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1, help="llmpulse runs; the best is kept")
    parser.add_argument("--phoenix-python", default=None,
                        help="python of a virtualenv with arize-phoenix (or $PHOENIX_PYTHON)")  # fmt: skip
    parser.add_argument("--no-phoenix", action="store_true", help="llmpulse only (CI's smoke run)")
    parser.add_argument("--phoenix-spans", type=int, default=2048)
    parser.add_argument("--phoenix-wait", type=float, default=300.0,
                        help="seconds to wait for Phoenix to store what it was sent")  # fmt: skip
    args = parser.parse_args()

    t0 = time.time() - 600
    warm = otlp_payloads(workload(64, 9, t0), 64)
    native = native_payloads(workload(args.spans, 1, t0), args.native_batch)
    otlp = otlp_payloads(workload(args.spans, 2, t0), args.otlp_batch)
    cores = os.cpu_count()
    print(f"{args.spans:,} spans per path, {args.senders} senders; native batches of "
          f"{args.native_batch} (JSON, gzip), OTLP batches of {args.otlp_batch} (protobuf); "
          f"{cores} cores, load {_load()}")  # fmt: skip
    print(f"client encoding: native {native.encode_us_per_span:.1f} µs/span "
          f"({sum(map(len, native.bodies)) / native.spans:.0f} B/span gzip), otlp "
          f"{otlp.encode_us_per_span:.1f} µs/span "
          f"({sum(map(len, otlp.bodies)) / otlp.spans:.0f} B/span)")  # fmt: skip

    if args.server_env:
        print(f"server settings: {' '.join(args.server_env)}")
    runs = [
        bench_llmpulse(native, otlp, warm, args.senders, args.server_env)
        for _ in range(args.rounds)
    ]
    best = {k: max(r.rates[k] for r in runs) for k in ("native", "otlp")}
    rss = max(r.rss_mb or 0.0 for r in runs)

    python, why = (None, "--no-phoenix") if args.no_phoenix else phoenix_python(args.phoenix_python)
    phoenix: Measured | None = None
    if python is None:
        print(f"phoenix: not run ({why}); its figures are null")
    else:
        print(f"phoenix {why}: {args.phoenix_spans:,} spans in OTLP batches of {args.otlp_batch}")
        small = otlp_payloads(workload(args.phoenix_spans, 3, t0), args.otlp_batch)
        phoenix = bench_phoenix(python, small, warm, args.senders, args.phoenix_wait)
    ph_rate = phoenix.rates.get("otlp") if phoenix else None
    print(f"load after the runs {_load()}")

    out: dict[str, Any] = {
        "native_spans_per_s": best["native"],
        "otlp_spans_per_s": best["otlp"],
        "phoenix_otlp_spans_per_s": ph_rate,
        "server_rss_mb": rss,
        "phoenix_rss_mb": phoenix.rss_mb if phoenix else None,
        "otlp_vs_phoenix": best["otlp"] / ph_rate if ph_rate else None,
        "native_runs": [r.rates["native"] for r in runs],
        "otlp_runs": [r.rates["otlp"] for r in runs],
        "server_cpu_us_per_span_native": min(r.server_cpu_us["native"] for r in runs),
        "server_cpu_us_per_span_otlp": min(r.server_cpu_us["otlp"] for r in runs),
        "phoenix_cpu_us_per_span": phoenix.server_cpu_us.get("otlp") if phoenix else None,
        "client_encode_us_per_span_native": native.encode_us_per_span,
        "client_encode_us_per_span_otlp": otlp.encode_us_per_span,
        "client_cpu_share_native": max(r.client_cpu["native"] for r in runs),
        "client_cpu_share_otlp": max(r.client_cpu["otlp"] for r in runs),
        "server_settings": args.server_env,
        "spans": args.spans,
        "senders": args.senders,
        "native_batch": args.native_batch,
        "otlp_batch": args.otlp_batch,
        "phoenix_spans": args.phoenix_spans if phoenix else None,
        "load_1m": os.getloadavg()[0],
        "cores": cores,
    }
    print(json.dumps({k: _rounded(v) for k, v in out.items()}))


def _rounded(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 2)
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    return v


if __name__ == "__main__":
    main()
