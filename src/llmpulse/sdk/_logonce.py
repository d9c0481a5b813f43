"""Log a problem once, then at most once a minute with how often it happened meanwhile."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

__all__ = ["LogOnce"]


class LogOnce:
    """Rate-limited warnings keyed by category, so a dead exporter does not flood the log."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self._log = logger
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            repeats = self._suppressed.pop(key, 0)
        if repeats:
            message += " (%d more like this since the last message)"
            args = (*args, repeats)
        self._log.warning(message, *args)
