"""Local filesystem storage. Writes go to a temporary file renamed into place."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

from mrspec.storage import ObjectInfo


class LocalStorage:
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        root = Path(prefix)
        if root.is_file():
            yield ObjectInfo(str(root), root.stat().st_size)
            return
        if not root.is_dir():
            return
        found: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in filenames:
                path = os.path.join(dirpath, name)
                if os.path.isfile(path):
                    found.append(ObjectInfo(path, os.path.getsize(path)))
        found.sort(key=lambda o: o.uri)
        yield from found

    def read(self, uri: str, start: int = 0, end: int | None = None) -> bytes:
        with open(uri, "rb") as f:
            f.seek(start)
            return f.read() if end is None else f.read(max(0, end - start))

    def open_read(self, uri: str) -> BinaryIO:
        return open(uri, "rb")

    def write(self, uri: str, data: bytes) -> None:
        with self.open_write(uri) as f:
            f.write(data)

    @contextmanager
    def open_write(self, uri: str) -> Iterator[BinaryIO]:
        target = Path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                yield cast(BinaryIO, f)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, uris: Iterable[str]) -> None:
        for uri in uris:
            Path(uri).unlink(missing_ok=True)

    def exists(self, uri: str) -> bool:
        return Path(uri).exists()
