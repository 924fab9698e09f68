"""Record readers: the records a split owns, in blocks of complete lines.

A split ``[start, end)`` owns the records that *start* inside it. A record starts at
byte 0 or right after a ``\\n``. So the reader skips to the first record start at or
after ``start`` (looking at byte ``start - 1``), reads whole chunks up to ``end`` with
ranged reads, and finishes the last record it owns past ``end`` with further small
ranged reads until the next newline (or the end of the object).

Lines are decoded as UTF-8 with ``errors="replace"`` (a bad byte becomes U+FFFD and never
crashes a task), lose their ``\\n`` and, for CRLF files, the ``\\r`` before it. The last
line of an object needs no trailing newline. A compressed (``.gz``) object is read whole
as one stream; offsets are then positions in the decompressed stream.

``jsonl`` records are the parsed JSON values of non-blank lines; a line that does not
parse is a bad record (reported with its object and byte offset, then skipped).

Many small objects: a task over thousands of small S3 objects would spend nearly all its
time waiting for one GET after another (~10-20 ms of latency each, against well under a
millisecond to parse 20 KiB). So splits that are whole small objects are fetched ahead
by a few threads (``prefetched``): at most ``FETCHERS`` GETs in flight and
``PREFETCH_BYTES`` held, handed on strictly in the plan's order, so the mapper sees the
same records in the same order as with one GET at a time.
"""

from __future__ import annotations

import contextvars
import gzip
import io
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mrspec.plan.model import Split
from mrspec.storage import Storage

LOCAL_CHUNK = 4 * 1024**2  # bytes per read of a local file
S3_CHUNK = 8 * 1024**2  # bytes per ranged GET
TAIL_STEP = 64 * 1024  # first read past the split's end to finish its last record
BLOCK_BYTES = 1024**2  # records are handed over in blocks of about this size
FETCHERS = 16  # S3 GETs in flight for small objects (storage.s3 sizes its pool for it)
PREFETCH_BYTES = 32 * 1024**2  # at most this much fetched ahead of the mapper
PREFETCH_SHARE = 16  # ... and at most this fraction of the task's memory (maptask.py)
SMALL_OBJECT = 4 * 1024**2  # a whole object up to this size is fetched in one GET


@dataclass
class Block:
    """Consecutive complete lines of one object and the records parsed from them."""

    uri: str
    offset: int  # byte offset of ``data[0]`` in the object (decompressed for .gz)
    data: bytes
    records: list[Any]
    # records[i] came from line line_of[i]; None when records and lines correspond 1:1
    line_of: list[int] | None = None

    def record_offset(self, index: int) -> int:
        """Byte offset of record ``index`` (computed only when a record goes bad)."""
        line = index if self.line_of is None else self.line_of[index]
        return self.offset + line_offset(self.data, line)


def line_offset(data: bytes, line: int) -> int:
    pos = 0
    for _ in range(line):
        pos = data.index(b"\n", pos) + 1
    return pos


# (uri, offset, error) of a record that cannot be read
BadRecordSink = Callable[[str, int, str], None]


def _ranges(storage: Storage, uri: str, start: int, end: int, chunk: int) -> Iterator[bytes]:
    pos = start
    while pos < end:
        data = storage.read(uri, pos, min(pos + chunk, end))
        if not data:
            return
        pos += len(data)
        yield data


def _complete_lines(
    offset: int, pieces: Iterable[bytes], finish: Callable[[], Iterator[bytes]] | None
) -> Iterator[tuple[int, bytes]]:
    """Regroup raw pieces into (offset, bytes) blocks that end at a newline.

    ``finish`` yields more bytes after the pieces, used only while a record is open
    (its ranged reads stop at the first newline).
    """
    carry: list[bytes] = []
    for data in pieces:
        cut = data.rfind(b"\n")
        if cut < 0:
            carry.append(data)
            continue
        head = data if cut == len(data) - 1 else data[: cut + 1]
        if carry:
            carry.append(head)
            head = b"".join(carry)
            carry = []
        yield offset, head
        offset += len(head)
        if cut + 1 < len(data):
            carry.append(data[cut + 1 :])
    if carry and finish is not None:
        for data in finish():
            cut = data.find(b"\n")
            if cut >= 0:
                carry.append(data[: cut + 1])
                break
            carry.append(data)
    if carry:
        yield offset, b"".join(carry)


