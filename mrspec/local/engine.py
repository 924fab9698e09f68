"""The local engine: the whole MapReduce job on this machine, with the Lambda task code.

    plan -> prepare output -> map tasks -> merge levels (the plan's, if any)
         -> reduce tasks -> commit (_SUCCESS last)
         -> remove the output it replaced (--overwrite; only now, see runtime.replace)

It runs exactly the plan's phases, so a local run rehearses the cloud run: the same
merge levels, the same task code (``mrspec.runtime.dispatch``), the same exchange reads.

Tasks run in a ``TaskPool`` (one process per attempt, memory capped, retried); the
shuffle lives in the run's work folder, removed at the end. A failure or Ctrl-C removes
this run's parts and writes no manifest (an old output being replaced is left whole);
a failed job keeps the work folder, so ``--resume ID`` re-runs only the tasks without a
result, step by step (``mrspec.local.resume``): a step that finished runs no task again.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mrspec.errors import JobFailedError, MrspecError
from mrspec.local import resume
from mrspec.local.pool import TaskPool, TaskRun, task_fixes
from mrspec.plan import JobPlan, items, plan_job
from mrspec.plan.codec import resume_digests
from mrspec.plan.model import StepPlan
from mrspec.runtime import Manifest, RunShape, TaskResult, cleanup, commit, prepare_output
from mrspec.runtime.committer import check_bad_records, steps_total
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.layout import step_phase, step_work_prefix
from mrspec.runtime.replace import Replacement, discard
from mrspec.runtime.replace import finish as finish_replacement
from mrspec.runtime.results import drop_results, load_results
from mrspec.spec.model import JobSpec, StepSpec

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
    configs = [dataclasses.replace(TaskConfig.from_spec(spec, i), compress_shuffle=False)
               for i in range(len(spec.steps))]
    replacing = prepare_output(configs[-1], overwrite=options.overwrite, token=kept.part_token or None)
    configs[-1] = config = dataclasses.replace(configs[-1], part_token=replacing.token)
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
        timeouts=_timeouts(spec.steps[0]),
        fixes=task_fixes(spec, 0),
    )
    committed = False
    phases = _Phases(pool, report, timings, _Finished(work_prefix if options.resume else None))
    try:
        items.write_shards(plan.map_tasks, work_prefix)  # as the AWS driver does
        runs = []
        for step, step_config in zip(plan.steps, configs, strict=True):
            pool.use(step_config.to_json(), _timeouts(spec.steps[step.step]),
                     task_fixes(spec, step.step))
            runs.append(phases.step(step, step_config, _labeller(step.step, len(plan.steps))))
        last = runs[-1]
        clock = time.perf_counter()
        report("commit", "start", 0, 1)
        extra: dict[str, Any] = {"engine": "local", "workers": workers}
        # a job with steps: the commit adds the last step's entry to the earlier ones
        earlier = [r.totals() for r in runs[:-1]] if len(runs) > 1 else None
        manifest = commit(
            config,
            work_prefix=work_prefix,
            shape=RunShape(len(last.step.map_tasks), tuple(len(m.tasks) for m in last.step.merge_levels)),
            producers=last.producers,
            reduce_results=last.reduce_results,
            started=started,
            timings=timings,
            extra=extra,
            earlier_steps=earlier,
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
    return summarize_steps(spec, plan, configs, manifest, runs, pool, workers)


@dataclass
class StepRun:
    """What one step's phases returned: every task result, by phase."""

    step: StepPlan
    map_results: list[TaskResult]
    merge_results: list[TaskResult]
    producers: list[TaskResult]  # the results of the level the reducers read
    reduce_results: list[TaskResult]

    def totals(self) -> dict[str, Any]:
        """The step's tasks and counters (map and reduce tasks'), for the summary."""
        counters: Counter[str] = Counter()
        user: Counter[str] = Counter()
        for result in (*self.map_results, *self.reduce_results):
            counters.update(result.counters)
            user.update(result.user_counters)
        tasks = {"map": len(self.map_results), "merge": len(self.merge_results),
                 "reduce": len(self.reduce_results)}
        return {"step": self.step.step, "tasks": tasks, "counters": dict(sorted(counters.items())),
                "user_counters": dict(sorted(user.items()))}


