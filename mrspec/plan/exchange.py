"""The shape of the exchange between map and reduce: fan-in and merge levels.

One owner for the rule "no task reads more than F shuffle objects". With M map tasks and
a fan-in F, a job whose M exceeds F gets merge levels between map and reduce: each merge
task reads a contiguous group of at most F objects of the level before and writes one
object holding every partition, so reducers read at most F objects whatever M is. The
planner builds the plan's merge phases from :func:`merge_levels`, and the cost model
predicts each phase's requests from the same numbers, so what ``plan`` prints is what
runs.

F comes from the memory of the tasks that read the objects: each open run keeps one read
window and one decoded frame in memory (``RUN_BUDGET_BYTES`` together), and the runs may
use a quarter of the task's memory cap, the rest being the user's code, the output
buffer and the interpreter. Bounds: at least ``MIN_FAN_IN`` (fewer would add levels for
no memory gain worth having) and at most ``MAX_FAN_IN`` (Locus, Lambada and Exoshuffle
land on a few hundred objects per reader; beyond that per-request latency, not memory,
dominates a task).

A merge task is bounded by bytes as well as by count: a group of F map outputs of 128 MiB
each is 55 GiB, far more than one Lambda invocation moves in 15 minutes. So each level
cuts the partitions into ranges, and one merge task merges one range of one group: it
reads only that range's segments of its inputs (they are contiguous in each object) and
writes an object holding only that range. The ranges are chosen so that the largest
group's share of one range covers at most ``MERGE_TASK_BYTES`` of job input; at a shuffle
ratio of 1 (a sort: every input byte is shuffled) that is about 2 GiB read and 2 GiB
written, two minutes at the cost model's default rates, within the default reduce
timeout of 300 s. Ranges nest: each range of a level lies inside one range of the level
before, so a task reads exactly one object per input group, and the reducers read at
most F objects (one per group of the last level) whatever the number of ranges.
"""

from __future__ import annotations

from math import ceil

MIN_FAN_IN = 16
MAX_FAN_IN = 512
RUN_BUDGET_BYTES = 1024**2  # one run's read window and decoded frame
MEMORY_SHARE = 4  # runs use 1 / MEMORY_SHARE of the task's memory cap
MERGE_TASK_BYTES = 2 * 1024**3  # job input one merge task covers, at most (see above)


def fan_in(memory_mb: int) -> int:
    """The most shuffle objects one task with ``memory_mb`` of memory may read."""
    share = memory_mb * 1024**2 // MEMORY_SHARE // RUN_BUDGET_BYTES
    return max(MIN_FAN_IN, min(MAX_FAN_IN, share))


def merge_levels(inputs: int, fan: int) -> tuple[int, ...]:
    """Merge tasks per level for ``inputs`` map outputs (empty when no merge is needed).

    Each level cuts the objects of the level before into as few groups of at most ``fan``
    as possible; levels are added until the last one leaves at most ``fan`` objects for
    the reducers.
    """
    if fan < 2:
        raise ValueError("a fan-in below 2 never converges")
    levels: list[int] = []
    count = inputs
    while count > fan:
        count = ceil(count / fan)
        levels.append(count)
    return tuple(levels)


def groups(inputs: int, tasks: int) -> list[range]:
    """``inputs`` objects cut into ``tasks`` contiguous groups whose sizes differ by at most 1."""
    if tasks <= 0 or tasks > max(inputs, 1):
        raise ValueError(f"cannot cut {inputs} objects into {tasks} groups")
    size, extra = divmod(inputs, tasks)
    out: list[range] = []
    start = 0
    for index in range(tasks):
        stop = start + size + (1 if index < extra else 0)
        out.append(range(start, stop))
        start = stop
    return out


def range_pieces(group_bytes: int, parent_partitions: int, partitions: int,
                 budget: int = MERGE_TASK_BYTES) -> int:
    """Pieces to cut a range of ``parent_partitions`` (of ``partitions``) into, so that a
    group covering ``group_bytes`` of input has at most ``budget`` of it per piece
    (partitions assumed even; at most one piece per partition)."""
    share = group_bytes * parent_partitions / max(1, partitions)
    return max(1, min(parent_partitions, ceil(share / budget)))


def nested_ranges(parents: list[tuple[int, int]], pieces: int) -> list[tuple[int, int, int]]:
    """Each parent range ``[first, stop)`` cut into ``pieces`` contiguous ranges (fewer
    when it holds fewer partitions): ``(first, stop, parent index)`` in order."""
    out: list[tuple[int, int, int]] = []
    for index, (first, stop) in enumerate(parents):
        width = stop - first
        for cut in groups(width, min(pieces, max(width, 1))):
            out.append((first + cut.start, first + cut.stop, index))
    return out
