"""Map items stay under Step Functions' 256 KiB whatever the number of objects."""

from __future__ import annotations

import json
from pathlib import Path

from mrspec.plan import items
from mrspec.plan.model import MapTask
from mrspec.plan.planner import cut_splits, pack_bins
from mrspec.storage import ObjectInfo
from mrspec.storage.local import LocalStorage


def small_objects(n: int, size: int = 20 * 1024) -> list[ObjectInfo]:
    return [ObjectInfo(f"s3://input-bucket/logs/2026/12/01/part-{i:07d}.jsonl", size) for i in range(n)]


def test_a_bin_of_200k_objects_worth_of_splits_has_items_under_the_limit() -> None:
    # issue 12's case: 200,000 objects of 20 KiB in 128 MiB bins, ~6,550 objects a bin
    tasks = pack_bins(cut_splits(small_objects(200_000), 64 * 1024**2), 128 * 1024**2)
    inline = max(len(json.dumps(t.to_json()).encode()) for t in tasks)
    assert inline > items.ITEM_LIMIT  # the full task JSON would be refused by AWS
    sizes = [items.item_bytes(t) for t in tasks]
    assert max(sizes) <= items.ITEM_BUDGET < items.ITEM_LIMIT
    # item_bytes is the size of what the manifest holds, item for item
    manifest = json.loads(items.map_manifest(tasks))
    assert [len(json.dumps(i).encode()) for i in manifest] == sizes
    assert all("shard" in i for i in manifest)


def test_a_task_that_fits_stays_inline_and_needs_no_shard() -> None:
    tasks = pack_bins(cut_splits(small_objects(10), 1024**2), 128 * 1024**2)
    assert items.map_item(tasks[0]) == tasks[0].to_json()
    assert list(items.shards(tasks)) == []


def test_a_shard_reference_resolves_to_the_same_task(tmp_path: Path) -> None:
    tasks = pack_bins(cut_splits(small_objects(5_000), 1024**2), 128 * 1024**2)
    work = str(tmp_path / "work")
    assert items.write_shards(tasks, work, lambda uri: LocalStorage()) == len(tasks) == 1
    item = json.loads(items.map_manifest(tasks))[0]
    assert item == {"task_id": 0, "shard": "manifests/map-shards/00000.json", "splits_in_shard": 5000}
    assert items.resolve(item, work, lambda uri: LocalStorage()) == tasks[0]
    assert (tmp_path / "work" / "manifests" / "map-shards" / "00000.json").is_file()


def test_an_inline_item_resolves_without_reading_storage() -> None:
    task = MapTask(7, ())

    def no_storage(uri: str) -> LocalStorage:
        raise AssertionError("an inline item must not read storage")

    assert items.resolve(task.to_json(), "/nowhere", no_storage) == task


def test_the_local_engine_runs_a_task_from_its_shard(tmp_path: Path) -> None:
    from local_jobs import WORDCOUNT, make_job, reference_counts, tsv_counts

    from mrspec.local.engine import LocalOptions, run_local
    from mrspec.plan import plan_job

    folder = tmp_path / "input"
    folder.mkdir()
    for i in range(3000):
        (folder / f"object-with-a-long-name-{i:05d}.txt").write_text(f"w{i % 11} shard\n")
    spec = make_job(tmp_path, WORDCOUNT, combiner="combiner", bin_size=64 * 1024**2)
    plan = plan_job(spec)
    assert len(plan.map_tasks) == 1 and "shard" in items.map_item(plan.map_tasks[0])
    run_local(spec, LocalOptions(workers=1))
    assert tsv_counts(spec.output.prefix) == reference_counts(folder)


class PagedListing:
    """A listing served a page of 1,000 at a time; counts the objects handed out."""

    def __init__(self, objects: int) -> None:
        self.objects = objects
        self.handed = 0

    def list(self, prefix: str):  # type: ignore[no-untyped-def]
        for start in range(0, self.objects, 1000):
            for i in range(start, min(start + 1000, self.objects)):
                self.handed += 1
                name = f"_hidden-{i}" if i % 100 == 99 else f"part-{i:06d}"
                yield ObjectInfo(f"{prefix}{name}", 1 + i % 50)


def test_planning_a_paged_listing_keeps_every_data_object_once_in_order() -> None:
    from dataclasses import replace

    from mrspec.plan import plan_job
    from mrspec.spec.loader import load_spec

    spec = load_spec(Path(__file__).resolve().parents[1] / "specs" / "wordcount" / "job.yaml")
    # two prefixes, the second inside the first: its objects are planned once
    spec = replace(spec, input=replace(spec.input, prefixes=("s3://b/in/", "s3://b/in/")))
    listing = PagedListing(25_000)
    plan = plan_job(spec, lambda prefix: listing)  # type: ignore[arg-type,return-value]
    expected = [f"s3://b/in/part-{i:06d}" for i in range(25_000) if i % 100 != 99]
    assert [o.uri for o in plan.objects] == expected
    assert [s.uri for t in plan.map_tasks for s in t.splits] == expected
    assert listing.handed == 50_000
    assert plan.listing_seconds > 0 and plan.to_json()["listing_seconds"] >= 0


def test_the_run_layout_names_the_shard_items_writes(tmp_path: Path) -> None:
    from mrspec.runtime import layout

    tasks = pack_bins(cut_splits(small_objects(5_000), 1024**2), 128 * 1024**2)
    work = str(tmp_path / "work")
    items.write_shards(tasks, work, lambda uri: LocalStorage())
    written = [str(p) for p in (tmp_path / "work").rglob("*.json")]
    assert written == [layout.map_shard_uri(work, tasks[0].task_id)]
    assert written[0].startswith(f"{work}/{layout.MANIFESTS_DIR}/")
