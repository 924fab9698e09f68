"""Planning: list the input, cut byte-range splits, pack them into bins.

``make_plan`` is pure (objects in, plan out); ``list_input`` is the only I/O, through
the storage boundary; ``plan_job`` is the two together.

Scale: the listing is consumed as a stream (S3 answers 1,000 keys a page) and each
object costs the plan one ``ObjectInfo`` and one ``Split`` (slotted, ~260 bytes with the
URI): 1,000,000 objects plan in a few seconds and a few hundred MB on top of the listing
itself (docs/performance.md, ``python -m mrspec.bench_input listing``).
"""

from __future__ import annotations

import dataclasses
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence

from mrspec.errors import InputError
from mrspec.plan.exchange import (
    MERGE_TASK_BYTES,
    fan_in,
    groups,
    merge_levels,
    nested_ranges,
    range_pieces,
)
from mrspec.plan.model import (
    JobPlan,
    MapTask,
    MergeLevel,
    MergeTask,
    ReduceTask,
    ShuffleInputs,
    Split,
    StepPlan,
)
from mrspec.spec.model import JobSpec, StepSpec
from mrspec.storage import ObjectInfo, Storage, is_hidden, storage_for

COMPRESSED_SUFFIXES = (".gz",)


def is_compressed(uri: str) -> bool:
    return uri.lower().endswith(COMPRESSED_SUFFIXES)


def list_input(
    spec: JobSpec, storage: Callable[[str], Storage] = storage_for
) -> list[ObjectInfo]:
    """Every input object of the job, in a stable order, without hidden objects.

    Objects listed under two overlapping prefixes are read once. An input prefix that
    names nothing is an error: a job over nothing is almost always a typo.
    """
    seen: dict[str, ObjectInfo] = {}
    for prefix in spec.input.prefixes:
        found = 0
        for obj in storage(prefix).list(prefix):  # a stream: never the whole page list
            if not is_hidden(obj.uri):
                found += 1
                seen.setdefault(obj.uri, obj)
        if not found:
            raise InputError(
                f"input prefix {prefix} holds no data objects",
                hint="check the path; objects whose names start with '_' or '.' are skipped",
            )
    return list(seen.values())


def cut_splits(objects: Iterable[ObjectInfo], split_size: int) -> list[Split]:
    """Byte-range splits of at most ``split_size`` (compressed objects whole, empty ones none)."""
    if split_size <= 0:
        raise ValueError("split_size must be positive")
    splits: list[Split] = []
    add = splits.append
    for obj in objects:
        size = obj.size
        if 0 < size <= split_size and not is_compressed(obj.uri):
            add(Split(obj.uri, 0, size, size))  # the common case of many small objects
            continue
        if size == 0:
            continue
        if is_compressed(obj.uri):
            splits.append(Split(obj.uri, 0, obj.size, obj.size, compressed=True))
            continue
        for start in range(0, obj.size, split_size):
            splits.append(Split(obj.uri, start, min(start + split_size, obj.size), obj.size))
    return splits


def pack_bins(splits: Sequence[Split], bin_size: int) -> list[MapTask]:
    """Pack splits, in order, into bins of at most ``bin_size`` input bytes (next fit).

    Keeping order keeps an object's consecutive splits in one task. A split larger than
    ``bin_size`` (only a compressed object can be) gets a bin of its own.
    """
    tasks: list[MapTask] = []
    current: list[Split] = []
    current_bytes = 0
    for split in splits:
        length = split.end - split.start
        if current and current_bytes + length > bin_size:
            tasks.append(MapTask(len(tasks), tuple(current)))
            current, current_bytes = [], 0
        current.append(split)
        current_bytes += length
    if current:
        tasks.append(MapTask(len(tasks), tuple(current)))
    return tasks


