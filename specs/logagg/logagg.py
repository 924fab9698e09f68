"""Log aggregation over JSON lines: requests and bytes per HTTP status and per path.

Each input record is one parsed JSON object (``input.format: jsonl``), for example
``{"method": "GET", "path": "/search", "status": 200, "bytes": 5120, "ms": 31}``.
The mapper emits ``[requests, bytes]`` pairs under two kinds of key, ``status <code>``
and ``path <path>``; the combiner sums them inside each map task (its output is the same
kind of value, so it may run any number of times); the reducer sums and labels them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def mapper(request: dict[str, Any]) -> Iterator[tuple[str, list[int]]]:
    """``("status 200", [1, bytes])`` and ``("path /search", [1, bytes])``."""
    size = int(request.get("bytes", 0))
    yield f"status {request['status']}", [1, size]
    yield f"path {request['path']}", [1, size]


def add(pairs: Iterable[list[int]]) -> list[int]:
    """Element-wise sum of ``[requests, bytes]`` pairs."""
    requests = total = 0
    for count, size in pairs:
        requests += count
        total += size
    return [requests, total]


def combiner(key: str, pairs: Iterable[list[int]]) -> Iterator[tuple[str, list[int]]]:
    """Partial sums, still ``[requests, bytes]``."""
    yield key, add(pairs)


def reducer(key: str, pairs: Iterable[list[int]]) -> Iterator[tuple[str, dict[str, int]]]:
    """``("status 200", {"requests": n, "bytes": b})``."""
    requests, total = add(pairs)
    yield key, {"requests": requests, "bytes": total}
