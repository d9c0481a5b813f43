"""``llmpulse stats``, ``traces`` and ``export`` over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import sys
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmpulse.cli.main import app
from llmpulse.schema import BRANCH_ATTRIBUTE, SpanEvent
from llmpulse.store import Store
from tests.unit.store.conftest import T0, make_span

UNTIL = str(T0 + 3600)


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def _spans() -> list:  # type: ignore[type-arg]
    """Two traces: a ticket (chain → two llm calls, one failing; a branch) and a lone call."""
    return [
        make_span(T0 + 10, trace_id="t1", span_id="root", name="ticket", kind="chain",
                  model=None, provider=None, input_tokens=None, output_tokens=None,
                  cost_usd=None, latency_ms=900.0, service="web", session_id="s1"),
        make_span(T0 + 11, trace_id="t1", span_id="c1", parent_id="root", name="chat gpt-4o",
                  model="gpt-4o", prompt_version="v2", input_tokens=100, output_tokens=50,
                  cost_usd=0.75, service="web", session_id="s1", input="Where is my order?",
                  events=[SpanEvent(name="retry", time=T0 + 11.1, attributes={"n": 1})]),
        make_span(T0 + 12, trace_id="t1", span_id="c2", parent_id="root", name="chat gpt-4o",
                  model="gpt-4o", prompt_version="v2", status="error", error_type="RateLimitError",
                  error_message="slow down", input_tokens=None, output_tokens=None,
                  cost_usd=None, service="web", session_id="s1"),
        make_span(T0 + 13, trace_id="t1", span_id="b1", parent_id="root", name="route",
                  kind="branch", model=None, input_tokens=None, output_tokens=None, cost_usd=None,
                  attributes={BRANCH_ATTRIBUTE: "human"}, service="web", session_id="s1"),
        make_span(T0 + 14, trace_id="t1", span_id="lost", parent_id="gone", name="late",
                  kind="tool", model=None, input_tokens=None, output_tokens=None, cost_usd=None),
        make_span(T0 + 20, trace_id="t2", span_id="solo", name="chat gpt-4o-mini",
                  model="gpt-4o-mini", prompt_version="v1", input_tokens=10, output_tokens=5,
                  cost_usd=0.25, service="batch", user_id="u7"),
    ]  # fmt: skip


@pytest.fixture
def url(database_url: str) -> str:
    with Store.open(database_url) as store:
        store.write(spans=_spans())
    return database_url


# -- stats ---------------------------------------------------------------------------------


def test_stats_by_model_counts_llm_calls_with_tokens_and_cost(url: str) -> None:
    result = _run("stats", "--database-url", url, "--until", UNTIL, "--window", "2h", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in json.loads(result.output)["rows"]}
    assert set(rows) == {"gpt-4o", "gpt-4o-mini"}  # llm spans only by default
    gpt4o = rows["gpt-4o"]
    assert (gpt4o["calls"], gpt4o["errors"], gpt4o["input_tokens"]) == (2, 1, 100)
    assert gpt4o["cost_usd"] == pytest.approx(0.75)
    assert gpt4o["p50_latency_ms"] is not None


@pytest.mark.parametrize(
    ("by", "key", "expected"),
    [
        ("prompt", "prompt", {"v2": 2, "v1": 1}),
        ("name", "name", {"ticket": 1, "chat gpt-4o": 2, "route": 1, "late": 1, "chat gpt-4o-mini": 1}),
        ("service", "service", {"web": 4, "batch": 1, None: 1}),
    ],
)  # fmt: skip
def test_stats_by_prompt_name_and_service(url: str, by: str, key: str, expected: dict) -> None:  # type: ignore[type-arg]
    result = _run("stats", "--database-url", url, "--until", UNTIL, "--by", by, "--json")
    assert result.exit_code == 0, result.output
    assert {r[key]: r["calls"] for r in json.loads(result.output)["rows"]} == expected


def test_stats_table_shows_each_model_and_the_total_cost(url: str) -> None:
    result = _run("stats", "--database-url", url, "--until", UNTIL)
    assert result.exit_code == 0, result.output
    assert "gpt-4o-mini" in result.output and "Per model" in result.output
    assert "$1.0000 (2 priced)" in result.output  # 3 calls, the failed one has no price


def test_stats_kind_all_and_an_empty_window(url: str) -> None:
    result = _run("stats", "--database-url", url, "--until", UNTIL, "--kind", "all", "--json")
    assert sum(r["calls"] for r in json.loads(result.output)["rows"]) == 6
    empty = _run("stats", "--database-url", url, "--until", str(T0 - 86400), "--window", "1h")
    assert empty.exit_code == 0 and "No spans in this window" in empty.output


def test_a_bad_window_names_the_option_and_how_to_write_it(url: str) -> None:
    for command in (["stats"], ["traces", "list"], ["export"]):
        result = _run(*command, "--database-url", url, "--window", "-5h")
        assert result.exit_code == 1
        assert "--window '-5h' is not a duration" in result.output
        assert "like 30m, 6h or 7d" in result.output and "minus sign" in result.output


def test_reading_a_missing_sqlite_file_says_so_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    for command in (["stats"], ["traces", "list"], ["traces", "show", "x"], ["export"]):
        result = _run(*command, "--database-url", f"sqlite:///{path}")
        assert result.exit_code == 1, command
        assert "does not exist" in result.output
    assert not path.exists()


def test_reading_a_database_without_llmpulse_tables_says_so_and_how_to_fix(
    database_url: str,
) -> None:
    """An existing database that is not an llmpulse one (an empty PostgreSQL schema, a SQLite
    file of another program): one line saying so, not an internal method name."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE other_app (x INTEGER)"))
    engine.dispose()
    commands = (["stats"], ["check"], ["traces", "list"], ["export"])
    for command in commands:
        result = _run(*command, "--database-url", database_url, "--until", UNTIL)
        assert result.exit_code in (1, 2), (command, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, (command, result.output)
        assert "has no llmpulse tables" in lines[0], (command, result.output)
        assert lines[0].count("llmpulse db upgrade") == 1, (command, result.output)
        assert "failed" not in lines[0], (command, result.output)


# -- traces --------------------------------------------------------------------------------


def test_traces_list_newest_first_and_filtered_by_any_span(url: str) -> None:
    result = _run("traces", "list", "--database-url", url, "--until", UNTIL, "--json")
    assert result.exit_code == 0, result.output
    traces = [json.loads(line) for line in result.output.splitlines()]
    assert [t["trace_id"] for t in traces] == ["t2", "t1"]
    t1 = traces[1]
    assert (t1["name"], t1["spans"], t1["errors"], t1["input_tokens"]) == ("ticket", 5, 1, 100)
    for flags, expected in (
        (["--status", "error"], ["t1"]),
        (["--model", "gpt-4o-mini"], ["t2"]),
        (["--session", "s1"], ["t1"]),
        (["--user", "u7"], ["t2"]),
        (["--name", "route"], ["t1"]),
        (["--limit", "1"], ["t2"]),
    ):
        out = _run("traces", "list", "--database-url", url, "--until", UNTIL, "--json", *flags)
        assert [json.loads(x)["trace_id"] for x in out.output.splitlines()] == expected, flags
    table = _run("traces", "list", "--database-url", url, "--until", UNTIL)
    assert "ticket" in table.output and "llmpulse traces show ID" in table.output


def test_traces_show_draws_the_tree_with_errors_branch_and_orphans(url: str) -> None:
    result = _run("traces", "show", "t1", "--database-url", url, "--content")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("trace t1") and "5 span(s)" in lines[0] and "1 error(s)" in lines[0]
    root = next(i for i, line in enumerate(lines) if "ticket chain" in line)
    child = next(i for i, line in enumerate(lines) if "chat gpt-4o llm" in line)
    assert child > root and lines[child].index("chat") > lines[root].index("ticket")  # nested
    assert "100→50 tok" in lines[child] and "$0.7500" in lines[child]
    assert "RateLimitError: slow down" in result.output
    assert "→ human" in result.output
    assert "parent gone not stored" in result.output  # an orphan is shown, not hidden
    assert "input: Where is my order?" in result.output


def test_traces_show_unknown_id_and_json(url: str) -> None:
    missing = _run("traces", "show", "nope", "--database-url", url)
    assert missing.exit_code == 1 and "no trace 'nope'" in missing.output
    result = _run("traces", "show", "t2", "--database-url", url, "--json")
    [span] = [json.loads(x) for x in result.output.splitlines()]
    assert span["span_id"] == "solo" and span["cost_usd"] == pytest.approx(0.25)


# -- export --------------------------------------------------------------------------------


def test_export_jsonl_to_stdout_has_every_field_of_every_span(url: str) -> None:
    result = CliRunner().invoke(
        app, ["export", "--database-url", url, "--until", UNTIL, "--page-size", "2"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["span_id"] for r in rows] == ["root", "c1", "c2", "b1", "lost", "solo"]
    c1 = rows[1]
    assert c1["latency_ms"] == pytest.approx(250.0) and c1["input"] == "Where is my order?"
    assert c1["events"] == [{"name": "retry", "time": T0 + 11.1, "attributes": {"n": 1}}]
    assert rows[3]["attributes"] == {BRANCH_ATTRIBUTE: "human"}
    assert "exported 6 span(s)" in result.stderr


def test_export_csv_file_with_filters(url: str, tmp_path: Path) -> None:
    out = tmp_path / "spans.csv"
    result = _run(
        "export", "--database-url", url, "--until", UNTIL, "-f", "csv", "-o", str(out),
        "--model", "gpt-4o",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["span_id"] for r in rows] == ["c1", "c2"]
    assert rows[1]["error_message"] == "slow down" and rows[1]["cost_usd"] == ""
    assert json.loads(rows[0]["events"])[0]["name"] == "retry"


def test_export_parquet_round_trips_types(url: str, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "spans.parquet"
    result = _run(
        "export", "--database-url", url, "--until", UNTIL, "-f", "parquet", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 6
    assert str(table.schema.field("input_tokens").type) == "int64"
    assert table.column("input_tokens").to_pylist()[1] == 100
    assert json.loads(table.column("attributes").to_pylist()[3]) == {BRANCH_ATTRIBUTE: "human"}


def test_export_parquet_without_pyarrow_names_the_extra(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("pyarrow", "pyarrow.parquet"):  # import -> ImportError, even if imported before
        monkeypatch.setitem(sys.modules, name, None)
    out = tmp_path / "x.parquet"
    result = _run("export", "--database-url", url, "-f", "parquet", "-o", str(out))
    assert result.exit_code == 1
    assert "pip install 'llmpulse[parquet]'" in result.output
    assert not out.exists()
    stdout = _run("export", "--database-url", url, "-f", "parquet")
    assert stdout.exit_code == 1 and "give --output" in stdout.output


def _peak_export_bytes(url: str, n: int, out: Path) -> int:
    with Store.open(url) as store:
        store.write(
            spans=[make_span(T0 + 1 + i * 0.5, input="x" * 200, output="y" * 200) for i in range(n)]
        )
    tracemalloc.start()
    try:
        result = _run(
            "export", "--database-url", url, "--window", "4h", "--until", UNTIL,
            "-f", "csv", "-o", str(out), "--page-size", "100",
        )  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    assert out.read_text().count("\n") == n + 1
    return peak


def test_export_memory_does_not_grow_with_the_number_of_spans(tmp_path: Path) -> None:
    """Ten times the spans, about the same peak: spans are streamed a page at a time."""
    small = _peak_export_bytes(f"sqlite:///{tmp_path / 'small.db'}", 200, tmp_path / "s.csv")
    large = _peak_export_bytes(f"sqlite:///{tmp_path / 'large.db'}", 2000, tmp_path / "l.csv")
    assert large < 2 * small, (small, large)


def test_version_prints_and_exits_zero() -> None:
    from llmpulse import __version__

    result = _run("--version")
    assert result.exit_code == 0 and result.output.strip() == f"llmpulse {__version__}"


def test_read_commands_load_no_optional_extra(sqlite_url: str) -> None:
    """stats, traces and export work on the base install: they import neither detection
    (scipy), nor openai, nor the simulator, nor the server's HTTP client."""
    with Store.open(sqlite_url) as store:
        store.write(spans=_spans())
    script = f"""
import sys
from typer.testing import CliRunner
from llmpulse.cli.main import app
for args in (["stats"], ["stats", "--by", "service"], ["traces", "list"], ["export", "-f", "csv"]):
    result = CliRunner().invoke(app, [*args, "--database-url", {sqlite_url!r}, "--until", {UNTIL!r}])
    assert result.exit_code == 0, (args, result.output)
for args in (["traces", "show", "t1"], ["db", "cleanup", "--days", "1", "--dry-run"]):
    result = CliRunner().invoke(app, [*args, "--database-url", {sqlite_url!r}])
    assert result.exit_code == 0, (args, result.output)
heavy = [m for m in ("scipy", "llmpulse.detection", "llmpulse.checks", "openai", "starlette",
                     "httpx", "llmpulse.server")
         if m in sys.modules]
assert not heavy, heavy
"""
    import subprocess

    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_model_types_are_the_ones_the_server_accepts() -> None:
    """`llmpulse models --type` offers exactly the server's model types."""
    from typing import get_args

    from llmpulse.cli.models import MODEL_TYPES
    from llmpulse.server.routers.models import ModelType

    assert get_args(ModelType) == MODEL_TYPES


def test_models_add_validates_before_opening_anything(url: str) -> None:
    """A negative price, a blank name or an unknown type is refused by the option parser."""
    for args in (["x", "--input-price", "-1"], [" x"], ["x", "--type", "llm"],
                 ["x", "--context-length", "0"]):  # fmt: skip
        result = _run("models", "add", *args, "--database-url", url)
        assert result.exit_code == 2, (args, result.output)
    with Store.open(url) as store:
        assert store.list_models() == []
    nothing = _run("models", "update", "x", "--database-url", url)
    assert nothing.exit_code == 1 and "nothing to change" in nothing.output
