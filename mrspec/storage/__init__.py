"""One storage boundary for local files and S3, used by planning, tasks and commit.

Locations are strings: an absolute local path or an ``s3://bucket/key`` URI (or
``mem://...``: this process's in-memory store, used by the scale harness and tests).
``storage_for(location)`` returns the implementation that serves it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)  # slots: a million of them take 48 bytes each
class ObjectInfo:
    uri: str
    size: int


class Storage(Protocol):
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, sorted by location (hidden ones included)."""
        ...

    def read(self, uri: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of an object (``end=None``: to the end)."""
        ...

    def open_read(self, uri: str) -> BinaryIO:
        """A streaming reader over the whole object."""
        ...

    def write(self, uri: str, data: bytes) -> None:
        """Write a whole object at once (replacing any object at ``uri``)."""
        ...

    def open_write(self, uri: str) -> AbstractContextManager[BinaryIO]:
        """A streaming writer; the object appears only when the context exits cleanly."""
        ...

    def delete(self, uris: Iterable[str]) -> None:
        """Delete objects; missing ones are ignored."""
        ...

    def exists(self, uri: str) -> bool: ...


def storage_for(location: str) -> Storage:
    """The storage implementation for a location (``s3://``, ``mem://`` or a local path)."""
    if location.startswith("mem://"):
        from mrspec.storage.memory import MemoryStorage

        return MemoryStorage.shared()
    if location.startswith("s3://"):
        from mrspec.storage.s3 import S3Storage

        return S3Storage.shared()
    from mrspec.storage.local import LocalStorage

    return LocalStorage()


def join(prefix: str, *parts: str) -> str:
    """Join a location prefix and relative parts with ``/``."""
    out = prefix.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def is_hidden(uri: str) -> bool:
    """Hadoop's convention: names starting with ``_`` or ``.`` are not data
    (``_SUCCESS`` manifests, ``.crc`` files, editor droppings)."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return name.startswith(("_", "."))
