"""The stages of an AWS run from a started execution on: follow it, collect the output
manifest and the actual cost, and in every case stop what must stop, read the failures,
save the task logs, tear down (or keep a failed run for a resume: ``mrspec.aws.keep``),
print the summary.

Nothing is imported lazily here once an execution runs (the emulated-AWS tests run the
Lambda handlers in this process, see tests/aws_emulation.py).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace

import botocore.exceptions

from mrspec.aws import keep, runlogs
from mrspec.aws.readback import (
    actual_cost,
    failure_records,
    failures_from_bucket,
    failures_from_logs,
    log_events,
    read_output_manifest,
)
from mrspec.aws.report import (
    ProgressView,
    RunReport,
    failure_hint,
    failure_message,
    render_report,
)
from mrspec.aws.run import AwsRun, best_effort, outcome_of, say
from mrspec.aws.state import RunStatus
from mrspec.aws.watch import Snapshot, failed_task_errors, follow
from mrspec.errors import JobFailedError, TeardownError
from mrspec.runtime.committer import cleanup
from mrspec.runtime.replace import finish as _finish


def watch(run: AwsRun) -> None:
    sfn = run.session.client("stepfunctions")
    with ProgressView(run.options.console, enabled=not run.options.json_output) as view:

        def on_progress(current: Snapshot) -> None:
            run.last = current
            view.update(current)
            if run.options.on_progress is not None:
                run.options.on_progress(current)

        names = [p.name for p in run.model.phases]
        run.last = follow(sfn, run.execution_arn, on_progress, backoff=run.options.poll,
                          names=names)
    if not run.last.succeeded:
        best_effort("read the failed tasks' errors", lambda: record_failures(run))
        groups = run.outputs.log_groups if run.outputs else ()
        raise JobFailedError(
            failure_message(run.spec, run.last, run.failures),
            hint=failure_hint(run.last, groups, logs_command(run)),
        )


def collect(run: AwsRun) -> None:
    run.collected = read_output_manifest(run.session, run.spec.output.prefix)
    if run.replacing is not None and run.collected:  # committed: the old output may go
        best_effort("remove the replaced output", lambda: _remove_replaced(run))
    try:
        run.actual_usd = actual_cost(run.session, run.model)
    except Exception as exc:  # a summary detail must never fail a committed run
        sys.stderr.write(f"warning: could not compute the run's actual cost: {exc}\n")
    if run.record is not None:
        run.record = run.store.save(replace(run.record, status="succeeded"))


def _remove_replaced(run: AwsRun) -> None:
    assert run.replacing is not None
    parts = run.collected.get("parts", [])
    _finish(run.replacing, [str(p["uri"] if isinstance(p, dict) else p) for p in parts])


def stop_execution(run: AwsRun, why: str) -> None:
    """Stop a running execution (best effort: teardown follows either way)."""
    if not run.execution_arn or run.session is None:
        return
    sfn = run.session.client("stepfunctions")
    try:
        if sfn.describe_execution(executionArn=run.execution_arn)["status"] == "RUNNING":
            sfn.stop_execution(executionArn=run.execution_arn, error=f"mrspec.{why}")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
        pass
    if run.record is not None:
        status: RunStatus = "interrupted" if why == "interrupted" else "failed"
        run.record = run.store.save(replace(run.record, status=status))


def after_failure(run: AwsRun, failure: BaseException) -> None:
    """Stop the execution, read the failed tasks' errors while the working bucket exists,
    remove partial output. Each step is best effort: teardown must follow whatever fails."""
    if isinstance(failure, KeyboardInterrupt):
        best_effort("stop the execution", lambda: stop_execution(run, "interrupted"))
    elif run.execution_arn:
        best_effort("stop the execution", lambda: stop_execution(run, "failed"))
    best_effort("read the failed tasks' errors", lambda: record_failures(run))
    remove_partial_output(run)


def remove_partial_output(run: AwsRun) -> None:
    """A run that started and did not commit removes its own parts (never the output it
    was to replace, see ``mrspec.runtime.replace``)."""
    if not run.execution_arn or run.model is None:
        return
    if run.last is not None and run.last.succeeded:
        return  # committed: the output is the user's now, whatever failed afterwards
    if run.kept_for_resume:  # the finished tasks' work stays for the resume
        try:
            keep.remove_uncommitted(run)
            return
        except Exception as exc:  # a part without its result gone: not safe to resume
            sys.stderr.write(
                f"warning: could not prepare the failed run for a resume ({exc}); it is "
                "torn down instead\n"
            )
            run.kept_for_resume = False
    try:
        cleanup(keep.output_config(run), work_prefix=run.model.layout.work_uri,
                remove_output=True)
    except Exception as exc:  # reported, never hiding the run's own failure
        sys.stderr.write(f"warning: could not remove the partial output of the failed run: {exc}\n")


def record_failures(run: AwsRun) -> None:
    """Read failed tasks' errors while the working bucket still exists."""
    if run.session is None or run.last is None or not run.last.failed_items or run.failures:
        return
    sfn = run.session.client("stepfunctions")
    run.failures = failed_task_errors(sfn, run.last.phases)
    if not run.failures and run.model is not None:
        run.failures = failures_from_bucket(run.session, run.model.layout)
    if not run.failures and run.model is not None:
        for phase in run.last.phases:
            if phase.unsuccessful:
                group = run.model.log_group(run.model.phase(phase.phase).function).name
                run.failures += failures_from_logs(run.session, group, phase.phase)


