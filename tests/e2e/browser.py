"""Headless Chromium (Debian's /usr/bin/chromium) through Playwright, for the dashboard tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (Playwright's own download does not work here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-background-networking"],
        )  # fmt: skip
        try:
            yield b
        finally:
            b.close()


class Session:
    """A signed-in browser tab that records console errors and failed requests."""

    def __init__(self, browser: Any, url: str, key: str | None) -> None:
        self.url = url
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(
            f"{r.status}: {r.url}"))  # fmt: skip
        if key is not None:
            self.page.goto(f"{url}/login")
            self.page.fill("#key", key)
            self.page.click("button[type=submit]")
            self.page.wait_for_url(f"{url}/")
            self.ready()

    def open(self, path: str) -> Any:
        """Go to ``path`` and wait until its data is drawn; the navigation's response."""
        response = self.page.goto(self.url + path)
        self.ready()
        return response

    def ready(self) -> None:
        """Wait for the page's current data load to finish."""
        self.page.wait_for_selector("body[data-ready=true]", timeout=15000)

    def close(self) -> None:
        self.context.close()
