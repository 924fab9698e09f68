"""Exchange objects: shuffle data that carries its own index and its producers' totals.

Every map task (level 0) and every merge task (level >= 1) writes one object::

    MAGIC (4 bytes) | totals length (u32) | entries n (u32) | totals JSON   # little-endian
      | partitions (n x u32) | offsets (n x u64) | lengths (n x u64) | records (n x u64)
      | data = one segment per non-empty partition, in partition order (runtime.shuffle)

A reader needs nothing but the object's key: one ranged GET of the first ``HEAD_READ``
bytes gives the index (and, for a small object, the data too), so no task reads M task
results to find its segments. The index is sparse (a tiny map task with 2,000 partitions
but ten keys has ten entries) and binary: ``array`` loads it in C and a partition is found
by bisection, so a reducer reading F objects of R entries each does not build F x R
Python objects (JSON did: 92 million of them over 2,000 reducers at M = 10,000). The totals (counters, bad records, the number of map
tasks covered) travel with the data, so each merge task carries its group's totals
forward and the commit reads only the last level's results.

Reads are concurrent and memory-bounded: heads are fetched in parallel, and each open
object streams its data in windows of ``window`` bytes with one window fetched ahead
(``READ_THREADS`` ranged GETs in flight per task at most), so a task's time follows
bandwidth rather than per-request latency, and its memory is at most two windows and
one decoded frame per open object.
"""

from __future__ import annotations

import contextvars
import json
import os
import shutil
import struct
import sys
import threading
import time
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

from mrspec.runtime.badrecords import MAX_REPORTED_BAD_RECORDS, BadRecord
from mrspec.runtime.shuffle import FRAME_HEADER, RAW_FLAG, Entry, _decode
from mrspec.storage import Storage, storage_for

MAGIC = b"MRX2"
PREAMBLE = struct.Struct("<4sII")  # magic, totals JSON length, index entries
HEAD_READ = 64 * 1024  # bytes of the first GET of an object: the header and maybe all data
READ_THREADS = 8  # ranged GETs one task keeps in flight at most
READ_STACK_BYTES = 1024**2
COPY_CHUNK = 1024**2

_pools: dict[int, ThreadPoolExecutor] = {}
T = TypeVar("T")
A = TypeVar("A")


def read_pool() -> ThreadPoolExecutor:
    """This process's read threads (created after a fork, never shared across one).

    Their stacks are small (``READ_STACK_BYTES``): a read thread only runs botocore's
    request code, and the default 8 MiB stack each would count against the local
    engine's address-space cap (128 MB tasks could not start them)."""
    pid = os.getpid()
    pool = _pools.get(pid)
    if pool is None:
        previous = threading.stack_size(READ_STACK_BYTES)
        try:
            pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="mrspec-read")
            # start every thread now, while the small stack size is in force
            for f in [pool.submit(time.sleep, 0.001) for _ in range(READ_THREADS)]:
                f.result()
        finally:
            threading.stack_size(previous)
        _pools[pid] = pool
    return pool