def split_blocks(storage: Storage, split: Split, chunk: int) -> Iterator[tuple[int, bytes]]:
    """The raw lines a split owns, as (offset, bytes) blocks of complete lines."""
    uri, start, end, size = split.uri, split.start, split.end, split.object_size
    if split.compressed:
        yield from _complete_lines(0, _gunzip(storage, split, chunk), None)
        return

    def finish() -> Iterator[bytes]:
        pos, step = end, TAIL_STEP
        while pos < size:
            data = storage.read(uri, pos, min(pos + step, size))
            if not data:
                return
            pos += len(data)
            yield data
            step = min(step * 2, chunk)

    if start == 0:
        yield from _complete_lines(0, _ranges(storage, uri, 0, end, chunk), finish)
        return
    # Skip the record that started before this split: find the first newline at or
    # after byte start - 1; a newline at end - 1 starts a record the next split owns.
    pieces = _ranges(storage, uri, start - 1, end, chunk)
    pos = start - 1
    for data in pieces:
        cut = data.find(b"\n")
        if cut < 0:
            pos += len(data)
            continue
        first = pos + cut + 1
        if first >= end:
            return
        rest = data[cut + 1 :]
        body: Iterable[bytes] = _chain_first(rest, pieces)
        yield from _complete_lines(first, body, finish)
        return


