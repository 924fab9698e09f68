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
