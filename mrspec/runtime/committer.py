"""Output preflight, the commit (``_SUCCESS`` manifest written last) and cleanup.

Every part is written once under a deterministic key by its task (a retried attempt
replaces its own key), so committing needs no renames: it checks the results, writes the
manifest listing exactly the parts a reader may trust, and removes the shuffle data.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mrspec.runtime.replace as replace
from mrspec.plan.model import JobPlan, StepPlan
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.errors import BadRecordLimitError, TaskFailedError
from mrspec.runtime.exchange import Totals
from mrspec.runtime.layout import is_work_key, manifest_uri, phase_name, step_work_prefix
from mrspec.runtime.manifest import Manifest
from mrspec.runtime.replace import Replacement
from mrspec.runtime.results import (
    MapResult,
    MergeResult,
    PartFile,
    ReduceResult,
    TaskResult,
    load_results,
)
from mrspec.storage import storage_for

DELETE_BATCH = 1000  # keys per DeleteObjects request


def _listing_prefix(prefix: str) -> str:
    return prefix.rstrip("/") + "/"


def prepare_output(config: TaskConfig, *, overwrite: bool, token: str | None = None) -> Replacement:
    """Refuse a non-empty output unless ``overwrite``; nothing is removed here (see
    ``mrspec.runtime.replace``: the old output goes only after the new commit)."""
    return replace.prepare(config.output_prefix, overwrite=overwrite, token=token)


def check_bad_records(config: TaskConfig, results: Sequence[TaskResult]) -> None:
    """Fail when the job-wide number of skipped records passes the limit (map results)."""
    check_totals(config, Totals.sum(_map_totals(r) for r in results))


def _map_totals(result: TaskResult) -> Totals:
    if not isinstance(result, MapResult):
        raise TaskFailedError(f"commit: expected a map task's result, got a {result.kind} task's")
    return result.totals()


def check_totals(config: TaskConfig, totals: Totals) -> None:
    if totals.bad_record_count <= config.max_bad_records:
        return
    last = totals.bad_records[-1] if totals.bad_records else None
    raise BadRecordLimitError(
        f"{totals.bad_record_count} bad records in the job, more than limits.max_bad_records "
        f"({config.max_bad_records}); for example {last and last.uri} at byte "
        f"{last and last.offset}: {last and last.error}",
        hint="fix the mapper or the input, or raise limits.max_bad_records",
    )


@dataclass(frozen=True)
class RunShape:
    """What the commit expects of a run: from the plan (locally) or the execution input."""

    map_tasks: int
    merge_tasks: tuple[int, ...] = ()  # tasks per merge level

    @property
    def level(self) -> int:
        return len(self.merge_tasks)

    @property
    def producers(self) -> int:
        """Tasks of the level the reducers read."""
        return self.merge_tasks[-1] if self.merge_tasks else self.map_tasks

    def to_json(self) -> dict[str, Any]:
        return {"map_tasks": self.map_tasks, "merge_tasks": list(self.merge_tasks)}

    @classmethod
    def of_plan(cls, plan: JobPlan) -> RunShape:
        """The shape of the plan's first step (its only one, in a job without steps)."""
        return cls.of_step(plan.steps[0])

    @classmethod
    def of_step(cls, step: StepPlan) -> RunShape:
        return cls(len(step.map_tasks), tuple(len(m.tasks) for m in step.merge_levels))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunShape:
        return cls(int(data["map_tasks"]), tuple(int(n) for n in data.get("merge_tasks", ())))


def _require(
    work_prefix: str, phase: str, count: int, given: Sequence[TaskResult] | None
) -> list[TaskResult]:
    """Every result of a phase, or a refusal naming the missing ones."""
    if given is None:
        found, missing = load_results(work_prefix, phase, count)
    else:
        ids = {r.task_id for r in given}
        found, missing = list(given), sorted(set(range(count)) - ids)
    if missing or len(found) != count:
        raise TaskFailedError(
            f"commit: {count - len(missing)} of {count} {phase} task results are present "
            f"(missing task ids include {missing[:10]}); refusing to write a manifest "
            "for partial output"
        )
    return sorted(found, key=lambda r: r.task_id)


def _merge_totals(result: TaskResult) -> Totals:
    if not isinstance(result, MergeResult):
        raise TaskFailedError(f"commit: expected a merge task's result, got a {result.kind} task's")
    return result.totals


def _producer_totals(shape: RunShape, producers: Sequence[TaskResult]) -> Totals:
    if shape.level == 0:
        return Totals.sum(_map_totals(r) for r in producers)
    totals = Totals.sum(_merge_totals(r) for r in producers)
    if totals.tasks != shape.map_tasks:
        raise TaskFailedError(
            f"commit: the last merge level covers {totals.tasks} of {shape.map_tasks} map "
            "tasks; refusing to write a manifest for partial output"
        )
    return totals


