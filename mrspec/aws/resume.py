"""``mrspec apply JOB --resume ID`` on AWS: go on from a failed run kept by
``--keep-failed`` (``mrspec.aws.keep``), with the job's current code.

The resume is a new execution of the kept stack's state machine over only the tasks
that did not finish (``driver.resume_on_aws`` runs the stages):

1. the kept run is found and checked (``kept_record``): it must be ``resumable`` and of
   this job;
2. the job is planned again over the kept run's input and output, and refused (exit 3)
   when the input, the partitioning or the task manifests differ from the kept plan's
   (``check_plan``, the digests of ``mrspec.plan.codec.resume_digests``, as a local
   resume): the finished tasks' results would not belong to the new plan;
3. the stack is brought up again with the new package (the functions get the current
   code; nothing else changes shape, the names being the run's own);
4. ``clean_output`` removes again the failed run's parts and the results of the tasks
   that wrote them (a task still running when the execution stopped may have written
   them since), then checks the output as a run's preflight does;
   ``tasks_to_run`` removes the failed run's failure records (the commit refuses a run
   with one left) and reads each phase's results by key, over every step in order (a
   later step's under its work prefix): a phase's tasks without a result run, and once
   a phase runs anything every later phase, of its step and of every later one, runs
   whole (its inputs are written again); a step that finished runs nothing;
5. each phase's item manifest is written with only those tasks (a phase with none gets
   an empty one) and a new execution starts (execution names are unique per state
   machine: ``run-<id>-resume-<time>``). Its input carries the whole run's shape, so the
   commit checks every task's result, old and new, as for any run.

Why a new execution and not Step Functions' ``RedriveExecution``: a redrive re-runs the
failed *state* of the same execution with the same input and definition. This state
machine catches a failed phase and fails in ``Report<Phase>Failure``, so a redrive would
run that report again, not the phase; and moto, which the tests run against, has no
redrive. docs/architecture.md has the full reasoning.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any

from mrspec.aws.keep import remove_uncommitted, when
from mrspec.aws.run import AwsRun
from mrspec.aws.state import RunRecord, StateStore
from mrspec.errors import MrspecError, RefusedError
from mrspec.plan.codec import plan_from_document, resume_digests
from mrspec.plan.model import JobPlan
from mrspec.runtime.layout import failures_folder, step_phase, step_work_prefix
from mrspec.runtime.replace import Replacement
from mrspec.runtime.results import load_results
from mrspec.spec.model import JobSpec
from mrspec.storage import storage_for


def kept_record(store: StateStore, spec: JobSpec, run_id: str) -> RunRecord:
    """The kept failed run ``run_id`` of ``spec``'s job, or a refusal saying why not."""
    record = store.find(run_id)
    if record is None:
        raise RefusedError(
            f"--resume {run_id}: no run {run_id!r} in {store.root}",
            hint="`mrspec runs` lists the kept failed runs and their resume commands; a run "
            "that succeeded, was destroyed or failed with --keep-failed 0 keeps nothing",
        )
    if record.job != spec.name:
        raise RefusedError(
            f"--resume {run_id}: that run is of job {record.job!r}, not {spec.name!r}",
            hint=f"resume it with its own spec ({record.spec_path or record.job})",
        )
    if record.status != "resumable" or store.load_context(record.stack) is None:
        raise RefusedError(
            f"--resume {run_id}: run {run_id} of job {record.job} is {record.status}, not a "
            "failed run kept for a resume",
            hint=f"`mrspec attach --run {run_id}` follows a running one; `mrspec destroy "
            f"{record.job} --run {run_id}` removes it",
        )
    if record.expired:
        sys.stderr.write(
            f"warning: run {run_id} was kept until {when(record.expires_at)}; the working "
            "bucket's lifecycle rule may have removed finished tasks' work, which then runs "
            "again\n"
        )
    return record


def kept_plan(store: StateStore, record: RunRecord) -> tuple[JobPlan, dict[str, Any]]:
    data = store.load_context(record.stack)
    assert data is not None  # kept_record checked it
    return plan_from_document(data["plan"]), data


