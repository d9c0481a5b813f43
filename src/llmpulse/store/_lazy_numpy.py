"""numpy, imported when a percentile is first computed rather than when the store is imported.

Only queries need numpy (percentiles of rollup histograms, grouping rollup rows); ingest
(rows, rollups, histogram merges) does not. numpy adds about 15 MB to a process, so a server
that only ingests, and an application whose embedded store only writes, never load it.
Modules write ``np.<name>`` as usual: the first attribute read imports numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["np"]


class _Numpy:
    """Stands for the numpy module; every attribute is read from the real one."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("numpy"), name)


np: Any = _Numpy()