def submit(fn: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``fn(*args)`` on a read thread, in a copy of the caller's context (so whatever
    the caller's context carries, request accounting say, applies to the read)."""
    return read_pool().submit(contextvars.copy_context().run, fn, *args)


def parallel(fn: Callable[[A], T], items: Iterable[A]) -> list[T]:
    """``[fn(item) for item in items]`` on the read threads, in order."""
    return [f.result() for f in [submit(fn, item) for item in items]]


@dataclass(frozen=True)
class Totals:
    """What a group of map tasks adds up to: carried by every exchange object."""

    tasks: int = 0  # map tasks covered
    counters: dict[str, int] = field(default_factory=dict)
    user_counters: dict[str, int] = field(default_factory=dict)
    bad_record_count: int = 0
    bad_records: tuple[BadRecord, ...] = ()  # the first MAX_REPORTED_BAD_RECORDS

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "counters": dict(sorted(self.counters.items())),
            "user_counters": dict(sorted(self.user_counters.items())),
            "bad_record_count": self.bad_record_count,
            "bad_records": [b.to_json() for b in self.bad_records],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Totals:
        return cls(
            tasks=int(data.get("tasks", 0)),
            counters={k: int(v) for k, v in data.get("counters", {}).items()},
            user_counters={k: int(v) for k, v in data.get("user_counters", {}).items()},
            bad_record_count=int(data.get("bad_record_count", 0)),
            bad_records=tuple(BadRecord.from_json(b) for b in data.get("bad_records", ())),
        )

    @classmethod
    def sum(cls, parts: Iterable[Totals]) -> Totals:
        counters: Counter[str] = Counter()
        user: Counter[str] = Counter()
        tasks = bad_count = 0
        bad: list[BadRecord] = []
        for part in parts:
            tasks += part.tasks
            counters.update(part.counters)
            user.update(part.user_counters)
            bad_count += part.bad_record_count
            bad.extend(part.bad_records[: MAX_REPORTED_BAD_RECORDS - len(bad)])
        return cls(tasks, dict(counters), dict(user), bad_count, tuple(bad))


@dataclass(frozen=True)
class Segment:
    offset: int  # from the start of the data
    length: int
    records: int


class SegmentIndex:
    """The non-empty partitions of an object and where their segments are."""

    def __init__(self, partitions: array[int], offsets: array[int], lengths: array[int], records: array[int]) -> None:
        self.partitions, self.offsets, self.lengths, self.records = partitions, offsets, lengths, records

    @classmethod
    def parse(cls, data: bytes, count: int) -> SegmentIndex:
        columns = []
        pos = 0
        for code, size in (("I", 4), ("Q", 8), ("Q", 8), ("Q", 8)):
            column = array(code)
            column.frombytes(data[pos : pos + count * size])
            if sys.byteorder != "little":
                column.byteswap()
            columns.append(column)
            pos += count * size
        return cls(*columns)

    @staticmethod
    def encode(dense: Sequence[Sequence[int]], first: int = 0) -> tuple[int, bytes]:
        """(entries, bytes) of the sparse index of a dense ``[[offset, length, records]]``
        whose first row is partition ``first``."""
        rows = [(p, o, n, r) for p, (o, n, r) in enumerate(dense, start=first) if n]
        columns = [array("I", [row[0] for row in rows])]
        columns += [array("Q", [row[i] for row in rows]) for i in (1, 2, 3)]
        if sys.byteorder != "little":
            for column in columns:
                column.byteswap()
        return len(rows), b"".join(c.tobytes() for c in columns)

    @staticmethod
    def size(count: int) -> int:
        return count * (4 + 3 * 8)

    def _find(self, partition: int) -> int:
        i = bisect_left(self.partitions, partition)
        return i if i < len(self.partitions) and self.partitions[i] == partition else -1

    def __contains__(self, partition: int) -> bool:
        return self._find(partition) >= 0

    def get(self, partition: int) -> Segment | None:
        i = self._find(partition)
        if i < 0:
            return None
        return Segment(self.offsets[i], self.lengths[i], self.records[i])

    def __len__(self) -> int:
        return len(self.partitions)

    @property
    def end(self) -> int:
        """The end of the last segment (the data's length)."""
        return self.offsets[-1] + self.lengths[-1] if self.partitions else 0


@dataclass(frozen=True)
class Header:
    index: SegmentIndex
    totals: Totals
    data_start: int  # byte offset of the data in the object


def write_exchange(
    uri: str, body_path: str, index: Sequence[Sequence[int]], totals: Totals, first: int = 0
) -> int:
    """Write the object: header (totals, the sparse index of the dense ``[[offset,
    length, records]]`` list of partitions ``first``, ``first + 1``, ...), then the data
    from the file ``body_path``. Returns its size."""
    summary = json.dumps(totals.to_json(), separators=(",", ":")).encode()
    count, packed = SegmentIndex.encode(index, first)
    head = PREAMBLE.pack(MAGIC, len(summary), count) + summary + packed
    with storage_for(uri).open_write(uri) as out, open(body_path, "rb") as body:
        out.write(head)
        shutil.copyfileobj(body, out, COPY_CHUNK)
    return len(head) + os.path.getsize(body_path)


class ExchangeReader:
    """One exchange object opened for reading: its header, and its data as frames."""

    def __init__(self, storage: Storage, uri: str) -> None:
        self.storage, self.uri = storage, uri
        head = storage.read(uri, 0, HEAD_READ)
        if len(head) < PREAMBLE.size or head[:4] != MAGIC:
            raise ValueError(f"{uri} is not an mrspec exchange object (bad magic)")
        _, size, count = PREAMBLE.unpack_from(head, 0)
        index_start = PREAMBLE.size + size
        end = index_start + SegmentIndex.size(count)
        if len(head) < end:
            head += storage.read(uri, len(head), end)
        self.header = Header(
            index=SegmentIndex.parse(head[index_start:end], count),
            totals=Totals.from_json(json.loads(head[PREAMBLE.size : index_start])),
            data_start=end,
        )
        self._cached = head[end:]  # data the first GET brought along

    def frames(self, start: int, end: int, window: int) -> Iterator[tuple[int, list[Entry]]]:
        """``(offset, decoded block)`` for each frame of the data range ``[start, end)``."""
        buf = b""
        base = start  # data offset of buf[0]
        for chunk in self._chunks(start, end, window):
            buf = buf + chunk if buf else chunk
            pos = 0
            while len(buf) - pos >= 4:
                (header,) = FRAME_HEADER.unpack_from(buf, pos)
                size = header & ~RAW_FLAG
                if len(buf) - pos - 4 < size:
                    break
                yield base + pos, _decode(buf[pos + 4 : pos + 4 + size], header & RAW_FLAG)
                pos += 4 + size
            buf, base = buf[pos:], base + pos
        if buf:
            raise ValueError(f"truncated shuffle data in {self.uri} at data byte {base}")

    def segment_blocks(self, partition: int, window: int) -> Iterator[list[Entry]]:
        """The decoded blocks of one partition's segment (none when it is empty)."""
        seg = self.header.index.get(partition)
        if seg is None:
            return iter(())
        return (b for _, b in self.frames(seg.offset, seg.offset + seg.length, window))

    def _chunks(self, start: int, end: int, window: int) -> Iterator[bytes]:
        """The bytes of ``[start, end)`` in order, one window fetched ahead."""
        pos = start
        if pos < len(self._cached):
            piece = self._cached[pos:end]
            yield piece
            pos += len(piece)
        pending: Future[bytes] | None = None
        while pos < end:
            stop = min(pos + window, end)
            current = pending or submit(self._read, pos, stop)
            pending = submit(self._read, stop, min(stop + window, end)) if stop < end else None
            data = current.result()
            if len(data) != stop - pos:
                raise ValueError(f"exchange object {self.uri} ends before data byte {stop}")
            yield data
            pos = stop

    def _read(self, start: int, end: int) -> bytes:
        base = self.header.data_start
        return self.storage.read(self.uri, base + start, base + end)


def open_all(uris: Sequence[str]) -> list[ExchangeReader]:
    """Open every object, their first GETs in parallel."""
    return parallel(lambda u: ExchangeReader(storage_for(u), u), uris)


class PartitionStream:
    """An object's frames in order, handed out partition by partition (a merge task reads
    the partitions ``[first, stop)`` of its inputs, in order, with one sequential stream
    per input over exactly that range's bytes)."""

    def __init__(self, reader: ExchangeReader, window: int, first: int = 0, stop: int | None = None) -> None:
        self.reader = reader
        index = self._index = reader.header.index
        self._entry = bisect_left(index.partitions, first)
        last = bisect_left(index.partitions, stop) if stop is not None else len(index)
        begin = index.offsets[self._entry] if self._entry < last else 0
        end = index.offsets[last - 1] + index.lengths[last - 1] if self._entry < last else 0
        self._frames = reader.frames(begin, end, window)
        self._next: tuple[int, list[Entry]] | None = next(self._frames, None)

    def has(self, partition: int) -> bool:
        """Whether ``partition`` (asked in increasing order) has data here: O(1)."""
        index = self._index
        while self._entry < len(index) and index.partitions[self._entry] < partition:
            self._entry += 1
        return self._entry < len(index) and index.partitions[self._entry] == partition

    def blocks(self, partition: int) -> Iterator[list[Entry]]:
        if not self.has(partition):
            return
        i = self._entry
        stop = self._index.offsets[i] + self._index.lengths[i]
        while self._next is not None and self._next[0] < stop:
            block = self._next[1]
            self._next = next(self._frames, None)
            yield block


def body_writer(path: str) -> BinaryIO:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return open(path, "wb")
