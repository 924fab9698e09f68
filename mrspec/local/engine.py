"""The local engine: the whole MapReduce job on this machine, with the Lambda task code.

    plan -> prepare output -> map tasks -> merge levels (the plan's, if any)
         -> reduce tasks -> commit (_SUCCESS last)
         -> remove the output it replaced (--overwrite; only now, see runtime.replace)

It runs exactly the plan's phases, so a local run rehearses the cloud run: the same
merge levels, the same task code (``mrspec.runtime.dispatch``), the same exchange reads.

Tasks run in a ``TaskPool`` (one process per attempt, memory capped, retried); the
shuffle lives in the run's work folder, removed at the end. A failure or Ctrl-C removes
this run's parts and writes no manifest (an old output being replaced is left whole) but
keeps the work folder, so ``--resume ID`` re-runs only the tasks without a result
(``mrspec.local.resume``).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mrspec.errors import JobFailedError, MrspecError
from mrspec.local import resume
from mrspec.local.pool import TaskPool, TaskRun
from mrspec.plan import JobPlan, items, plan_job
from mrspec.plan.codec import resume_digests
from mrspec.plan.model import MergeLevel
from mrspec.runtime import Manifest, RunShape, TaskResult, cleanup, commit, prepare_output
from mrspec.runtime.committer import check_bad_records
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.replace import Replacement, discard
from mrspec.runtime.replace import finish as finish_replacement
from mrspec.runtime.results import load_results
from mrspec.spec.model import JobSpec

# (phase, event, done, total): event is "start", "task" (one task done) or "end"
ProgressCallback = Callable[[str, str, int, int], None]


@dataclass(frozen=True)
class LocalOptions:
    workers: int | None = None  # None: os.cpu_count()
    overwrite: bool = False
    work_dir: str | None = None  # parent of the run's work folder (default: TMPDIR)
    run_id: str | None = None  # default: a new one
    resume: str | None = None  # the id of a failed run whose work folder to go on from


def default_workers() -> int:
    return os.cpu_count() or 1


def run_local(
    spec: JobSpec,
    options: LocalOptions | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Run the job locally; return the run summary (see ``summarize``)."""
    options = options or LocalOptions()
    report = progress or (lambda phase, event, done, total: None)
    workers = options.workers or default_workers()
    started = time.time()
    timings: dict[str, float] = {}

    clock = time.perf_counter()
    report("plan", "start", 0, 1)
    plan = plan_job(spec)
    kept = _kept_run(spec, plan, options)
    # the shuffle stays on this machine: zlib would only cost CPU (0.3 s per 128 MiB map
    # task of word count, 0.1 s per reduce task)
    config = dataclasses.replace(TaskConfig.from_spec(spec), compress_shuffle=False)
    replacing = prepare_output(config, overwrite=options.overwrite, token=kept.part_token or None)
    config = dataclasses.replace(config, part_token=replacing.token)
    kept = dataclasses.replace(kept, part_token=replacing.token, overwrite=options.overwrite)
    report("plan", "end", 1, 1)
    timings["plan_seconds"] = round(time.perf_counter() - clock, 3)

    work_dir = kept.work_dir
    work_prefix = os.path.join(work_dir, "work")
    scratch_root = os.path.join(work_dir, "scratch")
    os.makedirs(scratch_root, exist_ok=True)
    resume.keep(kept)
    pool = TaskPool(
        workers=workers,
        config_json=config.to_json(),
        work_prefix=work_prefix,
        scratch_root=scratch_root,
        max_attempts=spec.limits.max_attempts,
        timeouts=_timeouts(spec),
    )
    committed = False
    finished = _Finished(work_prefix if options.resume else None)
    try:
        items.write_shards(plan.map_tasks, work_prefix)  # as the AWS driver does
        map_results = _map_phase(plan, config, pool, report, timings, finished)
        producers = map_results
        merge_results: list[TaskResult] = []
        for level in plan.merge_levels:
            producers = _merge_phase(level, config, pool, report, timings, finished)
            merge_results += producers
        reduce_results = _reduce_phase(plan, config, pool, report, timings, finished)
        clock = time.perf_counter()
        report("commit", "start", 0, 1)
        manifest = commit(
            config,
            work_prefix=work_prefix,
            shape=plan_shape(plan),
            producers=producers,
            reduce_results=reduce_results,
            started=started,
            timings=timings,
            extra={"engine": "local", "workers": workers},
        )
        committed = True
        _remove_replaced(replacing, manifest)
        timings["commit_seconds"] = round(time.perf_counter() - clock, 3)
        report("commit", "end", 1, 1)
    except BaseException as exc:
        if committed:  # the output is the user's now, whatever failed afterwards
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            _after_failure(exc, spec, plan, config, kept, options)
        raise
    shutil.rmtree(work_dir, ignore_errors=True)
    summary = summarize(spec, plan, config, manifest, map_results, reduce_results, pool, workers)
    if merge_results:
        summary["tasks"]["merge"] = len(merge_results)
        memory = summary["memory"]  # in phase order: map, merge, reduce
        merge = _memory(merge_results, config.reduce_memory_mb)
        summary["memory"] = {"map": memory.pop("map"), "merge": merge, **memory}
    return summary


