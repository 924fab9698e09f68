"""A distributed grep: keep the log lines that report an error or a timeout.

A map-only job: there is no reduce section, so the mapper's pairs are the job's output,
one part per map task. Each kept line is keyed by its file name; user counters count the
lines scanned and kept per level, shown in the run summary and in ``_SUCCESS``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from mrspec.api import increment, input_uri

PATTERN = re.compile(r"\bERROR\b|timeout", re.IGNORECASE)


def mapper(line: str) -> Iterator[tuple[str, str]]:
    """``(file name, line)`` for every matching line."""
    increment("lines_scanned")
    if PATTERN.search(line):
        increment("lines_matched")
        yield posixpath.basename((input_uri() or "").replace("\\", "/")), line