def commit(
    config: TaskConfig,
    *,
    work_prefix: str,
    shape: RunShape,
    producers: Sequence[TaskResult] | None = None,
    reduce_results: Sequence[TaskResult] | None = None,
    started: float,
    timings: dict[str, float] | None,
    extra: dict[str, Any] | None,
    earlier_steps: Sequence[dict[str, Any]] | None = None,
) -> Manifest:
    """Check every result is there, write ``_SUCCESS`` last, remove the work objects.

    ``work_prefix`` is the run's; ``config`` is the last step's (its results are read
    under that step's work prefix). Reads the results of the last exchange level (map tasks when no merge level, at
    most F of them) and of the reducers, by key: requests and memory grow with
    (merge or map producers) + R, never with M x R. ``producers`` and
    ``reduce_results``, when given (the local engine holds them), replace the reads.
    ``earlier_steps`` (a job with steps: the entries of the steps before the last, as
    ``step_totals`` gives them) become ``_SUCCESS``'s ``steps`` with the last step's own
    entry added from the results read here, so no result is read twice.
    """
    run_work, work_prefix = work_prefix, step_work_prefix(work_prefix, config.step)
    phase = phase_name(shape.level)
    producers = _require(work_prefix, phase, shape.producers, producers)
    totals = _producer_totals(shape, producers)
    check_totals(config, totals)
    if config.map_only:
        reduce_results, writers = [], producers
    else:
        reduce_results = _require(work_prefix, "reduce", config.partitions, reduce_results)
        writers = reduce_results
    parts = sorted((o for r in writers for o in _outputs(r)), key=lambda o: o.uri)
    entry = _step_entry(config.step, shape, totals, reduce_results)
    counters, user = entry["counters"], entry["user_counters"]
    if earlier_steps is not None:
        extra = {**(extra or {}), "steps": [*earlier_steps, entry]}
    finished = time.time()
    manifest = Manifest(
        job=config.job_name,
        spec_digest=config.spec_digest,
        output_format=config.output_format,
        parts=tuple(parts),
        counters=dict(counters),
        user_counters=dict(user),
        bad_records=totals.bad_records,
        map_tasks=shape.map_tasks,
        reduce_tasks=len(reduce_results),
        merge_tasks=shape.merge_tasks,
        timings={
            "started": started,
            "finished": finished,
            "seconds": round(finished - started, 3),
            **(timings or {}),
        },
        extra=dict(extra or {}),
    )
    uri = manifest_uri(config.output_prefix)
    text = json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n"
    storage_for(uri).write(uri, text.encode())
    cleanup(config, work_prefix=run_work, remove_output=False)
    return manifest


def step_totals(config: TaskConfig, *, work_prefix: str, shape: RunShape) -> dict[str, Any]:
    """One step's tasks and counters (its map and reduce tasks'), as a job with steps
    lists them in ``_SUCCESS`` (``steps``): read by key like the commit's own results,
    the last exchange level's and the reducers', never the M map results. Refuses a step
    with a result missing or more bad records than the job allows."""
    step_work = step_work_prefix(work_prefix, config.step)
    producers = _require(step_work, phase_name(shape.level), shape.producers, None)
    totals = _producer_totals(shape, producers)
    check_totals(config, totals)
    reduced = [] if config.map_only else _require(step_work, "reduce", config.partitions, None)
    return _step_entry(config.step, shape, totals, reduced)


def steps_total(steps: Sequence[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """(counters, user counters) summed over a job's step entries (``_SUCCESS``'s
    ``steps``), sorted by name: what both engines' summaries show for a job with steps."""
    total: Counter[str] = Counter()
    user: Counter[str] = Counter()
    for step in steps:
        total.update(step["counters"])
        user.update(step["user_counters"])
    return dict(sorted(total.items())), dict(sorted(user.items()))


def _step_entry(
    step: int, shape: RunShape, totals: Totals, reduce_results: Sequence[TaskResult]
) -> dict[str, Any]:
    """A step's tasks and counters (its producers' totals plus its reducers')."""
    counters: Counter[str] = Counter(totals.counters)
    user: Counter[str] = Counter(totals.user_counters)
    for result in reduce_results:
        counters.update(result.counters)
        user.update(result.user_counters)
    tasks = {"map": shape.map_tasks, "merge": sum(shape.merge_tasks), "reduce": len(reduce_results)}
    return {"step": step, "tasks": tasks, "counters": dict(sorted(counters.items())),
            "user_counters": dict(sorted(user.items()))}


def _outputs(result: TaskResult) -> tuple[PartFile, ...]:
    """The parts a writing task (a reducer, or a map task of a map-only job) wrote."""
    return result.outputs if isinstance(result, (MapResult, ReduceResult)) else ()


def cleanup(config: TaskConfig, *, work_prefix: str, remove_output: bool) -> None:
    # one listing of the work prefix; work objects are those under a shard folder
    # (mrspec.runtime.layout), deleted while listing, DELETE_BATCH keys at a time, so
    # memory stays flat in M
    location = _listing_prefix(work_prefix)
    storage = storage_for(location)
    batch: list[str] = []
    for info in storage.list(location):
        if is_work_key(info.uri[len(location) :]):
            batch.append(info.uri)
        if len(batch) == DELETE_BATCH:
            storage.delete(batch)
            batch = []
    storage.delete(batch)
    if remove_output and config.output_prefix:
        # only this run's parts: an output being replaced stays whole
        replace.discard(config.output_prefix, config.part_token)