def _kept_run(spec: JobSpec, plan: JobPlan, options: LocalOptions) -> resume.KeptRun:
    """The run's work folder and what a resume checks: a new one, or (``--resume``) the
    failed run's, refused when its input, partitioning or task manifests differ."""
    digests = resume_digests(plan)
    if options.resume:
        kept = resume.load(spec.name, options.resume, options.work_dir)
        resume.check(kept, digests)
        return kept
    from mrspec.aws.state import new_run_id  # the AWS runs' id format; stdlib only

    run_id = options.run_id or new_run_id()
    work_dir = resume.work_dir_of(spec.name, run_id, options.work_dir)
    if os.path.exists(work_dir):
        raise MrspecError(f"the work folder {work_dir} of run {run_id} already exists",
                          hint="resume it with --resume, or choose another run id")
    return resume.KeptRun(spec.name, run_id, work_dir, digests)


def _after_failure(
    exc: BaseException,
    spec: JobSpec,
    plan: JobPlan,
    config: TaskConfig,
    kept: resume.KeptRun,
    options: LocalOptions,
) -> None:
    """A failed job keeps the work folder for ``--resume`` (this run's parts go, and the
    reduce results they stood for); Ctrl-C and anything else remove it all."""
    if not isinstance(exc, JobFailedError):
        cleanup(config, work_prefix=os.path.join(kept.work_dir, "work"), remove_output=True)
        shutil.rmtree(kept.work_dir, ignore_errors=True)
        return
    discard(config.output_prefix, config.part_token)
    resume.drop_results(os.path.join(kept.work_dir, "work"), "reduce", len(plan.reduce_tasks))
    command = resume.resume_command(str(spec.source or spec.name), kept.run_id, options.work_dir)
    note = f"fix the cause, then resume (only the tasks without a result run): {command}"
    exc.hint = f"{exc.hint}; {note}" if exc.hint else note


def plan_shape(plan: JobPlan) -> RunShape:
    return RunShape.of_plan(plan)


def _remove_replaced(replacing: Replacement, manifest: Manifest) -> None:
    """After the commit: the new output is the user's now, so failing to remove the old
    objects is a warning (they are listed by no manifest), never a failed run."""
    try:
        finish_replacement(replacing, [p.uri for p in manifest.parts])
    except (OSError, MrspecError) as exc:
        sys.stderr.write(f"warning: could not remove the replaced output's objects: {exc}\n")


def _timeouts(spec: JobSpec) -> dict[str, float]:
    """Each phase's Lambda timeout: a local attempt still running then is stopped."""
    out = {"map": float(spec.map.timeout_s)}
    if spec.reduce is not None:
        out["reduce"] = float(spec.reduce.timeout_s)
        out["merge"] = float(spec.reduce.timeout_s)  # merge tasks run with reduce's limits
    return out


class _Finished:
    """The results a resumed run already has, by phase; nothing for a fresh run."""

    def __init__(self, work_prefix: str | None) -> None:
        self.work_prefix = work_prefix

    def split(
        self, phase: str, tasks: list[TaskRun]
    ) -> tuple[list[TaskResult], list[TaskRun]]:
        """(results already there, tasks still to run)."""
        if self.work_prefix is None or not tasks:
            return [], tasks
        present, missing = load_results(self.work_prefix, phase, len(tasks))
        todo = set(missing)
        return present, [t for t in tasks if t.task_id in todo]


def _run_phase(
    phase: str,
    tasks: list[TaskRun],
    pool: TaskPool,
    report: ProgressCallback,
    timings: dict[str, float],
    each: Callable[[list[TaskResult]], None] | None = None,
    finished: _Finished | None = None,
) -> list[TaskResult]:
    """Run one phase's tasks on the pool with its progress bar and its timing;
    ``each`` sees the results so far after every task (the map phase's bad-record check).
    A resumed run runs only the tasks without a result (``finished``)."""
    clock = time.perf_counter()
    total = len(tasks)
    done, tasks = (finished or _Finished(None)).split(phase, tasks)
    kept = list(done)

    def on_done(task: TaskRun, result: TaskResult) -> None:
        done.append(result)
        if each is not None:
            each(done)
        report(phase, "task", len(done), total)

    report(phase, "start", len(done), total)
    results = pool.run(tasks, on_done) if tasks else []
    report(phase, "end", total, total)
    timings[f"{phase.replace('-', '_')}_seconds"] = round(time.perf_counter() - clock, 3)
    return sorted(kept + results, key=lambda r: r.task_id)


