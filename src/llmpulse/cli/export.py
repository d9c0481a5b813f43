"""``llmpulse export``: stream spans to CSV, JSON lines or Parquet, in bounded memory."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import fields
from typing import IO, Annotated, Any, Optional

import typer

from llmpulse.cli._options import ApiKey, DatabaseUrl, ServerUrl

__all__ = ["EXPORT_COLUMNS", "register", "span_dict", "write_spans"]

_Text = Optional[str]  # noqa: UP045 - typer reads annotations at runtime (Python 3.10 too)
_JSON_FIELDS = ("attributes", "events")
_INT_FIELDS = (
    "input_tokens", "output_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens",
    "reasoning_tokens",
)  # fmt: skip
_FLOAT_FIELDS = ("start_time", "end_time", "latency_ms", "cost_usd", "ttft_ms")
_PARQUET_ROW_GROUP = 10_000


def _columns() -> tuple[str, ...]:
    from llmpulse.schema import Span

    names = [f.name for f in fields(Span)]
    names.insert(names.index("end_time") + 1, "latency_ms")
    return tuple(names)


# Every span field, plus latency_ms after end_time; the header of every format.
EXPORT_COLUMNS = _columns()


class Format(str, enum.Enum):
    """Output format."""

    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"


def span_dict(span: Any) -> dict[str, Any]:
    """A span as a flat dict in ``EXPORT_COLUMNS`` order (attributes and events as objects)."""
    out = {name: getattr(span, name) for name in EXPORT_COLUMNS}
    out["events"] = [
        {"name": e.name, "time": e.time, "attributes": e.attributes} for e in span.events
    ]
    return out


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def _write_csv(spans: Iterable[Any], out: IO[str], advance: Any) -> int:
    import csv

    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    n = 0
    for span in spans:
        row = span_dict(span)
        for name in _JSON_FIELDS:
            row[name] = _json(row[name])
        writer.writerow(["" if v is None else v for v in row.values()])
        n += 1
        advance()
    return n


def _write_jsonl(spans: Iterable[Any], out: IO[str], advance: Any) -> int:
    n = 0
    for span in spans:
        out.write(_json(span_dict(span)) + "\n")
        n += 1
        advance()
    return n


def _parquet_schema(pa: Any) -> Any:
    types = {name: pa.string() for name in EXPORT_COLUMNS}
    types.update(dict.fromkeys(_INT_FIELDS, pa.int64()))
    types.update(dict.fromkeys(_FLOAT_FIELDS, pa.float64()))
    return pa.schema([(name, types[name]) for name in EXPORT_COLUMNS])


def _chunks(spans: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for span in spans:
        chunk.append(span)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _write_parquet(spans: Iterable[Any], path: str, advance: Any) -> int:
    """One row group per ``_PARQUET_ROW_GROUP`` spans: memory holds one group, never the file."""
    import importlib

    pa = importlib.import_module("pyarrow")
    pq = importlib.import_module("pyarrow.parquet")
    schema = _parquet_schema(pa)
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        for chunk in _chunks(spans, _PARQUET_ROW_GROUP):
            rows = [span_dict(s) for s in chunk]
            columns = {
                name: [_json(r[name]) for r in rows]
                if name in _JSON_FIELDS
                else [r[name] for r in rows]
                for name in EXPORT_COLUMNS
            }
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))
            n += len(chunk)
            for _ in chunk:
                advance()
    return n


def write_spans(spans: Iterable[Any], fmt: str, out: IO[str] | str, advance: Any = None) -> int:
    """Write ``spans`` as ``fmt`` (csv, jsonl, parquet) to a text stream (or, for parquet, a
    path); ``advance()`` is called once per span. Returns how many spans were written."""
    step = advance or (lambda: None)
    if fmt == "parquet":
        if not isinstance(out, str):
            raise ValueError("parquet is binary: give a file path")
        return _write_parquet(spans, out, step)
    if isinstance(out, str):
        raise ValueError(f"{fmt} is written to a text stream")
    return (_write_csv if fmt == "csv" else _write_jsonl)(spans, out, step)


def _require_pyarrow() -> None:
    import importlib

    try:
        importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise ValueError(
            "--format parquet needs pyarrow, which is not installed: "
            "pip install 'llmpulse[parquet]' (or pip install pyarrow)"
        ) from None


def export(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="csv, jsonl (one JSON object per line) or parquet (needs the `parquet` extra).")] = Format.jsonl,
    output: Annotated[_Text, typer.Option("--output", "-o", help="File to write (replaced if it exists). Default: standard output (csv and jsonl only).")] = None,
    window: str = typer.Option("24h", "--window", "-w", help="Spans started in the last WINDOW: 30m, 6h, 7d, 52w."),
    until: Annotated[_Text, typer.Option("--until", help="End of the window (ISO time, UTC if no zone, or Unix seconds). Default: now.")] = None,
    model: Annotated[_Text, typer.Option("--model", help="Only spans of this model.")] = None,
    status: Annotated[_Text, typer.Option("--status", help="Only spans of this status (ok, error).")] = None,
    name: Annotated[_Text, typer.Option("--name", help="Only spans of this name.")] = None,
    kind: Annotated[_Text, typer.Option("--kind", help="Only spans of this kind (llm, chain, tool, ...).")] = None,
    session: Annotated[_Text, typer.Option("--session", help="Only spans of this session id.")] = None,
    user: Annotated[_Text, typer.Option("--user", help="Only spans of this user id.")] = None,
    service: Annotated[_Text, typer.Option("--service", help="Only spans of this service.")] = None,
    trace: Annotated[_Text, typer.Option("--trace", help="Only spans of this trace id.")] = None,
    page_size: int = typer.Option(1000, "--page-size", min=1, max=100_000, help="Spans read per query; memory use follows it, not the number of spans."),
    database_url: DatabaseUrl = None,
    server_url: ServerUrl = None,
    api_key: ApiKey = None,
) -> None:  # fmt: skip
    """Export recorded spans (every field, oldest first) as CSV, JSON lines or Parquet.

    Streams any number of spans in bounded memory: spans are read in pages of --page-size by
    keyset queries and written as they arrive; a progress bar shows on a terminal. Example,
    last week's gpt-4o calls to a CSV file:

        llmpulse export --format csv --window 7d --model gpt-4o --output spans.csv
    """
    from llmpulse.cli._options import fail, parse_until, parse_window, run_or_exit, span_filters
    from llmpulse.cli._source import open_source

    filters = span_filters(
        model=model, status=status, name=name, kind=kind, session_id=session, user_id=user,
        service=service, trace_id=trace,
    )  # fmt: skip
    if fmt is Format.parquet:
        if output is None:
            raise fail("--format parquet writes a binary file: give --output FILE.parquet")
        run_or_exit(_require_pyarrow)

    def prepare() -> tuple[Any, float, float, int]:
        seconds = parse_window("--window", window)
        end = parse_until(until)
        source = open_source(database_url, server_url, api_key, "llmpulse export")
        try:
            return source, end - seconds, end, source.count_spans(end - seconds, end, filters)
        except BaseException:
            source.close()
            raise

    source, start, end, total = run_or_exit(prepare)
    try:
        written = run_or_exit(
            lambda: _stream(source, start, end, filters, fmt.value, output, total, page_size)
        )
    finally:
        source.close()
    where = output or "standard output"
    typer.echo(f"exported {written:,} span(s) from {source.label} to {where}", err=True)


def _stream(
    source: Any,
    start: float,
    end: float,
    filters: dict[str, str],
    fmt: str,
    output: str | None,
    total: int,
    page_size: int,
) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    spans = source.iter_spans(start, end, page_size, filters)
    with Progress(
        TextColumn(f"exporting {fmt}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("spans", total=total)

        def advance() -> None:
            bar.advance(task)

        if fmt == "parquet":
            assert output is not None
            return write_spans(spans, fmt, output, advance)
        if output is None:
            return write_spans(spans, fmt, sys.stdout, advance)
        with open(output, "w", encoding="utf-8", newline="") as out:
            return write_spans(spans, fmt, out, advance)


def register(app: typer.Typer) -> None:
    """Add ``export`` to the app."""
    app.command("export")(export)