def _chain_first(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


class _RangeStream(io.RawIOBase):
    """A sequential reader over an object made of ranged reads of ``chunk`` bytes (S3's
    streaming body closes itself at its end, which ``GzipFile`` does not expect)."""

    def __init__(self, storage: Storage, uri: str, size: int, chunk: int) -> None:
        super().__init__()
        self._storage, self._uri, self._size, self._chunk = storage, uri, size, chunk
        self._pos = 0
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        if not self._buf:
            if self._pos >= self._size:
                return 0
            self._buf = self._storage.read(
                self._uri, self._pos, min(self._pos + self._chunk, self._size)
            )
            if not self._buf:
                return 0
            self._pos += len(self._buf)
        n = min(len(target), len(self._buf))
        target[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _gunzip(storage: Storage, split: Split, chunk: int) -> Iterator[bytes]:
    raw = io.BufferedReader(_RangeStream(storage, split.uri, split.object_size, chunk), chunk)
    with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
        while True:
            data = stream.read(chunk)
            if not data:
                return
            yield data


def decode_lines(data: bytes) -> list[str]:
    """Lines of a block of complete lines, without ``\\n`` or a CRLF's ``\\r``."""
    text = data.decode("utf-8", "replace")
    if "\r" in text:  # CRLF line ends: dropped in one C pass (a lone CR stays)
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    elif lines[-1].endswith("\r"):  # the last line, without a line feed
        lines[-1] = lines[-1][:-1]
    return lines


def parse_jsonl(block: Block, lines: list[str], bad: BadRecordSink) -> None:
    """Fill ``block.records`` with the JSON values of the non-blank lines."""
    records: list[Any] = []
    line_of: list[int] = []
    loads = json.loads
    exact = True
    for i, line in enumerate(lines):
        try:
            records.append(loads(line))
        except ValueError as exc:
            exact = False
            if not line.strip():
                continue  # blank lines are not records
            bad(block.uri, block.offset + line_offset(block.data, i), f"invalid JSON: {exc}")
            continue
        line_of.append(i)
    block.records = records
    block.line_of = None if exact else line_of


def _subdivide(blocks: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    """Cut large blocks at newlines into pieces of about ``BLOCK_BYTES``, so memory
    checks between blocks happen often enough."""
    for offset, data in blocks:
        if len(data) <= 2 * BLOCK_BYTES:
            yield offset, data
            continue
        pos = 0
        size = len(data)
        while pos < size:
            cut = data.find(b"\n", pos + BLOCK_BYTES) if pos + BLOCK_BYTES < size else -1
            nxt = size if cut < 0 else cut + 1
            yield offset + pos, data[pos:nxt]
            pos = nxt


def fetched_whole(split: Split) -> bool:
    """Whether a split is read ahead in one GET: a whole, small, uncompressed object."""
    return (
        not split.compressed
        and split.start == 0
        and split.end == split.object_size
        and 0 < split.object_size <= SMALL_OBJECT
    )


Fetched = tuple[Split, "Future[bytes] | None"]


def prefetched(
    storage_of: Callable[[str], Storage],
    splits: Iterable[Split],
    fetchers: int,
    limit: int = PREFETCH_BYTES,
) -> Iterator[tuple[Split, bytes | None]]:
    """Each split, in order, with its object's bytes when it was fetched ahead (else None:
    the caller reads it with ranged reads, as a large split should be)."""
    if fetchers <= 1:
        yield from ((s, None) for s in splits)
        return
    window: deque[Fetched] = deque()
    held = 0
    pool = ThreadPoolExecutor(fetchers, thread_name_prefix="mrspec-get")

    def oldest() -> tuple[Split, bytes | None]:
        nonlocal held
        split, future = window.popleft()
        if future is None:
            return split, None
        held -= split.length
        return split, future.result()

    try:
        for split in splits:
            if not fetched_whole(split):
                while window:
                    yield oldest()
                yield split, None
                continue
            while window and (len(window) >= fetchers or held + split.length > limit):
                yield oldest()
            read = storage_of(split.uri).read
            # the caller's context goes with the read (whatever context variables the
            # task's environment keeps, such as a tracer's or a test harness's)
            run = contextvars.copy_context().run
            window.append((split, pool.submit(run, read, split.uri, 0, split.object_size)))
            held += split.length
        while window:
            yield oldest()
    finally:
        for _, future in window:
            if future is not None:
                future.cancel()
        pool.shutdown(wait=True)


def read_blocks(
    storage_of: Callable[[str], Storage],
    splits: Iterable[Split],
    input_format: str,
    bad: BadRecordSink,
    fetchers: int | None = None,
    prefetch_bytes: int | None = None,
) -> Iterator[Block]:
    """Every record of the splits, block by block, in the splits' order.

    ``fetchers``: GETs in flight for small whole objects; default ``FETCHERS`` for S3,
    1 (read in turn) for local files, where a read has no latency to hide.
    ``prefetch_bytes``: at most this much fetched ahead (default ``PREFETCH_BYTES``).
    """
    splits = list(splits)
    if fetchers is None:
        remote = any(s.uri.startswith("s3://") for s in splits)
        fetchers = FETCHERS if remote else 1
    limit = PREFETCH_BYTES if prefetch_bytes is None else prefetch_bytes
    for split, whole in prefetched(storage_of, splits, fetchers, limit):
        chunk = S3_CHUNK if split.uri.startswith("s3://") else LOCAL_CHUNK
        if whole is not None:
            raw = _complete_lines(0, [whole], None)
        else:
            raw = split_blocks(storage_of(split.uri), split, chunk)
        for offset, data in _subdivide(raw):
            lines = decode_lines(data)
            block = Block(split.uri, offset, data, lines)
            if input_format == "jsonl":
                parse_jsonl(block, lines, bad)
            yield block


@dataclass
class PairsBlock(Block):
    """Records of a later step: ``(key, value)`` pairs decoded from one shuffle frame of
    the step before's output part. ``offset`` counts records, not bytes: a bad record is
    located by its index in the part."""

    def record_offset(self, index: int) -> int:
        return self.offset + index


def pairs_blocks(storage_of: Callable[[str], Storage], uri: str) -> Iterator[Block]:
    """Every pair of a step's output part (the shuffle format, ``output_format`` pairs)
    as ``(key, value)`` records, one block per frame, streamed (one frame held)."""
    from mrspec.runtime.shuffle import FRAME_HEADER, RAW_FLAG, decode_frame

    done = 0
    with storage_of(uri).open_read(uri) as stream:
        while header := stream.read(FRAME_HEADER.size):
            if len(header) < FRAME_HEADER.size:
                raise ValueError(f"truncated step output {uri} after {done} records")
            (word,) = FRAME_HEADER.unpack(header)
            payload = stream.read(word & ~RAW_FLAG)
            if len(payload) != word & ~RAW_FLAG:
                raise ValueError(f"truncated step output {uri} after {done} records")
            records = [(key, value) for key, values in decode_frame(payload, word & RAW_FLAG)
                       for value in values]
            yield PairsBlock(uri, done, payload, records)
            done += len(records)