def plan_exchange(
    covered: Sequence[int], fan: int, partitions: int, budget: int | None = None
) -> tuple[MergeLevel, ...]:
    """The merge levels between the map outputs (``covered``: each map task's input
    bytes) and the reducers, fan-in ``fan``: each level cuts the groups of the level
    before into contiguous groups, and the partitions into nested ranges
    (``exchange.range_pieces``); one task per (group, range), id ``group * ranges +
    range``. ``budget`` replaces ``MERGE_TASK_BYTES``."""
    budget = MERGE_TASK_BYTES if budget is None else budget
    levels: list[MergeLevel] = []
    sizes = list(covered)
    ranges: list[tuple[int, int, int]] = [(0, partitions, 0)]  # level 0: one range, all
    for level, count in enumerate(merge_levels(len(sizes), fan), start=1):
        cut = groups(len(sizes), count)
        group_bytes = [sum(sizes[g.start : g.stop]) for g in cut]
        widest = max(stop - first for first, stop, _ in ranges)
        pieces = range_pieces(max(group_bytes), widest, partitions, budget)
        parents = len(ranges)
        ranges = nested_ranges([(first, stop) for first, stop, _ in ranges], pieces)
        tasks = []
        for g_index, g in enumerate(cut):
            for r_index, (first, stop, parent) in enumerate(ranges):
                inputs = ShuffleInputs(
                    level - 1, g.start * parents + parent, g.stop * parents + parent, parents
                )
                first_piece = r_index == 0 or ranges[r_index - 1][2] != parent
                tasks.append(MergeTask(
                    level, g_index * len(ranges) + r_index, inputs,
                    None if (first, stop) == (0, partitions) else (first, stop), first_piece,
                ))
        levels.append(MergeLevel(level, fan, tuple(tasks), len(ranges)))
        sizes = group_bytes
    return tuple(levels)


def reduce_inputs(levels: Sequence[MergeLevel], map_tasks: int, partition: int) -> ShuffleInputs:
    """The objects reduce task ``partition`` reads: every map output, or the one object
    per group of the last level whose range holds the partition."""
    if not levels:
        return ShuffleInputs(0, 0, map_tasks)
    last = levels[-1]
    # the first group's tasks list the level's ranges in order
    firsts = [t.partitions[0] if t.partitions else 0 for t in last.tasks[: last.ranges]]
    index = bisect_right(firsts, partition) - 1
    return ShuffleInputs(last.level, index, index + last.groups * last.ranges, last.ranges)


def make_plan(spec: JobSpec, objects: Sequence[ObjectInfo]) -> JobPlan:
    splits = cut_splits(objects, spec.input.split_size)
    first = plan_step(0, spec.steps[0], tuple(pack_bins(splits, spec.map.bin_size)))
    later: list[StepPlan] = []
    for index, step in enumerate(spec.steps[1:], start=1):
        before = later[-1] if later else first
        # map task i of a later step reads part i of the step before
        inputs = tuple(MapTask(i, ()) for i in range(before.output_parts))
        later.append(plan_step(index, step, inputs))
    return JobPlan(
        job_name=spec.name,
        spec_digest=spec.digest,
        objects=tuple(objects),
        splits=tuple(splits),
        map_tasks=first.map_tasks,
        reduce_tasks=first.reduce_tasks,
        split_size=spec.input.split_size,
        bin_size=spec.map.bin_size,
        merge_levels=first.merge_levels,
        later_steps=tuple(later),
    )


def plan_step(index: int, step: StepSpec, map_tasks: tuple[MapTask, ...]) -> StepPlan:
    """A step's phases over its map tasks: merge levels and reducers when it reduces.
    (A later step's map tasks count no input bytes: their parts are written by the run.)"""
    if step.reduce is None:
        return StepPlan(index, map_tasks)
    # merge tasks run with the reduce section's memory, so they share its fan-in
    levels = plan_exchange(
        [t.input_bytes for t in map_tasks], fan_in(step.reduce.memory_mb), step.reduce.partitions
    )
    reducers = tuple(
        ReduceTask(p, reduce_inputs(levels, len(map_tasks), p))
        for p in range(step.reduce.partitions)
    )
    return StepPlan(index, map_tasks, reducers, levels)


def plan_job(spec: JobSpec, storage: Callable[[str], Storage] = storage_for) -> JobPlan:
    clock = time.perf_counter()
    objects = list_input(spec, storage)
    listed = time.perf_counter() - clock
    return dataclasses.replace(make_plan(spec, objects), listing_seconds=listed)
