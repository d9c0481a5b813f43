"""Every ```python block in README.md and docs/*.md runs, so the documentation stays true.

Each page's blocks run in order in one fresh interpreter, in a temporary working directory, so a
page may build on its earlier blocks. A block fenced as ```python no-run is shown, not run (for
snippets that need a real provider key or a long-running server). A page with a block fenced
```python with-simulator runs with OPENAI_BASE_URL and OPENAI_API_KEY pointing at the project's
LLM simulator, as the page's shell lines set them (`llmpulse simulate-llm` + `export ...`), and
must send it at least one request.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
_BLOCK = re.compile(r"^```python[ \t]*(?P<flags>[^\n]*)\n(?P<code>.*?)^```", re.S | re.M)


def _runnable_blocks(page: Path) -> list[str]:
    return [
        m["code"]
        for m in _BLOCK.finditer(page.read_text(encoding="utf-8"))
        if "no-run" not in m["flags"]
    ]


def _needs_simulator(page: Path) -> bool:
    return any(
        "with-simulator" in m["flags"] for m in _BLOCK.finditer(page.read_text(encoding="utf-8"))
    )


@pytest.mark.parametrize(
    "page", [p for p in PAGES if p.exists() and _runnable_blocks(p)], ids=lambda p: p.name
)
class TestDocsExamples:
    def test_python_blocks_run(self, page: Path, tmp_path: Path) -> None:
        """The page's python examples run to completion without error."""
        script = "\n\n".join(_runnable_blocks(page))
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        with ExitStack() as stack:
            sim = None
            if _needs_simulator(page):
                from llmpulse.simulator import LLMSimulator, SimulatorConfig

                sim = stack.enter_context(LLMSimulator(SimulatorConfig(seed=1)))
                env.update(OPENAI_BASE_URL=sim.base_url, OPENAI_API_KEY="sim")
            proc = subprocess.run(
                [sys.executable, "-c", script],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )
            assert proc.returncode == 0, (
                f"{page.name} example failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
            )
            if sim is not None:
                assert sim.requests, f"{page.name}: the example never called the simulator"
