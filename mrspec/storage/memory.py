"""In-memory storage (``mem://`` locations): one dict per process, observable.

The scale harness (``mrspec.bench.scale``) runs the real task code over it: every request
goes through ``request(op, uri)`` first, where an installed ``observer`` may count it,
add latency or raise (throttling). Missing objects raise ``FileNotFoundError`` like local
files.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO, ClassVar, cast

from mrspec.storage import ObjectInfo

Observer = Callable[[str, str], None]  # (operation, uri)
LIST_PAGE = 1000  # keys per LIST request, as ListObjectsV2


class MemoryStorage:
    _shared: ClassVar[MemoryStorage | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.observer: Observer | None = None
        self.stored_bytes = 0
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> MemoryStorage:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    @classmethod
    def reset_shared(cls) -> None:
        with cls._shared_lock:
            cls._shared = None

    def request(self, op: str, uri: str) -> None:
        if self.observer is not None:
            self.observer(op, uri)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self.request("LIST", prefix)
        # the "server side" of a listing: one pointer per key (the strings are the store's
        # own); objects go out one at a time, as S3's pages would
        with self._lock:
            keys = sorted(u for u in self.objects if u.startswith(prefix))
        for n, uri in enumerate(keys):
            if n and n % LIST_PAGE == 0:
                self.request("LIST", prefix)  # the next page
            data = self.objects.get(uri)
            if data is not None:
                yield ObjectInfo(uri, len(data))

    def read(self, uri: str, start: int = 0, end: int | None = None) -> bytes:
        self.request("GET", uri)
        try:
            data = self.objects[uri]
        except KeyError:
            raise FileNotFoundError(uri) from None
        return data[start:end]

    def open_read(self, uri: str) -> BinaryIO:
        return io.BytesIO(self.read(uri))

    def write(self, uri: str, data: bytes) -> None:
        self.request("PUT", uri)
        with self._lock:
            self.stored_bytes += len(data) - len(self.objects.get(uri, b""))
            self.objects[uri] = bytes(data)

    @contextmanager
    def open_write(self, uri: str) -> Iterator[BinaryIO]:
        buffer = io.BytesIO()
        yield cast(BinaryIO, buffer)
        self.write(uri, buffer.getvalue())

    def delete(self, uris: Iterable[str]) -> None:
        keys = list(uris)
        for i in range(0, len(keys), 1000):  # one request per 1,000 keys, as DeleteObjects
            chunk = keys[i : i + 1000]
            self.request("DELETE", chunk[0])
            with self._lock:
                for uri in chunk:
                    self.stored_bytes -= len(self.objects.pop(uri, b""))

    def exists(self, uri: str) -> bool:
        self.request("HEAD", uri)
        return uri in self.objects
