"""The reduce task: merge one partition of the last exchange level, group, reduce, write a part.

Its inputs are at most F exchange objects (the map outputs, or the last merge level's):
one GET of each object's head for the index, then that partition's segment streamed in
windows, so its requests are about 2 x F (F for small objects) whatever M is.
"""

from __future__ import annotations

import inspect
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from itertools import chain, starmap
from operator import itemgetter
from typing import Any

from mrspec import builtins
from mrspec.plan.model import ShuffleInputs
from mrspec.runtime.aggregate import totals
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.errors import TaskFailedError, UserCodeError
from mrspec.runtime.exchange import open_all
from mrspec.runtime.layout import shuffle_uri, step_work_prefix
from mrspec.runtime.loading import load_entrypoint, task_scope
from mrspec.runtime.maptask import describe
from mrspec.runtime.output import PartWriter
from mrspec.runtime.results import (
    MapResult,
    MergeResult,
    PartFile,
    ReduceResult,
    TaskResult,
    store_result,
)
from mrspec.runtime.shuffle import Entry, grouped, merge_blocks
from mrspec.runtime.stats import peak_memory_bytes
from mrspec.runtime.values import checked_pairs
from mrspec.storage import storage_for

MIN_WINDOW = 64 * 1024
MAX_WINDOW = 8 * 1024**2

_first = itemgetter(0)
_second = itemgetter(1)


def read_window(memory_mb: int, runs: int) -> int:
    """Bytes per ranged read of one run: a quarter of the cap shared by all runs, each
    holding two windows (one being decoded, one in flight)."""
    share = memory_mb * 1024**2 // 4 // max(1, runs) // 2
    return max(MIN_WINDOW, min(MAX_WINDOW, share))


def input_uris(
    work_prefix: str, sources: Sequence[TaskResult] | None, inputs: ShuffleInputs | None
) -> list[str]:
    """The exchange objects a task reads: named by the plan (``inputs``) or, for a caller
    holding producer results, by those results."""
    if inputs is not None:
        return [shuffle_uri(work_prefix, inputs.level, i) for i in inputs.ids]
    if sources is None:
        raise TaskFailedError("a reduce task needs its inputs: the plan's or the producers' results")
    uris = []
    for r in sources:
        if not isinstance(r, (MapResult, MergeResult)) or r.shuffle is None:
            raise TaskFailedError(f"{r.kind} task {r.task_id} wrote no exchange object to reduce")
        uris.append(r.shuffle.uri)
    return uris


def _outputs(
    reducer: Callable[..., Any], merged: Iterator[Entry], name: str, track: list[Any]
) -> Iterator[Any]:
    """The job's reducer over the merged entries grouped by key: its output pairs."""
    call = reducer
    if not inspect.isgeneratorfunction(reducer):

        def call(key: str, values: Iterator[Any]) -> Any:
            return checked_pairs(reducer(key, values), reducer, key, name)

    # starmap and chain run the per-key loop in C: one generator step per key fewer
    return chain.from_iterable(starmap(call, grouped(merged, track)))


def run_reduce_task(
    config: TaskConfig,
    partition: int,
    map_results: Sequence[TaskResult] | None,
    *,
    work_prefix: str,
    scratch_dir: str,
    attempt: int,
    inputs: ShuffleInputs | None = None,
) -> ReduceResult:
    started = time.time()
    clock = time.perf_counter()
    name = f"reduce task {partition}"
    if config.reduce_entrypoint is None:
        raise TaskFailedError(f"{name}: the job is map-only; it has no reduce tasks")
    if not 0 <= partition < config.partitions:
        raise TaskFailedError(f"{name}: partition out of range 0..{config.partitions - 1}")
    work_prefix = step_work_prefix(work_prefix, config.step)
    found = [(r, r.header.index.get(partition)) for r in open_all(input_uris(work_prefix, map_results, inputs))]
    readers = [r for r, segment in found if segment is not None]
    input_records = sum(segment.records for _, segment in found if segment is not None)
    counters: Counter[str] = Counter()
    with task_scope(config.params) as context:
        agg = builtins.aggregator(config.reduce_entrypoint)
        reducer: Callable[..., Any] | None = None
        if agg is None:
            reducer = load_entrypoint(config.code_path, config.reduce_entrypoint, "reducer")
        window = read_window(config.reduce_memory_mb, len(readers))
        runs: list[Iterator[list[Entry]]] = [r.segment_blocks(partition, window) for r in readers]
        uri = config.part_uri(work_prefix, partition)
        track: list[Any] = [None, 0]  # the key being reduced, keys so far
        outputs: Iterator[Any]
        if reducer is None:
            assert agg is not None
            # values a built-in combiner of the same kind let into the shuffle are checked
            checked = builtins.aggregator(config.combiner_entrypoint) is agg
            outputs = totals(merge_blocks(runs), agg, name, track, checked)
        else:
            outputs = _outputs(reducer, chain.from_iterable(merge_blocks(runs)), name, track)
        with storage_for(uri).open_write(uri) as out:
            writer = PartWriter(out, config.output_format)
            try:
                writer.write_pairs(outputs)
            except (TaskFailedError, MemoryError):
                raise
            except Exception as exc:
                raise UserCodeError(
                    f"{name}: the reducer failed on key {track[0]!r}: {describe(exc, reducer)}",
                    hint="a reducer must yield (key, value) pairs with JSON-serialisable values",
                ) from exc
            writer.flush()
        groups = track[1]
        counters.update(
            reduce_input_groups=groups,
            reduce_input_records=input_records,
            output_records=writer.records,
            output_bytes=writer.bytes,
        )
        result = ReduceResult(
            task_id=partition,
            attempt=attempt,
            counters=dict(counters),
            user_counters=dict(context.counters),
            outputs=(PartFile(uri, writer.bytes, writer.records),),
            shuffle_segments=len(readers),
            started=started,
            seconds=round(time.perf_counter() - clock, 6),
            peak_memory_bytes=peak_memory_bytes(),
            memory_cap_mb=config.reduce_memory_mb,
        )
    store_result(work_prefix, result)
    return result
