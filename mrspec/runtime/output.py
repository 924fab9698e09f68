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
from typing import Any, BinaryIO

from mrspec.runtime.errors import TaskFailedError

FLUSH_PAIRS = 16_384  # pairs formatted and written at once

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_ESCAPES_BUT_LF = str.maketrans({"\\": "\\\\", "\t": "\\t", "\r": "\\r"})
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_INF = float("inf")


class _Json(str):
    """JSON text holding a backslash: already final, never escaped for tsv."""


def _text(item: Any) -> str:
    """A non-``str`` item as compact JSON (fast paths for int and finite float)."""
    kind = type(item)
    if kind is int:
        return str(item)
    if kind is float and -_INF < item < _INF:
        return repr(item)  # what json.dumps writes for a finite float
    text = str(_dumps(item))
    return _Json(text) if "\\" in text else text


def _tsv_field(item: Any) -> str:
    kind = type(item)
    if kind is _Json:
        return str(item)
    if kind is not str:
        return _text(item)
    text: str = item
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_ESCAPES)
    return text


def tsv_line(key: Any, value: Any) -> str:
    return f"{_tsv_field(key)}\t{_tsv_field(value)}\n"


def jsonl_line(key: Any, value: Any) -> str:
    return _dumps([key, value]) + "\n"


def _tsv_chunk(pairs: list[tuple[str, str]]) -> str:
    """Lines for pairs whose fields are already text.

    The lines of a chunk are joined at once and checked for characters that need escaping
    with a few scans of the whole chunk; a dirty chunk escapes its key and value columns
    with one ``str.translate`` each, so no per-field checks run in Python.
    """
    text = "".join([f"{k}\t{v}\n" for k, v in pairs])
    n = len(pairs)
    if "\\" not in text and "\r" not in text and text.count("\t") == n == text.count("\n"):
        return text
    keys = _escape_column([k for k, _ in pairs])
    values = _escape_column([v for _, v in pairs])
    return "".join([f"{k}\t{v}\n" for k, v in zip(keys, values, strict=True)])


def _escape_column(items: list[str]) -> list[str]:
    joined = "\n".join(items)
    if joined.count("\n") != len(items) - 1 or any(type(i) is _Json for i in items):
        return [_tsv_field(i) for i in items]  # line feeds inside, or final JSON text
    if "\\" not in joined and "\t" not in joined and "\r" not in joined:
        return items
    return joined.translate(_ESCAPES_BUT_LF).split("\n")


class PartWriter:
    """Formats pairs in chunks and writes them to one output object in large pieces.

    For ``tsv`` each pair is only converted to text in the loop (``str`` as is, numbers
    with ``str``/``repr``, the rest with JSON); the lines of a chunk are joined at once and
    checked for characters that need escaping with a few scans of the whole chunk, so the
    common case pays no per-field escaping checks.
    """

    def __init__(self, out: BinaryIO, output_format: str) -> None:
        if output_format not in ("tsv", "jsonl"):
            raise TaskFailedError(f"unknown output format {output_format!r}")
        self._out = out
        self._tsv = output_format == "tsv"
        self._pairs: list[tuple[Any, Any]] = []
        self.records = 0
        self.bytes = 0

    def write_pairs(self, pairs: Any) -> None:
        """Write every ``(key, value)`` pair of an iterable."""
        pending = self._pairs
        append = pending.append
        if self._tsv:
            for key, value in pairs:
                append(
                    (
                        key if type(key) is str else _text(key),
                        value if type(value) is str else _text(value),
                    )
                )
                if len(pending) >= FLUSH_PAIRS:
                    self.flush()
        else:
            for key, value in pairs:
                append((key, value))
                if len(pending) >= FLUSH_PAIRS:
                    self.flush()

    def flush(self) -> None:
        pending = self._pairs
        if not pending:
            return
        if self._tsv:
            text = _tsv_chunk(pending)
        else:
            text = "".join([_dumps([k, v]) + "\n" for k, v in pending])
        data = text.encode("utf-8", "surrogatepass")
        self._out.write(data)
        self.bytes += len(data)
        self.records += len(pending)
        pending.clear()
