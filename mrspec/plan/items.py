"""Map items: what one map task's Distributed Map item (and local task payload) holds.

Step Functions refuses a Distributed Map item, or any state's input, over 256 KiB, and it
would do so only once the stack is deployed and the Map phase runs. A task's full JSON
(``MapTask.to_json``) grows with its number of splits: ~100 bytes a split, so a bin of
thousands of small objects does not fit. So each task's item is, by construction, one of:

* the task itself (``{"task_id": 3, "splits": [...]}``) when it encodes within
  ``ITEM_BUDGET``;
* otherwise a reference to a *manifest shard*, ``{"task_id": 3, "shard": "manifests/
  map-shards/00003.json", "splits_in_shard": 6450}``, an object under the run's work
  prefix holding the task's full JSON. The driver writes the shards with the other
  manifests; the map handler (and the local worker) read the shard back (``resolve``).

``ITEM_BUDGET`` leaves room under AWS's 262,144 bytes for the rest of the child's input
(the run's execution input, the work prefix, the attempt) and for the re-encoding Step
Functions does. This module owns the item encoding and the shard key layout: the driver,
the local engine, the handler and the cost model (``item_bytes``) all go through it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mrspec.plan.model import MapTask
from mrspec.storage import Storage, storage_for

ITEM_LIMIT = 262_144  # AWS: a Distributed Map item / state input, in bytes
ITEM_BUDGET = 200 * 1024  # what mrspec lets a map task's item take
SHARDS_DIR = "manifests/map-shards"  # under the run's work prefix (see runtime.layout)


def encode(value: Any) -> bytes:
    """The bytes a manifest item takes (the driver's encoding; ASCII-escaped, so a
    non-ASCII key never makes Step Functions' count larger than ours)."""
    return json.dumps(value).encode()


def shard_key(task_id: int) -> str:
    """The shard's key relative to the run's work prefix."""
    return f"{SHARDS_DIR}/{task_id:05d}.json"


def needs_shard(task: MapTask) -> bool:
    return len(encode(task.to_json())) > ITEM_BUDGET


def map_item(task: MapTask) -> dict[str, Any]:
    """The task's item in the map manifest: the task, or a reference to its shard."""
    inline = task.to_json()
    if len(encode(inline)) <= ITEM_BUDGET:
        return inline
    return {
        "task_id": task.task_id,
        "shard": shard_key(task.task_id),
        "splits_in_shard": len(task.splits),
    }


def item_bytes(task: MapTask) -> int:
    """Encoded size in bytes of the task's map item (at most ``ITEM_BUDGET`` plus a
    shard reference's few dozen bytes, whatever the number of objects)."""
    return len(encode(map_item(task)))


def map_manifest(tasks: Iterable[MapTask]) -> bytes:
    """The map manifest: a JSON array with one item per task (what ItemReader reads)."""
    return encode([map_item(t) for t in tasks])


def shards(tasks: Iterable[MapTask]) -> Iterator[tuple[str, bytes]]:
    """(key relative to the work prefix, body) of every shard the tasks need."""
    for task in tasks:
        if needs_shard(task):
            yield shard_key(task.task_id), encode(task.to_json())


def shard_uri(work: str, key: str) -> str:
    return f"{work.rstrip('/')}/{key}"


def write_shards(
    tasks: Iterable[MapTask], work: str, storage_of: Callable[[str], Storage] = storage_for
) -> int:
    """Write the tasks' shards under the work prefix ``work``; return how many."""
    count = 0
    for key, body in shards(tasks):
        uri = shard_uri(work, key)
        storage_of(uri).write(uri, body)
        count += 1
    return count


def resolve(
    item: dict[str, Any], work: str, storage_of: Callable[[str], Storage] = storage_for
) -> MapTask:
    """The map task an item stands for, reading its shard when it is a reference."""
    if "shard" not in item:
        return MapTask.from_json(item)
    uri = shard_uri(work, str(item["shard"]))
    task = MapTask.from_json(json.loads(storage_of(uri).read(uri)))
    if task.task_id != int(item["task_id"]):
        raise ValueError(f"map shard {uri} holds task {task.task_id}, not {item['task_id']}")
    return task