def _labeller(step: int, steps: int) -> Callable[[str], str]:
    """Phase names as shown and timed: ``map`` in a one-step job, ``steps[1].map`` else
    (``runtime.layout.step_phase``, which names the phases on AWS too)."""
    return lambda phase: step_phase(step, steps, phase)


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
    """A failed job keeps the work folder for ``--resume``: this run's parts leave the
    output, and the results of the last step's tasks that wrote them (its reduce tasks,
    or its map tasks when it has no reduce); every other step's work stays. Ctrl-C and
    anything else remove it all."""
    work = os.path.join(kept.work_dir, "work")
    if not isinstance(exc, JobFailedError):
        cleanup(config, work_prefix=work, remove_output=True)
        shutil.rmtree(kept.work_dir, ignore_errors=True)
        return
    last = plan.steps[-1]
    # the results before the parts: a result left without its part would be taken as done
    drop_results(step_work_prefix(work, last.step), last.output_phase, last.output_parts)
    discard(config.output_prefix, config.part_token)
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


def _timeouts(step: StepSpec) -> dict[str, float]:
    """Each phase's Lambda timeout: a local attempt still running then is stopped."""
    out = {"map": float(step.map.timeout_s)}
    if step.reduce is not None:
        out["reduce"] = float(step.reduce.timeout_s)
        out["merge"] = float(step.reduce.timeout_s)  # merge tasks run with reduce's limits
    return out


class _Finished:
    """The results a resumed run already has, by phase; nothing for a fresh run."""

    def __init__(self, work_prefix: str | None) -> None:
        self.work_prefix = work_prefix

    def split(
        self, phase: str, tasks: list[TaskRun], step: int = 0
    ) -> tuple[list[TaskResult], list[TaskRun]]:
        """(results already there, tasks still to run) of a phase of step ``step``."""
        if self.work_prefix is None or not tasks:
            return [], tasks
        work = step_work_prefix(self.work_prefix, step)
        present, missing = load_results(work, phase, len(tasks))
        todo = set(missing)
        return present, [t for t in tasks if t.task_id in todo]


@dataclass(frozen=True)
class _Phases:
    """Runs a step's phases on one pool: progress bars, timings and, for a resumed run,
    only the tasks without a result (``finished``)."""

    pool: TaskPool
    report: ProgressCallback
    timings: dict[str, float]
    finished: _Finished

    def step(self, step: StepPlan, config: TaskConfig, label: Callable[[str], str]) -> StepRun:
        """One step's phases in order: map, its merge levels, reduce."""
        tasks = [TaskRun("map", t.task_id, items.map_item(t), config.map_memory_mb)
                 for t in step.map_tasks]
        # fail fast once the job-wide bad-record limit is passed
        map_results = self.run(label("map"), "map", tasks, step.step,
                               each=lambda done: check_bad_records(config, done))
        producers = map_results
        merge_results: list[TaskResult] = []
        memory = config.memory_mb("merge")
        for level in step.merge_levels:
            tasks = [TaskRun("merge", t.task_id, t.to_json(), memory) for t in level.tasks]
            producers = self.run(label(level.phase), level.phase, tasks, step.step)
            merge_results += producers
        reduce_results: list[TaskResult] = []
        if not config.map_only:
            tasks = [TaskRun("reduce", t.partition, t.to_json(), config.reduce_memory_mb)
                     for t in step.reduce_tasks]
            reduce_results = self.run(label("reduce"), "reduce", tasks, step.step)
        return StepRun(step, map_results, merge_results, producers, reduce_results)

    def run(
        self,
        phase: str,
        kind: str,
        tasks: list[TaskRun],
        step: int,
        each: Callable[[list[TaskResult]], None] | None = None,
    ) -> list[TaskResult]:
        """Run one phase's tasks (``phase`` as shown and timed; ``kind``: its name in the
        work layout of step ``step``) with its progress bar and its timing; ``each`` sees
        the results so far after every task (the map phase's bad-record check)."""
        clock = time.perf_counter()
        total = len(tasks)
        done, tasks = self.finished.split(kind, tasks, step)
        kept = list(done)

        def on_done(task: TaskRun, result: TaskResult) -> None:
            done.append(result)
            if each is not None:
                each(done)
            self.report(phase, "task", len(done), total)

        self.report(phase, "start", len(done), total)
        results = self.pool.run(tasks, on_done) if tasks else []
        self.report(phase, "end", total, total)
        self.timings[f"{re.sub(r'[^a-z0-9]+', '_', phase).strip('_')}_seconds"] = round(
            time.perf_counter() - clock, 3)
        return sorted(kept + results, key=lambda r: r.task_id)