def save_task_logs(run: AwsRun) -> None:
    """Keep the functions' task logs and the failure records in the state directory: the
    log groups and the working bucket go with the stack."""
    if run.outputs is None or run.model is None or run.session is None:
        return  # nothing ran
    model = run.model
    groups = {
        name: log_events(run.session, name)
        for name in dict.fromkeys(model.log_group(f.log_group).name for f in model.functions)
    }
    records = failure_records(run.session, model.layout)
    saved = runlogs.gather(run.spec.name, run.run_id, groups, records, source="saved")
    run.store.save_logs(run.run_id, saved.to_json())
    run.logs_saved = True


def logs_command(run: AwsRun) -> str:
    parts = ["mrspec", "logs", "--run", run.run_id]
    if run.options.state_dir is not None:
        parts += ["--state-dir", str(run.options.state_dir)]
    return shlex.join(parts)


def tear_down(run: AwsRun, failure: BaseException | None) -> TeardownError | None:
    """Destroy and forget the stack unless kept; a failure becomes a TeardownError."""
    if run.record is None:
        return None  # nothing was created
    if run.provisioner is None:  # recorded, but creation never started
        run.store.delete(run.record.stack)
        return None
    if run.kept_for_resume:
        keep.mark_resumable(run)
        return None
    if run.options.keep:
        run.teardown = "kept"
        run.record = run.store.save(replace(run.record, status="kept"))
        return None
    try:
        run.record = run.store.save(replace(run.record, status="destroying"))
        say(run, f"removing stack {run.record.stack} ...")
        run.provisioner.destroy()
        run.provisioner.remove()
    except Exception as exc:
        run.teardown = f"failed: {exc}"
        command = destroy_command(run)
        what = f"the job {'failed' if failure else 'finished'}, but " if failure is not None else ""
        return TeardownError(
            f"{what}removing its AWS resources (stack {run.record.stack}) failed: {exc}",
            hint=f"run `{command}` to remove what is left",
        )
    run.store.delete(run.record.stack)
    run.teardown = "destroyed"
    return None


def destroy_command(run: AwsRun) -> str:
    assert run.record is not None
    parts = ["mrspec", "destroy", str(run.spec.source or run.spec.name), "--run", run.run_id]
    if run.options.state_dir is not None:
        parts += ["--state-dir", str(run.options.state_dir)]
    return shlex.join(parts)


def report(run: AwsRun, failure: BaseException | None) -> None:
    render_report(
        RunReport(
            job=run.spec.name,
            run_id=run.run_id,
            stack=run.record.stack if run.record else "",
            output=run.spec.output.prefix,
            plan=run.plan,
            snapshot=run.last,
            collected=run.collected,
            phase_s=dict(run.phase_s),
            teardown=run.teardown,
            destroy_command=destroy_command(run) if run.record else "",
            resume_command=run.record.resume_command if run.kept_for_resume and run.record else "",
            kept_usd_per_day=run.kept_usd_per_day,
            resumed=dict(run.resumed),
            estimate_usd=run.estimate_usd,
            actual_usd=run.actual_usd,
            outcome=outcome_of(failure),
            failures=tuple(run.failures),
            log_groups=run.outputs.log_groups if run.outputs else (),
            logs_command=logs_command(run) if run.logs_saved else "",
        ),
        console=run.options.console,
        json_output=run.options.json_output,
    )
