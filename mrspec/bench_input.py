"""Input-at-scale benchmarks: planning a huge listing, and reading many small objects.

    python -m mrspec.bench_input listing [--objects 1000000]
    python -m mrspec.bench_input reads [--objects 200000] [--latency-ms 10] [--tasks 1]

``listing`` plans the word-count spec over a fake storage of ``--objects`` objects
served in pages of 1,000 (S3's ListObjectsV2 page), and prints the time to list alone
(the generator, no planner), the time to plan on top of it, and the peak memory traced
by ``tracemalloc`` in a second, traced run (tracing slows Python down ~3x, so times come
from the untraced run).

``reads`` plans ``--objects`` objects of ``--object-kib`` KiB into map tasks with the
real planner, then reads the records of ``--tasks`` of those tasks through the map
task's reader from an in-memory storage that waits ``--latency-ms`` before answering each
GET (S3's time to first byte), once one GET at a time and once with the reader's
concurrent fetches, and prints both and the speed-up. The records of both runs are
compared (same records, same order).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import threading
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from mrspec.plan import items
from mrspec.plan.model import MapTask
from mrspec.plan.planner import plan_job
from mrspec.runtime import readers
from mrspec.spec.loader import load_spec
from mrspec.spec.model import JobSpec
from mrspec.storage import ObjectInfo, Storage

PAGE = 1000  # keys per ListObjectsV2 page
SPEC = Path(__file__).resolve().parents[1] / "specs" / "wordcount" / "job.yaml"


def _uri(i: int) -> str:
    return f"s3://bench-input/logs/2026/12/{i % 28 + 1:02d}/part-{i:07d}.jsonl"


class FakeListing:
    """``--objects`` objects of one size, listed a page of 1,000 at a time."""

    def __init__(self, objects: int, size: int) -> None:
        self.objects, self.size = objects, size

    def pages(self) -> Iterator[list[ObjectInfo]]:
        for start in range(0, self.objects, PAGE):
            stop = min(start + PAGE, self.objects)
            yield [ObjectInfo(_uri(i), self.size) for i in range(start, stop)]

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for page in self.pages():
            yield from page


class SlowStorage:
    """In-memory objects; each read first waits ``latency`` seconds, like a GET."""

    def __init__(self, size: int, latency: float) -> None:
        line = b'{"user": 12345, "event": "click", "page": "/home"}\n'
        self.body = (line * (size // len(line) + 1))[:size]
        self.latency = latency
        self.lock = threading.Lock()
        self.gets = 0

    def read(self, uri: str, start: int = 0, end: int | None = None) -> bytes:
        time.sleep(self.latency)
        with self.lock:
            self.gets += 1
        return self.body[start:end]


def bench_spec(prefixes: Sequence[str] = ("s3://bench-input/logs/",)) -> JobSpec:
    spec = load_spec(SPEC)
    return dataclasses.replace(
        spec, input=dataclasses.replace(spec.input, prefixes=tuple(prefixes))
    )


def listing(objects: int, size: int) -> dict[str, Any]:
    spec = bench_spec()
    fake = FakeListing(objects, size)
    clock = time.perf_counter()
    listed = sum(len(page) for page in fake.pages())
    list_seconds = time.perf_counter() - clock
    clock = time.perf_counter()
    plan = plan_job(spec, lambda prefix: cast(Storage, fake))
    plan_seconds = time.perf_counter() - clock
    largest = max(items.item_bytes(t) for t in plan.map_tasks)
    del plan
    tracemalloc.start()
    plan_job(spec, lambda prefix: cast(Storage, fake))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "objects": listed,
        "listing_alone_s": round(list_seconds, 2),
        "plan_job_s": round(plan_seconds, 2),
        "planning_beyond_listing_s": round(plan_seconds - list_seconds, 2),
        "peak_traced_mb": round(peak / 1e6, 1),
        "bytes_per_object": round(peak / max(listed, 1)),
        "largest_item_bytes": largest,
    }


def _read_task(storage: SlowStorage, task: MapTask, fetchers: int) -> tuple[float, list[Any]]:
    clock = time.perf_counter()
    records: list[Any] = []
    blocks = readers.read_blocks(
        lambda uri: cast(Storage, storage), task.splits, "text", print, fetchers
    )
    for block in blocks:
        records.extend(block.records)
    return time.perf_counter() - clock, records


def reads(objects: int, size: int, latency: float, tasks: int) -> dict[str, Any]:
    plan = plan_job(bench_spec(), lambda prefix: cast(Storage, FakeListing(objects, size)))
    sample = plan.map_tasks[:tasks]
    storage = SlowStorage(size, latency)
    serial = concurrent = 0.0
    for task in sample:
        one_s, one = _read_task(storage, task, 1)
        many_s, many = _read_task(storage, task, readers.FETCHERS)
        if one != many:
            raise SystemExit("the concurrent reader's records differ from one GET at a time")
        serial += one_s
        concurrent += many_s
    per_task = sum(len(t.splits) for t in sample) / len(sample)
    return {
        "objects": objects,
        "object_bytes": size,
        "map_tasks": len(plan.map_tasks),
        "objects_per_task": round(per_task),
        "largest_item_bytes": max(items.item_bytes(t) for t in plan.map_tasks),
        "latency_ms": latency * 1000,
        "tasks_measured": len(sample),
        "one_get_at_a_time_s": round(serial, 2),
        "concurrent_s": round(concurrent, 2),
        "fetchers": readers.FETCHERS,
        "speedup": round(serial / concurrent, 1),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mrspec.bench_input", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    lst = sub.add_parser("listing", help="plan time and memory over a huge listing")
    lst.add_argument("--objects", type=int, default=1_000_000)
    lst.add_argument("--object-kib", type=int, default=20)
    rd = sub.add_parser("reads", help="a map task's reads of many small objects")
    rd.add_argument("--objects", type=int, default=200_000)
    rd.add_argument("--object-kib", type=int, default=20)
    rd.add_argument("--latency-ms", type=float, default=10.0)
    rd.add_argument("--tasks", type=int, default=1, help="map tasks measured")
    args = parser.parse_args(argv)
    size = args.object_kib * 1024
    if args.what == "listing":
        out = listing(args.objects, size)
    else:
        out = reads(args.objects, size, args.latency_ms / 1000, args.tasks)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
