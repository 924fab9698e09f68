"""Saved input listings: ``mrspec plan --listing FILE`` plans without cloud access.

A listing is what listing the input prefixes returned, saved to a file (JSON Lines, so a
large listing streams, diffs line by line and an error names its line)::

    {"mrspec_listing": 1, "prefixes": ["s3://bucket/in/"]}
    {"uri": "s3://bucket/in/part-0000.txt", "size": 1048576}
    {"uri": "s3://bucket/in/part-0001.txt", "size": 524288}

The first line names the prefixes that were listed, so a listing saved for other
prefixes is refused instead of silently planning over nothing. :class:`ListingStorage`
serves ``list()`` from the file with the prefix semantics of the real storage, so the
planner's own rules (hidden objects, overlapping prefixes, empty prefixes) still apply.
docs/plan.md describes the format for people who write listings by other means.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

from mrspec.errors import InputError
from mrspec.storage import ObjectInfo

FORMAT_VERSION = 1
HEADER_KEY = "mrspec_listing"
_SAVE_HINT = "write a fresh one with: mrspec plan SPEC --save-listing FILE (needs AWS credentials)"


def under(uri: str, prefix: str) -> bool:
    """Whether listing ``prefix`` returns ``uri``: S3 prefixes match as strings, local
    prefixes as a file or a folder (the way S3Storage and LocalStorage list)."""
    if prefix.startswith("s3://"):
        return uri.startswith(prefix)
    return uri == prefix or uri.startswith(prefix.rstrip("/") + "/")


class ListingStorage:
    """A read-nothing Storage whose ``list()`` answers from a saved listing."""

    def __init__(self, source: str, prefixes: tuple[str, ...], objects: Iterable[ObjectInfo]):
        self.source = source
        self.prefixes = prefixes
        self.objects = sorted(objects, key=lambda o: o.uri)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        if not any(under(prefix, listed) for listed in self.prefixes):
            raise InputError(
                f"listing {self.source} does not cover the input prefix {prefix} "
                f"(it lists {', '.join(self.prefixes) or 'no prefix'})",
                hint=_SAVE_HINT,
            )
        return (o for o in self.objects if under(o.uri, prefix))

    def _no_data(self, uri: str) -> InputError:
        return InputError(
            f"{uri}: a listing ({self.source}) has object names and sizes, not data",
            hint="run with AWS credentials and without --listing to read the input",
        )

    def read(self, uri: str, start: int = 0, end: int | None = None) -> bytes:
        raise self._no_data(uri)

    def open_read(self, uri: str) -> BinaryIO:
        raise self._no_data(uri)

    def write(self, uri: str, data: bytes) -> None:
        raise self._no_data(uri)

    def open_write(self, uri: str) -> AbstractContextManager[BinaryIO]:
        raise self._no_data(uri)

    def delete(self, uris: Iterable[str]) -> None:
        raise self._no_data(next(iter(uris), self.source))

    def exists(self, uri: str) -> bool:
        return any(o.uri == uri for o in self.objects)


def read_listing(path: str | Path) -> ListingStorage:
    """Load a listing file; every mistake is an InputError naming FILE:LINE."""
    source = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except FileNotFoundError:
        raise InputError(f"listing file {source} does not exist", hint=_SAVE_HINT) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read listing file {source}: {exc}", hint=_SAVE_HINT) from None
    entries = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if not entries:
        raise InputError(f"{source}: the listing is empty (no header line)", hint=_SAVE_HINT)
    n, first = entries[0]
    header = _json_object(source, n, first)
    if header.get(HEADER_KEY) != FORMAT_VERSION:
        raise InputError(
            f'{source}:{n}: the first line must be {{"{HEADER_KEY}": {FORMAT_VERSION}, '
            f'"prefixes": [...]}}, got {first.strip()[:80]}',
            hint=_SAVE_HINT,
        )
    prefixes = header.get("prefixes")
    if not isinstance(prefixes, list) or not all(isinstance(p, str) and p for p in prefixes):
        raise InputError(
            f"{source}:{n}: prefixes: must be a list of the listed prefixes (strings)",
            hint=_SAVE_HINT,
        )
    objects = [_object(source, n, line) for n, line in entries[1:]]
    return ListingStorage(source, tuple(prefixes), objects)


def _json_object(source: str, n: int, line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{source}:{n}:{exc.colno}: not JSON: {exc.msg}",
            hint="each line of a listing is one JSON object",
        ) from None
    if not isinstance(value, dict):
        raise InputError(f"{source}:{n}: expected a JSON object, got {line.strip()[:80]}")
    return value


def _object(source: str, n: int, line: str) -> ObjectInfo:
    value = _json_object(source, n, line)
    uri, size = value.get("uri"), value.get("size")
    if not isinstance(uri, str) or not uri:
        raise InputError(f'{source}:{n}: uri: expected the object\'s location, e.g. "s3://b/k"')
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InputError(f"{source}:{n}: size: expected a byte count (an integer >= 0), got {size!r}")
    return ObjectInfo(uri, size)


def write_listing(path: str | Path, prefixes: Iterable[str], objects: Iterable[ObjectInfo]) -> int:
    """Write a listing atomically (a failed write leaves any old file as it was);
    returns the number of objects written."""
    unique = {o.uri: o for o in objects}
    target = Path(path)
    header = {HEADER_KEY: FORMAT_VERSION, "prefixes": list(dict.fromkeys(prefixes))}
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as exc:
        raise InputError(
            f"cannot write the listing {target}: {exc}", hint="check that its folder exists"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(header) + "\n")
            for uri in sorted(unique):
                fh.write(json.dumps({"uri": uri, "size": unique[uri].size}) + "\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(unique)
