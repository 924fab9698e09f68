"""The exchange's shape: fan-in from memory, merge levels and groups, against plain loops."""

from __future__ import annotations

import pytest

from mrspec.plan.exchange import (
    MAX_FAN_IN,
    MERGE_TASK_BYTES,
    MIN_FAN_IN,
    fan_in,
    groups,
    merge_levels,
    range_pieces,
)
from mrspec.plan.model import MergeLevel
from mrspec.plan.planner import plan_exchange, reduce_inputs


def test_fan_in_grows_with_memory_within_its_bounds() -> None:
    figures = [fan_in(mb) for mb in (128, 256, 512, 1024, 1769, 4096, 10240)]
    assert figures == sorted(figures)
    assert figures[0] >= MIN_FAN_IN and figures[-1] == MAX_FAN_IN
    assert fan_in(512) == 512 // 4  # a quarter of 512 MB in 1 MiB runs


@pytest.mark.parametrize("inputs", [1, 2, 63, 64, 65, 4_000, 81_920, 100_000])
@pytest.mark.parametrize("fan", [2, 16, 64, 512])
def test_every_level_reads_at_most_fan_objects_and_the_last_leaves_at_most_fan(
    inputs: int, fan: int
) -> None:
    levels = merge_levels(inputs, fan)
    before = inputs
    for tasks in levels:
        cut = groups(before, tasks)
        assert [i for g in cut for i in g] == list(range(before))  # each object once, in order
        assert max(len(g) for g in cut) <= fan
        assert max(len(g) for g in cut) - min(len(g) for g in cut) <= 1
        before = tasks
    assert before <= fan
    if inputs <= fan:
        assert levels == ()


def test_a_fan_in_that_cannot_converge_is_refused() -> None:
    with pytest.raises(ValueError):
        merge_levels(10, 1)
    with pytest.raises(ValueError):
        groups(3, 4)


def _covers(levels: tuple[MergeLevel, ...], level: int, task_id: int, partitions: int) -> set[tuple[int, int]]:
    """(map task, partition) pairs the object ``(level, task_id)`` holds, followed down
    through its inputs: the reference for what a merge task must read."""
    if level == 0:
        return {(task_id, p) for p in range(partitions)}
    task = levels[level - 1].tasks[task_id]
    first, stop = task.partitions or (0, partitions)
    pairs: set[tuple[int, int]] = set()
    for source in task.inputs.ids:
        pairs |= {(m, p) for m, p in _covers(levels, level - 1, source, partitions) if first <= p < stop}
    return pairs


def _carried(levels: tuple[MergeLevel, ...], level: int, task_id: int) -> list[int]:
    """The map tasks whose totals the object ``(level, task_id)`` passes on."""
    if level == 0:
        return [task_id]
    task = levels[level - 1].tasks[task_id]
    if not task.carries_totals:
        return []
    return [m for source in task.inputs.ids for m in _carried(levels, level - 1, source)]


@pytest.mark.parametrize(
    ("maps", "fan", "partitions", "budget"),
    [(9, 3, 7, 1), (40, 4, 10, 300), (27, 3, 5, 100), (100, 8, 64, 5_000), (10, 100, 4, 1)],
)
def test_partition_ranges_nest_and_every_pair_is_merged_once(
    maps: int, fan: int, partitions: int, budget: int
) -> None:
    covered = [100 + 7 * (i % 5) for i in range(maps)]  # input bytes per map task
    levels = plan_exchange(covered, fan, partitions, budget)
    assert len(levels) == len(merge_levels(maps, fan))
    everything = {(m, p) for m in range(maps) for p in range(partitions)}
    for level in levels:
        # every (map task, partition) pair lands in exactly one object of each level
        pairs = [_covers(levels, level.level, t.task_id, partitions) for t in level.tasks]
        assert sum(len(p) for p in pairs) == len(everything) and set().union(*pairs) == everything
        assert all(t.inputs.count <= fan for t in level.tasks)
        assert [t.task_id for t in level.tasks] == list(range(len(level.tasks)))
        # each map task's totals are carried by exactly one object of each level
        carried = [m for t in level.tasks for m in _carried(levels, level.level, t.task_id)]
        assert sorted(carried) == list(range(maps))
    for partition in range(partitions):
        inputs = reduce_inputs(levels, maps, partition)
        assert inputs.count <= fan
        got = set().union(*(_covers(levels, inputs.level, i, partitions) for i in inputs.ids))
        assert {pair for pair in got if pair[1] == partition} == {(m, partition) for m in range(maps)}


def test_merge_task_bytes_bound_the_ranges() -> None:
    # 81,920 map tasks of 128 MiB (10 TiB), F = 442, 2,000 partitions: each level-1 task
    # covers at most MERGE_TASK_BYTES of input (partitions assumed even)
    maps, partitions = 81_920, 2_000
    levels = plan_exchange([128 * 1024**2] * maps, 442, partitions)
    (level,) = levels
    group = 442 * 128 * 1024**2
    widest = max(stop - first for first, stop in (t.partitions or (0, partitions) for t in level.tasks))
    assert group * widest / partitions <= MERGE_TASK_BYTES * 1.05
    assert level.ranges == range_pieces(group, partitions, partitions)
    assert level.groups == -(-maps // 442)
