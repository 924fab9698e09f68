"""``mrspec apply`` on AWS: deploy a throw-away stack, run the job, collect, tear down.

The pipeline, in order (``run_on_aws``)::

    preflight -> plan -> guard (budget, AWS limits) -> compile + package
        -> record the run -> up -> upload task manifests -> start execution
        -> [--detach: return; `mrspec attach` goes on from here]
        -> follow -> collect -> [finally] stop execution if interrupted, save the task
        logs, destroy + remove

``attach_run`` is the same pipeline from "follow" on, for a run started (and detached)
by another process: ``mrspec.aws.context`` restores what that process had.

Teardown runs in every case (success, failed task, exception, Ctrl-C, SIGTERM) unless
``--keep``, the run detaches (``--detach``, a lost terminal (SIGHUP) once the execution
has started, or Ctrl-C while attached without ``--stop``) or a failed job is kept for
``apply --resume`` (``--keep-failed``, ``mrspec.aws.keep``; ``resume_on_aws`` goes on
from it with ``mrspec.aws.resume``). The run is recorded in mrspec's
state directory *before* anything is created, so a teardown that cannot finish leaves an
exact ``mrspec destroy`` command behind. The user's output prefix is never part of the
stack: teardown cannot touch results. Before teardown the task logs (failed tasks whole, a
tail of the others) are saved in the state directory, where ``mrspec logs --run ID`` reads
them once the log groups are gone.

The stages live in ``mrspec.aws.launch`` (up to a started execution) and
``mrspec.aws.finish`` (follow, collect, teardown, summary).

Exit codes: 0 success (or detached with --detach), 1 failed job, 3 refused preflight,
4 failed teardown, 130 interrupted or detached by a signal (see ``mrspec.errors.ExitCode``).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from contextlib import suppress
from dataclasses import replace

from mrspec.aws import context, keep, resume
from mrspec.aws.finish import (
    after_failure,
    collect,
    destroy_command,
    report,
    save_task_logs,
    tear_down,
    watch,
)
from mrspec.aws.interrupt import Hangup, Terminated, hangup_raises, shielded, terminate_like_ctrl_c
from mrspec.aws.launch import (
    check_preflight,
    compile_stack,
    deploy,
    execution_input,
    guard_budget,
    make_plan,
    start_execution,
    upload_manifests,
)
from mrspec.aws.report import resumed_text
from mrspec.aws.run import (
    AwsRun,
    AwsRunOptions,
    best_effort,
    provisioner_of,
    say,
    timed,
    with_locations,
)
from mrspec.aws.state import StateStore, new_run_id, state_dir
from mrspec.errors import ExitCode, MrspecError
from mrspec.spec.model import JobSpec


def run_on_aws(spec: JobSpec, options: AwsRunOptions | None = None) -> int:
    """Run ``spec`` on AWS end to end; returns 0 (or 130 when a signal detached it) or
    raises a ``MrspecError``."""
    options = options or AwsRunOptions()
    if options.resume:
        return resume_on_aws(spec, options)
    spec = with_locations(spec, options)
    run = AwsRun(
        spec=spec,
        options=options,
        store=StateStore(state_dir(options.state_dir)),
        run_id=options.run_id or new_run_id(),
    )
    warn_expired(run)
    with terminate_like_ctrl_c(options.handle_signals), hangup_raises(options.handle_signals):
        with timed(run, "preflight"):
            check_preflight(run)
        with timed(run, "plan"):
            make_plan(run)
        guard_budget(run)
        with timed(run, "compile"):
            compile_stack(run)
        try:
            with timed(run, "deploy"):
                deploy(run)
            upload_manifests(run)
            start_execution(run)
        except BaseException as exc:  # nothing runs yet: a hangup tears down too
            return conclude(run, exc)
        if options.detach:
            return detach(run, "--detach")
        return follow_and_conclude(run)


def warn_expired(run: AwsRun) -> None:
    """Failed runs kept past their --keep-failed time go on costing storage (until the
    working bucket's lifecycle rule): every apply says so until they are removed."""
    try:
        expired = [r for r in run.store.runs() if r.expired]
    except MrspecError:
        return  # an unreadable record: `mrspec runs` reports it
    if expired:
        ids = ", ".join(f"{r.job} {r.run_id}" for r in expired)
        sys.stderr.write(  # on stderr even with --json: it is about other runs' cost
            f"warning: {len(expired)} failed run(s) kept past their --keep-failed time "
            f"({ids}); remove them with `mrspec destroy --expired`\n"
        )


def resume_on_aws(spec: JobSpec, options: AwsRunOptions) -> int:
    """Go on from the failed run ``options.resume`` kept by ``--keep-failed``: plan again
    and check, update the functions' code, run only the unfinished tasks (``aws.resume``)."""
    from mrspec.aws.provisioner import StackOutputs

    assert options.resume is not None
    store = StateStore(state_dir(options.state_dir))
    record = resume.kept_record(store, spec, options.resume)
    kept, data = resume.kept_plan(store, record)
    spec = resume.with_kept_locations(spec, data, options.input_prefixes)
    options = replace(
        options,
        overwrite=bool(data.get("overwrite")),
        emulator=bool(data.get("emulator")),
        provisioner=record.provisioner,
        input_prefixes=(),
        output_prefix=None,
    )
    run = AwsRun(spec=spec, options=options, store=store, run_id=record.run_id)
    with terminate_like_ctrl_c(options.handle_signals), hangup_raises(options.handle_signals):
        with timed(run, "preflight"):
            check_preflight(run, output_check=False)
        with timed(run, "plan"):
            make_plan(run)
        assert run.plan is not None
        resume.check_plan(record, kept, run.plan)
        guard_budget(run)
        with timed(run, "compile"):
            compile_stack(run)
        resume.warn_in_flight(run, record)
        resume.clean_output(run, data)
        run.record = store.save(replace(record, status="running"))
        try:
            run.provisioner = provisioner_of(run)
            assert run.package is not None
            say(run, f"updating stack {record.stack} with the job's current code ...")
            with timed(run, "deploy"):
                outputs: StackOutputs = run.provisioner.up(run.model, run.package)
            run.outputs = outputs
            run.resumed = resume.tasks_to_run(run)
            upload_manifests(run, only=run.resumed)
            start_execution(run, name=f"run-{run.run_id}-resume-{int(time.time())}")
        except BaseException as exc:  # nothing ran: the kept run stays as it was
            error = resume.not_started(run, record, exc)
            if isinstance(exc, Exception):
                raise error from exc
            raise
        say(run, "resuming: " + resumed_text(run.resumed))
        if options.detach:
            return detach(run, "--detach")
        return follow_and_conclude(run)


def attach_run(run_id: str, options: AwsRunOptions) -> int:
    """Follow run ``run_id`` (started by ``apply``, maybe detached) to its end, collect
    and tear down as its ``apply`` would have."""
    store = StateStore(state_dir(options.state_dir))
    record = store.find(run_id)
    if record is None:
        raise MrspecError(
            f"no run {run_id!r} in {store.root}: it finished and was torn down, or never ran",
            hint=f"`mrspec runs` lists the live ones; `mrspec logs --run {run_id}` prints "
            "what a finished run saved",
        )
    if record.status == "resumable":  # its execution ended: there is nothing to follow
        raise MrspecError(
            f"run {run_id} of job {record.job} failed and is kept for a resume",
            hint=f"fix the cause, then `{record.resume_command}`; or remove it with "
            f"`mrspec destroy {record.spec_path or record.job} --run {run_id}`",
        )
    run = context.restore(record, store, options)
    run.record = store.save(replace(record, status="running"))
    with terminate_like_ctrl_c(options.handle_signals), hangup_raises(options.handle_signals):
        return follow_and_conclude(run)


def follow_and_conclude(run: AwsRun) -> int:
    try:
        with timed(run, "run"):
            watch(run)
        collect(run)
    except KeyboardInterrupt as exc:
        if isinstance(exc, Hangup):
            return detach(run, "SIGHUP")
        if not run.options.stop_on_interrupt:
            return detach(run, "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C")
        return conclude(run, exc)
    except BaseException as exc:  # every outcome reaches teardown
        return conclude(run, exc)
    return conclude(run, None)


def conclude(run: AwsRun, failure: BaseException | None) -> int:
    """Stop what must stop, save the logs, tear down, print the summary; re-raise."""
    with shielded():  # a second Ctrl-C must not skip what follows
        if failure is not None:
            run.kept_for_resume = keep.keeps(run, failure)
            after_failure(run, failure)
        best_effort("save the task logs", lambda: save_task_logs(run))
        with timed(run, "teardown"):
            teardown_error = tear_down(run, failure)
        if run.kept_for_resume and isinstance(failure, MrspecError):
            note = keep.resume_hint(run, destroy_command(run))
            failure.hint = f"{failure.hint}; {note}" if failure.hint else note
        best_effort("print the run summary", lambda: report(run, failure))
    if teardown_error is not None:
        raise teardown_error from failure
    if failure is not None:
        raise failure
    return int(ExitCode.OK)


def detach(run: AwsRun, why: str) -> int:
    """Leave the execution running and say how to follow it; the record stays."""
    run.detached = why
    if run.record is not None:
        run.record = run.store.save(replace(run.record, status="detached"))
    commands = {
        "attach_command": _command(run, "attach"),
        "status_command": _command(run, "status"),
        "destroy_command": destroy_command(run),
    }
    if run.options.json_output:
        document = {"job": run.spec.name, "run_id": run.run_id, "detached": why, **commands}
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        out = sys.stdout
    else:
        out = sys.stderr
        text = (
            f"detached ({why}): run {run.run_id} of job {run.spec.name} goes on in AWS "
            f"(stack {run.record.stack if run.record else '?'}); nothing is torn down.\n"
            f"  follow it, collect its summary and tear down: {commands['attach_command']}\n"
            f"  its progress and cost so far:                 {commands['status_command']}\n"
            f"  stop it and remove the stack:                 {commands['destroy_command']}\n"
        )
    with suppress(OSError, ValueError):  # the terminal is gone (SIGHUP): `mrspec runs` says it
        if run.options.console is not None:
            run.options.console.print(text.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
        else:
            out.write(text)
            out.flush()
    return int(ExitCode.OK) if why == "--detach" else int(ExitCode.INTERRUPTED)


def _command(run: AwsRun, verb: str) -> str:
    parts = ["mrspec", verb, "--run", run.run_id]
    if run.options.state_dir is not None:
        parts += ["--state-dir", str(run.options.state_dir)]
    return shlex.join(parts)


__all__ = [
    "AwsRun",
    "AwsRunOptions",
    "MrspecError",
    "Terminated",
    "attach_run",
    "execution_input",
    "guard_budget",
    "run_on_aws",
]
