"""Units, planning and the CLI entry point: the pieces every other module builds on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mrspec.plan.planner import cut_splits, pack_bins
from mrspec.storage import ObjectInfo, is_hidden
from mrspec.units import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [("64MiB", 64 * 2**20), ("1GiB", 2**30), ("500MB", 500 * 10**6), (4096, 4096), ("1.5K", 1536)],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["12 parsecs", "MiB", "-5", True])
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), [("90s", 90), ("5m", 300), (42, 42), ("1h", 3600)])
def test_parse_duration(text: str | int, expected: int) -> None:
    assert parse_duration(text) == expected


def test_splits_cover_every_byte_once_and_bins_respect_size() -> None:
    objects = [ObjectInfo(f"f{i}", size) for i, size in enumerate([0, 1, 9, 10, 11, 37])]
    splits = cut_splits(objects, 10)
    for obj in objects:
        ranges = sorted((s.start, s.end) for s in splits if s.uri == obj.uri)
        covered = [b for start, end in ranges for b in range(start, end)]
        assert covered == list(range(obj.size))
        assert all(end - start <= 10 for start, end in ranges)
    tasks = pack_bins(splits, 25)
    assert [s for t in tasks for s in t.splits] == splits
    assert all(t.input_bytes <= 25 for t in tasks)
    assert [t.task_id for t in tasks] == list(range(len(tasks)))


def test_compressed_objects_are_one_split_even_beyond_the_bin() -> None:
    splits = cut_splits([ObjectInfo("big.gz", 100), ObjectInfo("small", 5)], 10)
    assert splits[0].compressed and (splits[0].start, splits[0].end) == (0, 100)
    tasks = pack_bins(splits, 20)
    assert len(tasks) == 2 and tasks[0].splits == (splits[0],)


def test_hidden_objects() -> None:
    assert is_hidden("s3://b/out/_SUCCESS") and is_hidden("/x/.part-0.crc")
    assert not is_hidden("s3://b/in/part_1.txt")


def test_cli_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mrspec", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("validate", "schema", "plan", "apply", "compile", "destroy", "runs"):
        assert name in out
