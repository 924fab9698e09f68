"""Output formats: how a ``(key, value)`` pair becomes one line of a ``part-NNNNN``.

``tsv``: ``key<TAB>value<LF>``. A ``str`` is written as is, anything else as compact
JSON (``5``, ``[1, 2]``, ``{"a": 1}``, ``null``). In a ``str`` key or value a backslash,
tab, newline or carriage return is escaped as ``\\\\``, ``\\t``, ``\\n``, ``\\r`` so every
pair stays on one line with exactly one unescaped tab (PostgreSQL's text format does the
same).

``jsonl``: ``[key, value]`` as one line of compact JSON, UTF-8, non-ASCII kept as is.

docs/job-api.md states both formats for users.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, BinaryIO

from mrspec.runtime.errors import TaskFailedError

FLUSH_CHARS = 1024 * 1024

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _tsv_field(item: Any) -> str:
    if type(item) is not str:
        return str(_dumps(item))
    if "\\" in item or "\t" in item or "\n" in item or "\r" in item:
        return item.translate(_ESCAPES)
    return item


def tsv_line(key: Any, value: Any) -> str:
    return f"{_tsv_field(key)}\t{_tsv_field(value)}\n"


def jsonl_line(key: Any, value: Any) -> str:
    return _dumps([key, value]) + "\n"


FORMATTERS: dict[str, Callable[[Any, Any], str]] = {"tsv": tsv_line, "jsonl": jsonl_line}


class PartWriter:
    """Buffers formatted lines and writes them to one output object in large pieces."""

    def __init__(self, out: BinaryIO, output_format: str) -> None:
        if output_format not in FORMATTERS:
            raise TaskFailedError(f"unknown output format {output_format!r}")
        self._out = out
        self._format = FORMATTERS[output_format]
        self._lines: list[str] = []
        self._chars = 0
        self.records = 0
        self.bytes = 0

    def write_pairs(self, pairs: Any) -> None:
        """Write every ``(key, value)`` pair of an iterable."""
        fmt = self._format
        lines = self._lines
        for key, value in pairs:
            line = fmt(key, value)
            lines.append(line)
            self._chars += len(line)
            if self._chars >= FLUSH_CHARS:
                self.flush()

    def flush(self) -> None:
        if self._lines:
            data = "".join(self._lines).encode("utf-8", "surrogatepass")
            self._out.write(data)
            self.bytes += len(data)
            self.records += len(self._lines)
            self._lines.clear()
            self._chars = 0