def _timeout_warnings(
    results: list[TaskResult], kind: str, setting: str, timeout_s: int
) -> list[str]:
    """Tasks whose own clock passed their Lambda timeout (``setting``: its YAML path). The
    pool stops an attempt at the timeout, so this catches only one that finished in the
    last moments before it."""
    return [
        f"{kind} task {r.task_id} took {r.seconds:.1f}s here, more than its "
        f"{setting} of {timeout_s}s: on AWS it could time out"
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


def summarize_steps(
    spec: JobSpec,
    plan: JobPlan,
    configs: list[TaskConfig],
    committed: Manifest,
    runs: list[StepRun],
    pool: TaskPool,
    workers: int,
) -> dict[str, Any]:
    """The run summary printed by ``mrspec apply --local`` (``--json`` prints it as is).

    A job with steps adds ``steps`` (each step's tasks and counters) and its ``counters``
    and ``user_counters`` are the totals over the steps; ``memory`` and ``warnings``
    cover every step's tasks (keys ``map``, ``steps[1].map``, ...)."""
    summary = summarize(spec, plan, committed.to_json(), pool, workers)
    memory: dict[str, Any] = {}
    warnings: list[str] = []
    for run, config in zip(runs, configs, strict=True):
        label = _labeller(run.step.step, len(runs))
        this = spec.steps[run.step.step]
        memory[label("map")] = _memory(run.map_results, config.map_memory_mb)
        at = run.step.step
        warnings += _timeout_warnings(run.map_results, label("map"),
                                      spec.setting(at, "map.timeout"), this.map.timeout_s)
        if run.merge_results:
            memory[label("merge")] = _memory(run.merge_results, config.reduce_memory_mb)
        if this.reduce is not None:
            memory[label("reduce")] = _memory(run.reduce_results, config.reduce_memory_mb)
            warnings += _timeout_warnings(run.reduce_results, label("reduce"),
                                          spec.setting(at, "reduce.timeout"),
                                          this.reduce.timeout_s)
    summary.update(memory=memory, warnings=warnings)
    first, last = runs[0].totals(), runs[-1].totals()
    summary["tasks"].update(map=first["tasks"]["map"], reduce=last["tasks"]["reduce"])
    if len(runs) == 1:
        if first["tasks"]["merge"]:
            summary["tasks"]["merge"] = first["tasks"]["merge"]
        return summary
    steps = [r.totals() for r in runs]
    counters, user_counters = steps_total(steps)
    summary["tasks"].update({kind: sum(s["tasks"][kind] for s in steps)
                             for kind in ("map", "merge", "reduce")})
    summary.update(steps=steps, counters=counters, user_counters=user_counters)
    summary["records"]["input"] = first["counters"].get("map_input_records", 0)
    return summary


def summarize(
    spec: JobSpec, plan: JobPlan, manifest: dict[str, Any], pool: TaskPool, workers: int
) -> dict[str, Any]:
    """The summary's parts that come from the commit's manifest and the plan."""
    counters = manifest["counters"]
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
            "map": 0,
            "reduce": 0,
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
        "memory": {},
        "warnings": [],
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
