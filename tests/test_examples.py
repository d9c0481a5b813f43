"""The scripts in examples/ run to completion (CI runs them at a small size)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
class TestLanggraphSupportAgent:
    def test_prints_its_flow_and_the_refund_shift(self, tmp_path: Path) -> None:
        """The agent runs against the in-process simulator, records into SQLite, and prints the
        flow as Mermaid and a branch_shift finding for the refund route."""
        pytest.importorskip("langgraph", reason="langgraph is not installed (extra: langgraph)")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / "langgraph_support_agent.py"), "--tickets", "30",
             "--database-url", f"sqlite:///{tmp_path / 'support.db'}"],
            capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "flowchart TD" in proc.stdout
        assert '-->|"' in proc.stdout and "n2_classify" in proc.stdout
        assert "support:classify / refund" in proc.stdout
