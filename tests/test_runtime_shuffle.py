"""The shuffle format and the k-way merge, against sorted() on random runs."""

from __future__ import annotations

import io
import itertools
import random
from itertools import chain
from pathlib import Path
from typing import Any

import pytest

from mrspec.runtime import shuffle
from mrspec.runtime.shuffle import merge_blocks, merge_runs, read_segment_blocks, write_object
from mrspec.storage.local import LocalStorage


def random_runs(rng: random.Random) -> list[list[list[tuple[str, list[Any]]]]]:
    runs = []
    for _ in range(rng.randint(0, 6)):
        keys = sorted(rng.choice("abcdefgh") * rng.randint(1, 3) for _ in range(rng.randint(0, 40)))
        entries = [(k, [rng.randint(0, 9)]) for k in keys]
        blocks, i = [], 0
        while i < len(entries):
            n = rng.randint(0, 7)  # empty blocks too
            blocks.append(entries[i : i + n])
            i += n
        runs.append(blocks)
    return runs


@pytest.mark.parametrize("seed", range(200))
def test_merge_blocks_equals_sorted(seed: int) -> None:
    rng = random.Random(seed)
    runs = random_runs(rng)
    merged = list(chain.from_iterable(merge_blocks([iter(r) for r in runs])))
    everything = [e for run in runs for block in run for e in block]
    assert [k for k, _ in merged] == sorted(k for k, _ in everything)
    assert sorted(merged) == sorted(everything)


def test_merge_runs_combines_equal_keys() -> None:
    runs = [iter([[("a", [1]), ("b", [2])]]), iter([[("b", [3])], [("c", [4])]])]
    got = list(merge_runs(runs, lambda key, values: [sum(values)]))
    assert got == [("a", [1]), ("b", [5]), ("c", [4])]


@pytest.mark.parametrize("compress", [True, False])
def test_segments_round_trip_with_a_hot_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: bool
) -> None:
    monkeypatch.setattr(shuffle, "BLOCK_ENTRIES", 2)
    monkeypatch.setattr(shuffle, "MAX_FRAME_BYTES", 20_000)
    parts = [
        [("a", list(range(10))), ("hot", list(range(100_000))), ("z", ["é", None, {"x": [1.5]}])],
        [],
        [("only", [True])],
    ]
    buf = io.BytesIO()
    index = write_object(buf, parts, compress)
    path = tmp_path / "obj.shuffle"
    path.write_bytes(buf.getvalue())
    # every frame header says whether its payload is compressed
    data, pos, frames = buf.getvalue(), 0, 0
    while pos < len(data):
        (header,) = shuffle.FRAME_HEADER.unpack_from(data, pos)
        assert bool(header & shuffle.RAW_FLAG) is not compress
        pos += 4 + (header & ~shuffle.RAW_FLAG)
        frames += 1
    assert pos == len(data) and frames > 3
    assert [records for _, _, records in index] == [100_013, 0, 1]
    for p, (offset, length, _) in enumerate(index):
        for window in (64, 10_000, 10**7):
            blocks = read_segment_blocks(LocalStorage(), str(path), offset, length, window)
            entries = [entry for block in blocks for entry in block]
            regrouped: dict[str, list[Any]] = {}
            for key, values in entries:
                assert len(values) <= shuffle.MAX_ENTRY_VALUES
                regrouped.setdefault(key, []).extend(values)
            assert regrouped == dict(parts[p])


@pytest.mark.parametrize("gather", [1, 3, 4096])  # 1 and 3: most keys take the streaming path
@pytest.mark.parametrize("seed", range(50))
def test_grouped_streams_each_key_once(seed: int, gather: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from mrspec.runtime.shuffle import grouped

    monkeypatch.setattr(shuffle, "GATHER_VALUES", gather)
    rng = random.Random(seed)
    keys = sorted(rng.choice("abcd") for _ in range(rng.randint(0, 30)))
    entries = [(k, [rng.randint(0, 9) for _ in range(rng.randint(1, 3))]) for k in keys]
    expected: dict[str, list[int]] = {}
    for k, vs in entries:
        expected.setdefault(k, []).extend(vs)
    got: dict[str, list[int]] = {}
    track: list[object] = [None, 0]
    for key, values in grouped(iter(entries), track):
        assert track == [key, len(got) + 1]
        assert key not in got
        take = rng.choice([None, 0, 1, 2])  # readers may stop early
        got[key] = list(values) if take is None else list(itertools.islice(values, take))
        if take is not None:
            expected[key] = expected[key][:take]
    assert got == expected
