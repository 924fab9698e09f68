"""The merge task: up to F exchange objects in, one exchange object out, for one range of
partitions (all of them, unless the plan cut the group's work into ranges: plan/exchange.py).

    open the inputs (their heads in parallel: index and totals)
      -> for each partition of the range in order: k-way merge of the inputs' segments
         (``shuffle.merge_runs``; the combiner, if any, folds equal keys)
      -> the merged segments to a scratch file (the task's spill: memory stays at a few
         windows per input whatever the data size)
      -> one exchange object of level ``task.level``, carrying the sum of its inputs'
         totals (when it is the range task chosen to carry them: ``carries_totals``),
         so the phase after this one never reads the map tasks' results.

Each input is read with one sequential stream across the range's partitions (windows with
one fetched ahead), so a merge task makes about one GET per input head plus one per
window of data, never one per (input, partition).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from mrspec import builtins
from mrspec.plan.model import MergeTask
from mrspec.runtime.aggregate import combine_for
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.errors import TaskFailedError, UserCodeError
from mrspec.runtime.exchange import PartitionStream, Totals, body_writer, open_all, write_exchange
from mrspec.runtime.layout import shuffle_uri, step_work_prefix
from mrspec.runtime.loading import load_entrypoint, pairs_of, task_scope
from mrspec.runtime.maptask import describe
from mrspec.runtime.reducetask import read_window
from mrspec.runtime.results import MergeResult, MergeStats, ShuffleObject, store_result
from mrspec.runtime.shuffle import merge_runs, write_segment
from mrspec.runtime.stats import peak_memory_bytes

Combine = Callable[[str, list[Any]], list[Any]]


def _combine_with(combiner: Callable[..., Any], name: str, counters: Counter[str]) -> Combine:
    """``combine(key, values) -> values`` over the user's pair-yielding combiner."""

    def combine(key: str, values: list[Any]) -> list[Any]:
        counters["combine_input_records"] += len(values)
        try:
            pairs = list(pairs_of(combiner(key, iter(values))))
        except Exception as exc:
            raise UserCodeError(f"{name}: the combiner raised on key {key!r}: {describe(exc)}") from exc
        if any(not (isinstance(p, tuple) and len(p) == 2 and p[0] == key) for p in pairs):
            raise TaskFailedError(
                f"{name}: the combiner must yield (key, value) pairs with the key it was given"
            )
        counters["combine_output_records"] += len(pairs)
        return [v for _, v in pairs]

    return combine


def run_merge_task(
    config: TaskConfig, task: MergeTask, *, work_prefix: str, scratch_dir: str, attempt: int
) -> MergeResult:
    started = time.time()
    clock = time.perf_counter()
    name = f"merge task {task.task_id} of level {task.level}"
    if task.level < 1 or task.inputs.level != task.level - 1:
        raise TaskFailedError(f"{name}: it must read level {task.level - 1}, not {task.inputs.level}")
    work_prefix = step_work_prefix(work_prefix, config.step)
    uris = [shuffle_uri(work_prefix, task.inputs.level, i) for i in task.inputs.ids]
    first, stop = task.partitions or (0, config.partitions)
    counters: Counter[str] = Counter()
    with task_scope(config.params) as context:
        readers = open_all(uris)
        combine = None
        agg = builtins.aggregator(config.combiner_entrypoint)
        if agg is not None:
            combine = combine_for(agg, counters)  # values checked on the map side
        elif config.combiner_entrypoint:
            combiner = load_entrypoint(config.code_path, config.combiner_entrypoint, "combiner")
            combine = _combine_with(combiner, name, counters)
        window = read_window(config.reduce_memory_mb, len(readers))
        streams = [PartitionStream(r, window, first, stop) for r in readers]
        body = os.path.join(scratch_dir, f"merge-{task.level}-{task.task_id}.body")
        index: list[list[int]] = []
        offset = records = 0
        with body_writer(body) as out:
            for partition in range(first, stop):
                runs = [iter(s.blocks(partition)) for s in streams if s.has(partition)]
                length, values = write_segment(out, merge_runs(runs, combine), config.compress_shuffle)
                index.append([offset, length, values])
                offset += length
                records += values
        extra = Totals(0, dict(counters), dict(context.counters))
        # only one range task per group passes its inputs' totals on (MergeTask)
        carried = [r.header.totals for r in readers] if task.carries_totals else []
        totals = Totals.sum([*carried, extra])
    uri = shuffle_uri(work_prefix, task.level, task.task_id)
    size = write_exchange(uri, body, index, totals, first)
    os.unlink(body)
    result = MergeResult(
        task_id=task.task_id,
        attempt=attempt,
        level=task.level,
        totals=totals,
        shuffle=ShuffleObject(uri, size),
        merge=MergeStats(len(readers), records, offset),
        started=started,
        seconds=round(time.perf_counter() - clock, 6),
        peak_memory_bytes=peak_memory_bytes(),
        memory_cap_mb=config.reduce_memory_mb,
    )
    store_result(work_prefix, result)
    return result