def with_kept_locations(spec: JobSpec, data: dict[str, Any], inputs: tuple[str, ...]) -> JobSpec:
    """The spec over the kept run's input and output (``--input`` given again replaces
    the input; a different one is refused by the plan's digests)."""
    kept_inputs = tuple(str(p) for p in data["input_prefixes"])
    spec = replace(spec, input=replace(spec.input, prefixes=inputs or kept_inputs))
    return replace(spec, output=replace(spec.output, prefix=str(data["output_prefix"])))


def check_plan(record: RunRecord, kept: JobPlan, plan: JobPlan) -> None:
    """Refuse (exit 3) a resume whose plan differs in what the finished work depends on."""
    before, now = resume_digests(kept), resume_digests(plan)
    changed = [name for name, value in now.items() if before.get(name) != value]
    if changed:
        raise RefusedError(
            f"cannot resume run {record.run_id} of job {record.job}: the "
            f"{' and the '.join(changed)} changed since it ran, so its finished tasks' "
            "results do not belong to this plan",
            hint=f"run the job afresh (without --resume); remove the kept run with `mrspec "
            f"destroy {record.spec_path or record.job} --run {record.run_id}`",
        )


def tasks_to_run(run: AwsRun) -> dict[str, list[int]]:
    """Clear the failure records and return, by phase label (``runtime.layout.step_phase``:
    ``steps[1].map`` in a job with steps), the tasks the resume runs.

    The phases of every step, in the order the execution runs them: a phase's tasks
    without a result (read under its step's work prefix) run, and once a phase runs
    anything every later phase of every later step runs whole, since its inputs are
    written again. A step that finished before the failure runs nothing; its
    intermediate parts stay, and the step after it reads them."""
    assert run.plan is not None and run.model is not None
    work = run.model.layout.work_uri
    folder = failures_folder(work)
    storage = storage_for(folder)
    storage.delete([o.uri for o in storage.list(folder)])
    steps = len(run.plan.steps)
    todo: dict[str, list[int]] = {}
    rerun_all = False
    for step in run.plan.steps:
        step_work = step_work_prefix(work, step.step)
        for phase, count in step.task_counts().items():
            label = step_phase(step.step, steps, phase)
            if rerun_all:
                todo[label] = list(range(count))
                continue
            _, todo[label] = load_results(step_work, phase, count)
            rerun_all = bool(todo[label])
    return todo


def warn_in_flight(run: AwsRun, record: RunRecord) -> None:
    """A task of the failed run that was running when its execution stopped goes on until
    its Lambda timeout; failing then, it records its failure after this resume cleared
    them, and the commit refuses the run (kept again: resume once more). Say so."""
    assert run.model is not None
    longest = max(f.timeout_s for f in run.model.functions)
    since = time.time() - record.updated_at
    if since < longest:
        sys.stderr.write(
            f"warning: run {record.run_id} failed {since:.0f} s ago; a task it started may "
            f"run for up to {longest} s more and, if it fails, fail this resume's commit "
            "(the run is then kept again: resume once more)\n"
        )


def clean_output(run: AwsRun, data: dict[str, Any]) -> None:
    """Remove again what the failure removed: a task that was still running when the
    failed execution stopped may have written its part (and result) after that; then
    check the output as any run's preflight does."""
    from mrspec.aws import preflight

    if data.get("replacing"):
        run.replacing = Replacement.from_json(data["replacing"])
    remove_uncommitted(run)
    preflight.check_output_empty(run.session, run.spec, run.options.overwrite)


def not_started(run: AwsRun, record: RunRecord, failure: BaseException) -> MrspecError:
    """A resume that failed before its execution started leaves the kept run as it was."""
    run.record = run.store.save(replace(record, status="resumable"))
    message = f"resuming run {record.run_id} failed before it started: {failure}"
    return MrspecError(
        message,
        hint=f"the run is still kept: try `{record.resume_command}` again, or remove it "
        f"with `mrspec destroy {record.spec_path or record.job} --run {record.run_id}`",
    )
