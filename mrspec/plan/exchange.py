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
"""

from __future__ import annotations

from math import ceil

MIN_FAN_IN = 16
MAX_FAN_IN = 512
RUN_BUDGET_BYTES = 1024**2  # one run's read window and decoded frame
MEMORY_SHARE = 4  # runs use 1 / MEMORY_SHARE of the task's memory cap


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
