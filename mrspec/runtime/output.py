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
from itertools import islice
from operator import itemgetter
from typing import Any, BinaryIO

from mrspec.runtime.errors import TaskFailedError

FLUSH_PAIRS = 16_384  # pairs formatted and written at once

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_INF = float("inf")
_PLAIN = frozenset((str, int))  # formatted by an f-string exactly as tsv wants
_first = itemgetter(0)
_second = itemgetter(1)
_TUPLE = {tuple}
_TWO = {2}


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
        return _escape(text).replace("\n", "\\n")
    return text


def tsv_line(key: Any, value: Any) -> str:
    """One pair's TSV line, field by field (the chunked writer's slow path)."""
    return f"{_tsv_field(key)}\t{_tsv_field(value)}\n"


def _tsv_chunk(pairs: list[Any]) -> str:
    """The lines of a chunk of raw pairs.

    ``str`` and ``int`` fields are formatted by one f-string per line (``f"{5}"`` is
    ``5``, as JSON writes it); the joined chunk is then checked for characters that need
    escaping with a few scans. A dirty chunk is redone column by column: each column
    joined, escaped with three ``str.replace`` calls and split again, so no per-field checks
    run in Python unless a field holds a line feed or is JSON text.
    """
    plain = _PLAIN
    n = len(pairs)
    if (
        set(map(type, pairs)) == _TUPLE
        and set(map(len, pairs)) == _TWO
        and set(map(type, map(_first, pairs))) <= plain >= set(map(type, map(_second, pairs)))
    ):
        # str and int only: when the separators are the only tabs and line feeds and no
        # CR occurs, the one escape left to do is doubling backslashes, on the whole text
        text = "".join([f"{k}\t{v}\n" for k, v in pairs])
        if "\r" not in text and text.count("\t") == n == text.count("\n"):
            return text.replace("\\", "\\\\") if "\\" in text else text
    else:
        text = "".join(
            [
                f"{k}\t{v}\n" if type(k) in plain and type(v) in plain else tsv_line(k, v)
                for k, v in pairs
            ]
        )
        if "\\" not in text and "\r" not in text and text.count("\t") == n == text.count("\n"):
            return text
    keys = _escape_column([f"{k}" if type(k) in plain else _text(k) for k, _ in pairs])
    values = _escape_column([f"{v}" if type(v) in plain else _text(v) for _, v in pairs])
    return "".join([f"{k}\t{v}\n" for k, v in zip(keys, values, strict=True)])


def _escape_column(items: list[str]) -> list[str]:
    joined = "\n".join(items)
    if joined.count("\n") != len(items) - 1 or _Json in set(map(type, items)):
        return [_tsv_field(i) for i in items]  # line feeds inside, or final JSON text
    if "\\" not in joined and "\t" not in joined and "\r" not in joined:
        return items
    return _escape(joined).split("\n")


def _escape(text: str) -> str:
    """Backslash, tab and CR escaped (``str.replace`` is far faster than ``translate``
    with multi-character replacements)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\r", "\\r")


def _bad_pair(pairs: list[Any], exc: Exception) -> TaskFailedError:
    for item in pairs:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            return TaskFailedError(f"the job yielded {item!r} where a (key, value) pair belongs")
    return TaskFailedError(f"an output pair cannot be written: {type(exc).__name__}: {exc}")


class PartWriter:
    """Collects pairs in chunks and writes them to one output object in large pieces.

    Pairs are gathered with ``list.extend`` (no Python code per pair) and formatted a
    chunk at a time (see ``_tsv_chunk``).
    """

    def __init__(self, out: BinaryIO, output_format: str) -> None:
        if output_format not in ("tsv", "jsonl", "pairs"):
            raise TaskFailedError(f"unknown output format {output_format!r}")
        self._out = out
        self._tsv = output_format == "tsv"
        # "pairs": a step before the last writes the shuffle format the next step reads
        self._pairs_format = output_format == "pairs"
        self._pairs: list[Any] = []
        self.records = 0
        self.bytes = 0

    def write_pairs(self, pairs: Any) -> None:
        """Write every ``(key, value)`` pair of an iterable."""
        pending = self._pairs
        items = iter(pairs)
        while True:
            room = FLUSH_PAIRS - len(pending)
            pending.extend(islice(items, room))
            if len(pending) < FLUSH_PAIRS:
                return
            self.flush()

    def flush(self) -> None:
        pending = self._pairs
        if not pending:
            return
        if self._pairs_format:
            self._flush_frames(pending)
            return
        try:
            if self._tsv:
                text = _tsv_chunk(pending)
            else:
                text = "".join([_dumps([k, v]) + "\n" for k, v in pending])
        except (TypeError, ValueError) as exc:
            raise _bad_pair(pending, exc) from exc
        data = text.encode("utf-8", "surrogatepass")
        self._out.write(data)
        self.bytes += len(data)
        self.records += len(pending)
        pending.clear()

    def _flush_frames(self, pending: list[Any]) -> None:
        from mrspec.runtime.shuffle import write_segment

        try:
            written, _ = write_segment(self._out, [(k, [v]) for k, v in pending])
        except (TypeError, ValueError) as exc:
            raise _bad_pair(pending, exc) from exc
        self.bytes += written
        self.records += len(pending)
        pending.clear()
