"""Process measurements reported with task results."""

from __future__ import annotations

import resource
import sys


def peak_memory_bytes() -> int:
    """Peak resident set size of this process so far (``getrusage`` maxrss)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
