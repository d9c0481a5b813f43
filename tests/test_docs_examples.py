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
from concurrent.futures import ThreadPoolExecutor
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


def _run_page(page: Path, cwd: Path) -> tuple[subprocess.CompletedProcess[str], int | None]:
    """The page's blocks in one fresh interpreter in ``cwd``, with a simulator of its own when
    the page needs one; the run and the requests the simulator saw (``None``: no simulator)."""
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
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        return proc, None if sim is None else len(sim.requests)


def _run_or_error(
    page: Path, cwd: Path
) -> tuple[subprocess.CompletedProcess[str], int | None] | BaseException:
    try:
        return _run_page(page, cwd)
    except BaseException as exc:  # a timeout: reported by the test that reads it
        return exc


@pytest.fixture(scope="module")
def page_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[Path, tuple[subprocess.CompletedProcess[str], int | None] | BaseException]:
    """The selected pages run once each, two at a time: a run is mostly a fresh interpreter
    importing what the page uses (litellm alone takes seconds) on one core, and the suite would
    otherwise wait for them one by one. Each page has its own directory and simulator."""
    pages = sorted(
        {
            item.callspec.params["page"]
            for item in request.session.items
            if item.module is request.module and hasattr(item, "callspec")
        }
    )
    dirs = [tmp_path_factory.mktemp(page.stem) for page in pages]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(pages, pool.map(_run_or_error, pages, dirs), strict=True))


@pytest.mark.parametrize(
    "page", [p for p in PAGES if p.exists() and _runnable_blocks(p)], ids=lambda p: p.name
)
class TestDocsExamples:
    def test_python_blocks_run(
        self,
        page: Path,
        page_runs: dict[Path, tuple[subprocess.CompletedProcess[str], int | None] | BaseException],
    ) -> None:
        """The page's python examples run to completion without error."""
        run = page_runs[page]
        if isinstance(run, BaseException):
            raise run
        proc, requests = run
        assert proc.returncode == 0, (
            f"{page.name} example failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
        if requests is not None:
            assert requests, f"{page.name}: the example never called the simulator"
