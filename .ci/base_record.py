"""CI: with only the base dependencies installed, an application records into SQLite.

Run by .ci/run in a fresh virtualenv holding `pip install .` and nothing else: a traced
function makes three LLM calls through the SDK, and the rows are read back with sqlite3.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
import tempfile
from pathlib import Path

import llmpulse

# The extras really are absent, so this proves the base install is enough.
EXTRAS = ("scipy", "openai", "starlette", "uvicorn", "tenacity", "psycopg", "pytest")
present = [name for name in EXTRAS if importlib.util.find_spec(name) is not None]
assert not present, f"the base venv holds extra packages: {present}"

db = Path(tempfile.mkdtemp()) / "base.db"
llmpulse.init(f"sqlite:///{db}")  # instrumenting openai is the default: absent here, quietly


@llmpulse.observe(name="answer")
def answer(question: str) -> str:
    for model in ("gpt-4o-mini", "gpt-4o", "gpt-4o-mini"):
        llmpulse.record_llm_call(
            model, input_tokens=len(question), output_tokens=7, latency_ms=12.5, session_id="s1"
        )
    return "ok"


answer("how do I reset my password?")
llmpulse.shutdown()
stats = llmpulse.get_client().stats()

with sqlite3.connect(db) as conn:
    rows = conn.execute(
        "SELECT kind, name, model, input_tokens, output_tokens, cost_usd, trace_id, parent_id"
        " FROM spans ORDER BY kind, model"
    ).fetchall()
    rollup_calls = conn.execute("SELECT COUNT(*) FROM rollups").fetchone()[0]
conn.close()

kinds = sorted(row[0] for row in rows)
assert kinds == ["chain", "llm", "llm", "llm"], (kinds, stats)
llm = [row for row in rows if row[0] == "llm"]
chain = next(row for row in rows if row[0] == "chain")
assert {row[2] for row in llm} == {"gpt-4o-mini", "gpt-4o"}, llm
assert all(row[3] == 27 and row[4] == 7 for row in llm), llm
assert all(row[5] is not None and row[5] > 0 for row in llm), "no cost from the price table"
assert all(row[6] == chain[6] for row in llm), "the calls are not in the traced function's trace"
assert rollup_calls > 0, "no rollups maintained on ingest"
print(f"ok: base install recorded {len(rows)} spans into SQLite ({sys.version.split()[0]})")
