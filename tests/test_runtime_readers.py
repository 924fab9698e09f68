"""Record readers: every record read exactly once, whatever the split size, on awkward bytes."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from mrspec.plan.planner import cut_splits
from mrspec.runtime import readers
from mrspec.runtime.readers import read_blocks
from mrspec.storage import ObjectInfo
from mrspec.storage.local import LocalStorage


def reference_lines(data: bytes) -> list[str]:
    """Plain Python: split at LF, drop the empty piece after a final LF, strip one CR."""
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    return [
        (p[:-1] if p.endswith(b"\r") else p).decode("utf-8", errors="replace") for p in pieces
    ]


def read_all(path: Path, split_size: int, fmt: str = "text") -> tuple[list[Any], list[tuple[str, int, str]]]:
    bad: list[tuple[str, int, str]] = []
    info = ObjectInfo(str(path), path.stat().st_size)
    splits = cut_splits([info], split_size)
    records: list[Any] = []
    for block in read_blocks(lambda uri: LocalStorage(), splits, fmt, lambda u, o, e: bad.append((u, o, e))):
        records.extend(block.records)
    return records, bad


AWKWARD = (
    b"first line\r\n"
    b"\n"
    b"\r\n"
    b"caf\xc3\xa9 \xe2\x82\xac and a bad byte \xff\xfe here\n"
    b"tab\tinside\ttabs\n"
    b"a lone \r in the middle\r\n"
    b"   \n"
    + b"x" * 300
    + b"\n"
    b"\xe2\x82"  # a truncated UTF-8 sequence at the end of a line
    b"\nlast line without newline"
)


@pytest.mark.parametrize("split_size", [1, 2, 3, 5, 7, 11, 13, 64, 301, 10**6])
def test_every_record_once_for_any_split_size(tmp_path: Path, split_size: int) -> None:
    path = tmp_path / "awkward.txt"
    path.write_bytes(AWKWARD)
    records, bad = read_all(path, split_size)
    assert records == reference_lines(AWKWARD)
    assert not bad
    assert records[-1] == "last line without newline"
    assert records[0] == "first line"  # CRLF stripped
    assert "\ufffd" in records[3]  # bad bytes replaced, never an error


@pytest.mark.parametrize("trailing", [b"", b"\n", b"\r\n", b"\n\n"])
def test_record_crossing_every_boundary(tmp_path: Path, trailing: bytes) -> None:
    rng = random.Random(7)
    lines = [("w" * rng.randint(0, 40)).encode() for _ in range(200)]
    data = b"\n".join(lines) + trailing
    path = tmp_path / "lines.txt"
    path.write_bytes(data)
    for split_size in (4, 9, 17, 33):
        records, _ = read_all(path, split_size)
        assert records == reference_lines(data), split_size


def test_very_long_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "LOCAL_CHUNK", 4096)
    monkeypatch.setattr(readers, "TAIL_STEP", 512)
    rng = random.Random(3)
    lines = [bytes(rng.choice(b"abc ") for _ in range(n)) for n in (100_000, 3, 250_000, 0, 70_000)]
    data = b"\n".join(lines)
    path = tmp_path / "long.txt"
    path.write_bytes(data)
    for split_size in (1000, 65_536, 10**7):
        records, _ = read_all(path, split_size)
        assert records == reference_lines(data), split_size


def test_empty_file_has_no_splits(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert read_all(path, 10) == ([], [])


def test_gzip_object_is_read_whole(tmp_path: Path) -> None:
    data = AWKWARD * 50
    path = tmp_path / "data.txt.gz"
    path.write_bytes(gzip.compress(data))
    records, _ = read_all(path, 16)  # compressed: one split whatever the size
    assert records == reference_lines(data)


def test_jsonl_bad_lines_are_reported_with_offsets(tmp_path: Path) -> None:
    lines = [b'{"a": 1}', b"", b"not json", b'[1, 2]', b"  ", b'{"b": "\xc3\xa9"}', b"{broken", b"7"]
    data = b"\r\n".join(lines)
    path = tmp_path / "x.jsonl"
    path.write_bytes(data)
    offsets = []
    pos = 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 2
    for split_size in (3, 10, 10**6):
        records, bad = read_all(path, split_size, "jsonl")
        assert records == [{"a": 1}, [1, 2], {"b": "é"}, 7]
        assert [(uri, off) for uri, off, _ in bad] == [(str(path), offsets[2]), (str(path), offsets[6])]
        assert all("invalid JSON" in err for _, _, err in bad)


def test_block_record_offsets(tmp_path: Path) -> None:
    data = "".join(json.dumps({"i": i, "pad": "é" * (i % 5)}) + "\n" for i in range(500)).encode()
    path = tmp_path / "o.jsonl"
    path.write_bytes(data)
    expected = [0]
    for line in data.split(b"\n")[:-1]:
        expected.append(expected[-1] + len(line) + 1)
    info = ObjectInfo(str(path), len(data))
    seen = []
    for block in read_blocks(lambda uri: LocalStorage(), cut_splits([info], 1000), "jsonl", print):
        for i, record in enumerate(block.records):
            seen.append((record["i"], block.record_offset(i)))
    assert seen == [(i, expected[i]) for i in range(500)]


@pytest.mark.parametrize("seed", range(5))
def test_decode_lines_drops_only_the_cr_of_a_line_end(seed: int) -> None:
    # a line at a time, the obvious way: split at LF, then drop one CR at each line's end
    def reference(data: bytes) -> list[str]:
        text = data.decode("utf-8", "replace")
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        return [line[:-1] if line.endswith("\r") else line for line in lines]

    rng = random.Random(seed)
    for _ in range(4000):
        data = bytes(rng.choice(b"ab\r\n\xff") for _ in range(rng.randint(0, 14)))
        assert readers.decode_lines(data) == reference(data), data


class SlowStorage:
    """Objects in memory; each read waits ``latency`` seconds (an S3 GET's first byte) and
    counts how many reads are in flight at once."""

    def __init__(self, objects: dict[str, bytes], latency: float = 0.002) -> None:
        import threading

        self.objects = objects
        self.latency = latency
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = self.reads = 0

    def read(self, uri: str, start: int = 0, end: int | None = None) -> bytes:
        import time

        with self.lock:
            self.in_flight += 1
            self.reads += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.latency)
        with self.lock:
            self.in_flight -= 1
        if uri.endswith("broken"):
            raise OSError(f"cannot read {uri}")
        return self.objects[uri][start:end]


def many_objects(n: int) -> dict[str, bytes]:
    rng = random.Random(n)
    out = {}
    for i in range(n):
        lines = [f"{i}-{j} " + "x" * rng.randint(0, 40) for j in range(rng.randint(0, 6))]
        out[f"s3://in/o{i:05d}"] = ("\n".join(lines) + ("\n" if i % 3 else "")).encode()
    # one large object, read with ranged reads between the small ones
    out["s3://in/o00050-large"] = b"".join(b"large %d\n" % k for k in range(300_000))
    return dict(sorted(out.items()))


def read_records(storage: SlowStorage, fetchers: int, split_size: int) -> list[Any]:
    infos = [ObjectInfo(uri, len(data)) for uri, data in storage.objects.items()]
    records: list[Any] = []
    for block in read_blocks(lambda uri: storage, cut_splits(infos, split_size), "text", lambda *a: None, fetchers):
        records.extend(block.records)
    return records


def test_small_objects_are_fetched_concurrently_and_reach_the_mapper_in_order() -> None:
    objects = many_objects(300)
    expected = [line for data in objects.values() for line in reference_lines(data)]
    one_at_a_time = SlowStorage(objects)
    assert read_records(one_at_a_time, 1, 1024**2) == expected
    assert one_at_a_time.most_in_flight == 1
    ahead = SlowStorage(objects)
    assert read_records(ahead, 8, 1024**2) == expected
    assert 2 < ahead.most_in_flight <= 8


def test_prefetch_holds_a_bounded_number_of_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = {f"s3://in/o{i:03d}": b"y" * 999 + b"\n" for i in range(100)}
    monkeypatch.setattr(readers, "PREFETCH_BYTES", 3_000)  # three objects at most
    storage = SlowStorage(objects)
    assert len(read_records(storage, 16, 1024**2)) == 100
    assert storage.most_in_flight <= 3


def test_a_failed_read_surfaces_at_its_place_in_the_order() -> None:
    objects = {f"s3://in/o{i:03d}": b"line\n" for i in range(40)}
    objects["s3://in/o020-broken"] = b"never read\n"
    storage = SlowStorage(dict(sorted(objects.items())))
    infos = [ObjectInfo(uri, len(data)) for uri, data in storage.objects.items()]
    seen: list[str] = []
    with pytest.raises(OSError, match="o020-broken"):
        for block in read_blocks(lambda uri: storage, cut_splits(infos, 1024), "text", lambda *a: None, 8):
            seen.append(block.uri)
    assert seen == list(storage.objects)[:21]