def _map_phase(
    plan: JobPlan,
    config: TaskConfig,
    pool: TaskPool,
    report: ProgressCallback,
    timings: dict[str, float],
    finished: _Finished,
) -> list[TaskResult]:
    tasks = [
        TaskRun("map", t.task_id, items.map_item(t), config.map_memory_mb) for t in plan.map_tasks
    ]
    # fail fast once the job-wide bad-record limit is passed
    return _run_phase("map", tasks, pool, report, timings,
                      each=lambda done: check_bad_records(config, done), finished=finished)


def _merge_phase(
    level: MergeLevel,
    config: TaskConfig,
    pool: TaskPool,
    report: ProgressCallback,
    timings: dict[str, float],
    finished: _Finished,
) -> list[TaskResult]:
    memory = config.memory_mb("merge")
    tasks = [TaskRun("merge", t.task_id, t.to_json(), memory) for t in level.tasks]
    return _run_phase(level.phase, tasks, pool, report, timings, finished=finished)


def _reduce_phase(
    plan: JobPlan,
    config: TaskConfig,
    pool: TaskPool,
    report: ProgressCallback,
    timings: dict[str, float],
    finished: _Finished,
) -> list[TaskResult]:
    if config.map_only:
        return []
    tasks = [
        TaskRun("reduce", t.partition, t.to_json(), config.reduce_memory_mb)
        for t in plan.reduce_tasks
    ]
    return _run_phase("reduce", tasks, pool, report, timings, finished=finished)


def _timeout_warnings(results: list[TaskResult], kind: str, timeout_s: int) -> list[str]:
    """Tasks whose own clock passed their Lambda timeout. The pool stops an attempt at the
    timeout, so this catches only one that finished in the last moments before it."""
    return [
        f"{kind} task {r.task_id} took {r.seconds:.1f}s here, more than its "
        f"{kind}.timeout of {timeout_s}s: on AWS it could time out"
        for r in results
        if r.seconds > timeout_s
    ]


def _memory(results: list[TaskResult], cap_mb: int) -> dict[str, Any]:
    peaks = [r.peak_memory_bytes for r in results]
    return {
        "cap_mb": cap_mb,
        "peak_bytes_max": max(peaks, default=0),
        "peak_bytes_per_task": peaks,
    }


def summarize(
    spec: JobSpec,
    plan: JobPlan,
    config: TaskConfig,
    committed: Manifest,
    map_results: list[TaskResult],
    reduce_results: list[TaskResult],
    pool: TaskPool,
    workers: int,
) -> dict[str, Any]:
    """The run summary printed by ``mrspec apply --local`` (``--json`` prints it as is)."""
    manifest = committed.to_json()  # the summary quotes the manifest's own JSON form
    counters = manifest["counters"]
    memory = {"map": _memory(map_results, config.map_memory_mb)}
    warnings = _timeout_warnings(map_results, "map", spec.map.timeout_s)
    if spec.reduce is not None:
        warnings += _timeout_warnings(reduce_results, "reduce", spec.reduce.timeout_s)
    if reduce_results:
        memory["reduce"] = _memory(reduce_results, config.reduce_memory_mb)
    return {
        "job": spec.name,
        "engine": "local",
        "workers": workers,
        "spec_digest": spec.digest,
        "input": {
            "objects": len(plan.objects),
            "bytes": plan.input_bytes,
            "splits": len(plan.splits),
        },
        "tasks": {
            "map": len(map_results),
            "reduce": len(reduce_results),
            "retried_attempts": pool.retries,
            "failed_attempts": pool.failures,
        },
        "records": {
            "input": counters.get("map_input_records", 0),
            "map_output": counters.get("map_output_records", 0),
            "output": manifest["records"],
        },
        "counters": counters,
        "user_counters": manifest["user_counters"],
        "bad_records": manifest["bad_records"],
        "timings": manifest["timings"],
        "memory": memory,
        "warnings": warnings,
        "output": {
            "prefix": spec.output.prefix,
            "format": spec.output.format,
            "parts": len(manifest["parts"]),
            "bytes": manifest["bytes"],
            "manifest": manifest["parts"] and _manifest_uri(spec.output.prefix),
        },
    }


def _manifest_uri(prefix: str) -> str:
    from mrspec.runtime.layout import manifest_uri

    return manifest_uri(prefix)
