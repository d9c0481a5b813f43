"""Automatic recording for LLM client libraries; each module guards its own optional import."""

from __future__ import annotations

__all__: list[str] = []
