"""Every ```python block in README.md and docs/*.md runs, so the documentation stays true.

Each page's blocks run in order in one fresh interpreter, in a temporary working directory, so a
page may build on its earlier blocks. A block fenced as ```python no-run is shown, not run (for
snippets that need a real provider key or a long-running server).
"""

from __future__ import annotations

import re
import subprocess
import sys
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


@pytest.mark.parametrize(
    "page", [p for p in PAGES if p.exists() and _runnable_blocks(p)], ids=lambda p: p.name
)
class TestDocsExamples:
    def test_python_blocks_run(self, page: Path, tmp_path: Path) -> None:
        """The page's python examples run to completion without error."""
        script = "\n\n".join(_runnable_blocks(page))
        proc = subprocess.run(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, (
            f"{page.name} example failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
