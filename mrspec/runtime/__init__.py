"""Provider-neutral task code: the map task, the reduce task and the commit.

The local engine (``mrspec.local``) calls these functions from worker processes; the
Lambda handlers (``mrspec.aws.handlers``) call the very same functions. Only the standard
library and boto3 (through ``mrspec.storage``) are used here.

Locations are strings: a local path or an ``s3://`` URI; all I/O goes through
``mrspec.storage`` so both behave the same.

The layout of a run's keys is owned by ``mrspec.runtime.layout`` (output part names,
``part-00000`` or ``part-00000-<token>`` when replacing an output, by
``mrspec.runtime.replace``); the exchange objects (shuffle data with their index and
totals inside) by ``mrspec.runtime.exchange``.

A run goes: ``prepare_output`` (refuse an existing output, or plan its replacement) ->
``run_map_task`` for every map task -> ``run_merge_task`` for every task of each of the
plan's merge levels (none when M <= F) -> ``run_reduce_task`` for every partition
(skipped for map-only jobs) -> ``commit``. On failure or interruption:
``cleanup(..., remove_output=True)``.

Task results are frozen dataclasses (``MapResult``, ``MergeResult``, ``ReduceResult``,
all ``TaskResult``s; see ``mrspec.runtime.results`` for their JSON form, small enough for
a Step Functions state: each lists at most ``MAX_REPORTED_BAD_RECORDS`` bad records); the
commit returns a ``Manifest`` (``mrspec.runtime.manifest``). Whatever crosses a process
or Lambda boundary goes as ``to_json()`` and is read back with ``result_from_json``.

Errors (all ``JobFailedError``, messages name the task and the cause):
``TaskFailedError`` means retrying cannot help (the bad-record limit, a non-``str`` key,
pairs that are not pairs, an entrypoint that cannot be imported); ``UserCodeError`` means
the job's code raised where no record can be skipped (a task-level mapper, the combiner,
the reducer) and the attempt may be retried; ``MemoryError`` is a task over its cap.
Any other exception is an infrastructure failure (or a bug) and may be retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mrspec.plan.model import MapTask, MergeTask, ShuffleInputs
from mrspec.runtime.badrecords import MAX_REPORTED_BAD_RECORDS, BadRecord
from mrspec.runtime.committer import RunShape
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.errors import TaskFailedError, UserCodeError
from mrspec.runtime.manifest import Manifest
from mrspec.runtime.replace import Replacement
from mrspec.runtime.results import (
    MapResult,
    MergeResult,
    ReduceResult,
    TaskResult,
    result_from_json,
)

# The built-in counters; every task result carries the ones that apply to it.
COUNTER_NAMES = (
    "map_input_records",
    "map_input_bytes",
    "map_output_records",
    "combine_input_records",
    "combine_output_records",
    "spilled_runs",
    "shuffle_bytes",
    "reduce_input_groups",
    "reduce_input_records",
    "output_records",
    "output_bytes",
    "bad_records",
)

def run_map_task(
    config: TaskConfig,
    task: MapTask,
    *,
    work_prefix: str,
    scratch_dir: str,
    attempt: int = 1,
) -> MapResult:
    """Run one map task (a bin of splits) and return its result.

    Reads every split (each record read by exactly one split), calls the mapper
    (``form == "record"``: ``mapper(record)`` yields ``(key, value)`` pairs; ``"task"``:
    ``mapper(records)`` receives an iterator over all records of the task), runs the
    combiner on the buffered output, partitions keys with a stable CRC-32 hash, sorts
    keys within each partition, spills sorted runs to ``scratch_dir`` when the buffer
    nears the memory budget, and writes one shuffle object with a partition index to
    ``{work_prefix}/shuffle/``. A map-only job writes ``part-{task_id:05d}`` to the output
    prefix instead. The result is also written to ``{work_prefix}/results/``.

    Keys must be ``str``: any other key fails the task (a code bug, not bad data).
    Values must be of JSON's types (``mrspec.runtime.values``), checked where they leave
    the map side; another type fails the task, not retried. A record whose mapper raises (record form) or
    whose JSON line does not parse is skipped and reported as a bad record; more than
    ``config.max_bad_records`` in one task fails it.
    """
    from mrspec.runtime.maptask import run_map_task as impl

    return impl(config, task, work_prefix=work_prefix, scratch_dir=scratch_dir, attempt=attempt)


def run_reduce_task(
    config: TaskConfig,
    partition: int,
    map_results: Sequence[TaskResult] | None = None,
    *,
    work_prefix: str,
    scratch_dir: str,
    attempt: int = 1,
    inputs: ShuffleInputs | None = None,
) -> ReduceResult:
    """Reduce one partition and write ``{output_prefix}/part-{partition:05d}``.

    Its inputs are the exchange objects named by ``inputs`` (the plan's last level) or,
    when ``inputs`` is ``None``, by ``map_results`` (only their ``shuffle`` objects are
    used). Each object's partition segment is streamed with ranged reads, the sorted runs
    are merged (memory per run is two read windows and one block), equal keys are
    grouped and ``reducer(key, values)`` receives a lazy iterator, so a hot key with
    millions of values is never held in memory. The result is also written to
    ``{work_prefix}/results/``.
    """
    from mrspec.runtime.reducetask import run_reduce_task as impl

    return impl(
        config,
        partition,
        map_results,
        work_prefix=work_prefix,
        scratch_dir=scratch_dir,
        attempt=attempt,
        inputs=inputs,
    )


def run_merge_task(
    config: TaskConfig, task: MergeTask, *, work_prefix: str, scratch_dir: str, attempt: int = 1
) -> MergeResult:
    """Merge a group of at most F exchange objects into one (every partition, sorted,
    indexed, with the group's totals); see ``mrspec.runtime.mergetask``."""
    from mrspec.runtime.mergetask import run_merge_task as impl

    return impl(config, task, work_prefix=work_prefix, scratch_dir=scratch_dir, attempt=attempt)


def prepare_output(config: TaskConfig, *, overwrite: bool, token: str | None = None) -> Replacement:
    """Preflight of the output prefix, before any task runs.

    Raises ``RefusedError`` when the prefix holds objects and ``overwrite`` is false.
    Removes nothing: the returned ``Replacement`` lists the old objects and the token the
    new parts carry (set it as ``TaskConfig.part_token``); ``replace.finish`` removes the
    old objects once the new ``_SUCCESS`` is written (see ``mrspec.runtime.replace``).
    """
    from mrspec.runtime.committer import prepare_output as impl

    return impl(config, overwrite=overwrite, token=token)


def commit(
    config: TaskConfig,
    *,
    work_prefix: str,
    shape: RunShape,
    producers: Sequence[TaskResult] | None = None,
    reduce_results: Sequence[TaskResult] | None = None,
    started: float,
    timings: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
    earlier_steps: Sequence[dict[str, Any]] | None = None,
) -> Manifest:
    """Check the run, write the ``_SUCCESS`` manifest last, remove the shuffle data.

    ``shape`` says how many tasks each phase had; ``producers`` are the results of the
    level the reducers read (map results when the plan has no merge level) and default,
    like ``reduce_results``, to those stored under the work prefix. Raises
    ``TaskFailedError`` when the job-wide bad-record total passes
    ``config.max_bad_records`` or any task's result is missing. The manifest (returned, and written
    as pretty JSON) holds: job, spec digest, output format, parts (uri, size, records),
    summed built-in and user counters, bad records, timings (``started``, ``finished``,
    ``seconds`` and the caller's per-phase ``timings``), task counts and ``extra``; in a
    job with steps (``earlier_steps``: the steps before the last) ``steps``, one entry per
    step with its tasks and counters.
    """
    from mrspec.runtime.committer import commit as impl

    return impl(
        config,
        work_prefix=work_prefix,
        shape=shape,
        producers=producers,
        reduce_results=reduce_results,
        started=started,
        timings=timings,
        extra=extra,
        earlier_steps=earlier_steps,
    )


def cleanup(config: TaskConfig, *, work_prefix: str, remove_output: bool) -> None:
    """Remove the run's shuffle objects and task results under ``work_prefix``; with
    ``remove_output`` also this run's own parts (``config.part_token``) and, when the
    prefix was empty before the run, its ``_SUCCESS``: a failed or interrupted run leaves
    nothing a reader could trust, and an output it was to replace stays whole."""
    from mrspec.runtime.committer import cleanup as impl

    impl(config, work_prefix=work_prefix, remove_output=remove_output)


def load_results(work_prefix: str, phase: str, count: int) -> tuple[list[TaskResult], list[int]]:
    """The stored results of tasks ``0..count-1`` of a phase, and the missing ids."""
    from mrspec.runtime.results import load_results as impl

    return impl(work_prefix, phase, count)


__all__ = [
    "COUNTER_NAMES",
    "MAX_REPORTED_BAD_RECORDS",
    "BadRecord",
    "Manifest",
    "MapResult",
    "MergeResult",
    "ReduceResult",
    "RunShape",
    "TaskConfig",
    "TaskFailedError",
    "TaskResult",
    "UserCodeError",
    "cleanup",
    "commit",
    "load_results",
    "prepare_output",
    "result_from_json",
    "run_map_task",
    "run_merge_task",
    "run_reduce_task",
]
