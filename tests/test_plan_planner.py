"""Splits and bins (``mrspec.plan.planner``): every byte read once, bins within their size."""

from __future__ import annotations

from mrspec.plan.planner import cut_splits, pack_bins
from mrspec.storage import ObjectInfo


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
