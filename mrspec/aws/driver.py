"""``mrspec apply`` on AWS: deploy a throw-away stack, run the job, collect, tear down.

The pipeline, in order (``run_on_aws``)::

    preflight -> plan -> guard (budget, AWS limits) -> compile + package
        -> record the run -> up -> upload task manifests -> start execution
        -> follow -> collect -> [finally] stop execution if interrupted, destroy + remove

Teardown runs in every case (success, failed task, exception, Ctrl-C, SIGTERM) unless
``--keep``; the run is recorded in mrspec's state directory *before* anything is created,
so a teardown that cannot finish leaves an exact ``mrspec destroy`` command behind. The
user's output prefix is never part of the stack: teardown cannot touch results.

Exit codes: 0 success, 1 failed job, 3 refused preflight, 4 failed teardown,
130 interrupted (see ``mrspec.errors.ExitCode``).

What this module needs while an execution runs is imported at the top: nothing is
imported lazily once the execution has started (the emulated-AWS tests run the Lambda
handlers in this process, see tests/aws_emulation.py).
"""

from __future__ import annotations

import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mrspec.aws import preflight
from mrspec.aws.iam import KmsKeys
from mrspec.aws.interrupt import Terminated, shielded, terminate_like_ctrl_c
from mrspec.aws.provision import check_pulumi_cli
from mrspec.aws.provisioner import (
    Provisioner,
    ProvisionerFactory,
    StackOutputs,
    make_provisioner,
)
from mrspec.aws.report import (
    ProgressView,
    RunReport,
    actual_cost,
    failure_hint,
    failure_message,
    failures_from_bucket,
    failures_from_logs,
    read_output_manifest,
    render_report,
)
from mrspec.aws.state import RunRecord, RunStatus, StateStore, new_run_id, state_dir
from mrspec.aws.watch import Backoff, Snapshot, TaskFailure, failed_task_errors, follow
from mrspec.errors import ExitCode, JobFailedError, MrspecError, TeardownError
from mrspec.plan import items
from mrspec.plan.model import JobPlan
from mrspec.runtime.committer import cleanup, prepare_output
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.replace import Replacement
from mrspec.runtime.replace import finish as _finish
from mrspec.spec.model import JobSpec
from mrspec.storage.s3 import S3Storage, expect_bucket_owner


@dataclass(frozen=True)
class AwsRunOptions:
    keep: bool = False  # leave the stack up (remove it later with `mrspec destroy`)
    overwrite: bool = False  # allow a non-empty output prefix
    state_dir: Path | None = None  # default: $MRSPEC_STATE_DIR or ~/.mrspec/state
    json_output: bool = False
    provisioner: str = "pulumi"  # "pulumi" | "boto3"
    # Tests inject their own provisioner (and session); both default to the real thing.
    provisioner_factory: ProvisionerFactory | None = None
    session: Any = None
    emulator: bool = False  # compile the moto-accepted variant of the state machine
    run_id: str | None = None
    poll: Backoff = field(default_factory=Backoff)
    on_progress: Callable[[Snapshot], None] | None = None
    # Builds the deployment zip into a folder; default: mrspec.aws.package.build_package.
    package_builder: Callable[[JobSpec, Path], Path] | None = None
    # s3:// locations replacing the spec's (a spec written for --local names folders).
    input_prefixes: tuple[str, ...] = ()
    output_prefix: str | None = None
    console: Any = None  # a rich Console; default: stderr for progress, stdout for results
    handle_signals: bool = True


@dataclass
class AwsRun:
    """The state of one run as the pipeline fills it in."""

    spec: JobSpec
    options: AwsRunOptions
    store: StateStore
    run_id: str
    session: Any = None
    account_id: str = ""
    plan: JobPlan | None = None
    model: Any = None  # mrspec.aws.model.StackModel
    package: Path | None = None
    record: RunRecord | None = None
    provisioner: Provisioner | None = None
    outputs: StackOutputs | None = None
    execution_arn: str = ""
    last: Snapshot | None = None
    failures: list[TaskFailure] = field(default_factory=list)
    phase_s: dict[str, float] = field(default_factory=dict)
    account_concurrency: int | None = None  # the account's Lambda limit, when readable
    estimate_usd: float | None = None
    actual_usd: float | None = None
    collected: dict[str, Any] = field(default_factory=dict)
    replacing: Replacement | None = None  # the output this run replaces (--overwrite)
    kms_keys: KmsKeys | None = None  # the SSE-KMS keys of the job's buckets (preflight)
    teardown: str = "not needed"  # "destroyed" | "kept" | "failed: ..." | "not needed"


def run_on_aws(spec: JobSpec, options: AwsRunOptions | None = None) -> int:
    """Run ``spec`` on AWS end to end; returns 0 or raises a ``MrspecError``."""
    from mrspec.aws.lower import refuse_steps

    refuse_steps(spec)  # before any check that needs AWS: the reason the run cannot be
    options = options or AwsRunOptions()
    spec = _with_locations(spec, options)
    run = AwsRun(
        spec=spec,
        options=options,
        store=StateStore(state_dir(options.state_dir)),
        run_id=options.run_id or new_run_id(),
    )
    with terminate_like_ctrl_c(options.handle_signals):
        with _timed(run, "preflight"):
            check_preflight(run)
        with _timed(run, "plan"):
            make_plan(run)
        guard_budget(run)
        with _timed(run, "compile"):
            compile_stack(run)
        failure: BaseException | None = None
        try:
            with _timed(run, "deploy"):
                deploy(run)
            upload_manifests(run)
            start_execution(run)
            with _timed(run, "run"):
                watch(run)
            collect(run)
        except BaseException as exc:  # every outcome reaches teardown
            failure = exc
        with shielded():  # a second Ctrl-C must not skip what follows
            if failure is not None:
                after_failure(run, failure)
            with _timed(run, "teardown"):
                teardown_error = tear_down(run, failure)
            _best_effort("print the run summary", lambda: report(run, failure))
    if teardown_error is not None:
        raise teardown_error from failure
    if failure is not None:
        raise failure
    return int(ExitCode.OK)


# --------------------------------------------------------------------------- stages


def check_preflight(run: AwsRun) -> None:
    spec, options = run.spec, run.options
    preflight.check_locations(spec)
    if options.provisioner == "pulumi" and options.provisioner_factory is None:
        check_pulumi_cli()
    run.session = options.session or preflight.aws_session(spec)
    run.account_id = preflight.check_identity(run.session)
    # From here on every S3 request to the job's buckets names the account that owns them
    # (the driver's own clients, and the shared storage that prepares and cleans the output)
    expect_bucket_owner(run.session.events, run.account_id)
    expect_bucket_owner(S3Storage.shared().client.meta.events, run.account_id)
    preflight.check_input_readable(run.session, spec)
    preflight.check_output_empty(run.session, spec, options.overwrite)
    run.kms_keys = preflight.bucket_kms_keys(run.session, spec)
    run.account_concurrency = preflight.check_concurrency(run.session, spec)
    run.store.ensure()


def make_plan(run: AwsRun) -> None:
    from mrspec.plan.planner import plan_job
    from mrspec.storage.s3 import S3Storage

    storage = S3Storage(run.session.client("s3"))
    run.plan = plan_job(run.spec, lambda _location: storage)


def guard_budget(run: AwsRun) -> None:
    """Estimate the run; refuse when it exceeds ``limits.budget_usd`` or any AWS limit
    ``plan`` checks (``mrspec.cost.limits``), before anything is created."""
    from mrspec.cost.assumptions import default_assumptions
    from mrspec.cost.estimate import estimate
    from mrspec.cost.guard import check_budget
    from mrspec.cost.limits import ACCOUNT_CONCURRENCY_CHECK, refuse_failed_limits
    from mrspec.cost.pricing import load_pricing
    from mrspec.cost.stack import review_model

    assert run.plan is not None
    assumptions = default_assumptions()
    if run.account_concurrency is not None:  # the account's own quota, not the default
        assumptions = assumptions.with_values(
            {"account_lambda_concurrency": run.account_concurrency}, "account"
        )
    estimated = estimate(
        run.spec,
        run.plan,
        review_model(run.spec, run.plan),
        load_pricing(),
        assumptions,
        spec_path=str(run.spec.source or ""),
    )
    run.estimate_usd = estimated.total_usd
    check_budget(run.spec, estimated)
    checks = estimated.limits
    if run.account_concurrency is None:
        # Unread quota: the check compares with the assumed default, which may be far
        # below the account's; Lambda would throttle (retried), not fail. Not a refusal.
        checks = tuple(c for c in checks if c.name != ACCOUNT_CONCURRENCY_CHECK)
    refuse_failed_limits(run.spec.name, checks)


def compile_stack(run: AwsRun) -> None:
    """The run's StackModel (state machine, IAM, functions) and its deployment zip."""
    from mrspec.aws.lower import lower
    from mrspec.cost.limits import refuse_failed_limits, stack_checks

    assert run.plan is not None
    run.model = lower(
        run.spec,
        run.plan,
        run_id=run.run_id,
        account_id=run.account_id,
        emulator=run.options.emulator,
        kms_keys=run.kms_keys,
    )
    for line in run.model.iam_widened:  # access beyond what the spec names: say so
        _say(run, f"iam: {line}")
    # The guard checked the review stack; the run's own names (account, run id) can make
    # its policies a little longer, so its IAM sizes are checked again before deploying.
    refuse_failed_limits(run.spec.name, stack_checks(run.spec, run.model))
    folder = Path(tempfile.mkdtemp(prefix="mrspec-package-"))
    builder = run.options.package_builder or _build_package
    run.package = builder(run.spec, folder)


def deploy(run: AwsRun) -> None:
    from mrspec.aws.boto_provision import resources_of

    model = run.model
    run.record = run.store.save(
        RunRecord(
            job=run.spec.name,
            run_id=run.run_id,
            stack=model.stack_name,
            region=model.region,
            provisioner=run.options.provisioner,
            created_at=time.time(),
            spec_path=str(run.spec.source or ""),
            output=run.spec.output.prefix,
            resources=resources_of(model),
        )
    )
    run.provisioner = _provisioner(run)
    assert run.package is not None
    _say(run, f"creating stack {model.stack_name} in {model.region} ({run.provisioner.name}) ...")
    run.outputs = run.provisioner.up(model, run.package)
    run.record = run.store.save(replace(run.record, status="running"))


def upload_manifests(run: AwsRun) -> None:
    assert run.plan is not None and run.outputs is not None
    layout, plan = run.model.layout, run.plan
    s3 = run.session.client("s3")
    # Shards first: the manifest that references them is what the state machine reads.
    uploads = [(f"{layout.work_prefix}{k}", body) for k, body in items.shards(plan.map_tasks)]
    uploads.append((layout.map_manifest_key, items.map_manifest(plan.map_tasks)))
    for level, key in zip(plan.merge_levels, layout.merge_manifest_keys, strict=True):
        uploads.append((key, items.encode([t.to_json() for t in level.tasks])))
    reduce_items = [t.to_json() for t in plan.reduce_tasks]
    if layout.reduce_manifest_key:
        uploads.append((layout.reduce_manifest_key, items.encode(reduce_items)))
    for key, body in uploads:
        s3.put_object(Bucket=layout.bucket, Key=key, Body=body)


def start_execution(run: AwsRun) -> None:
    import json

    assert run.outputs is not None and run.record is not None
    # Nothing is removed here: the old output stays whole until the new _SUCCESS is
    # written, and the parts of this run carry a token no old object has.
    run.replacing = prepare_output(
        TaskConfig.from_spec(run.spec), overwrite=run.options.overwrite, token=run.run_id
    )
    sfn = run.session.client("stepfunctions")
    started = sfn.start_execution(
        stateMachineArn=run.outputs.state_machine_arn,
        name=f"run-{run.run_id}",
        input=json.dumps(execution_input(run)),
    )
    run.execution_arn = str(started["executionArn"])
    run.record = run.store.save(replace(run.record, execution_arn=run.execution_arn))


def execution_input(run: AwsRun) -> dict[str, Any]:
    """The parent execution's input; every task receives it as ``run``. ``exchange``
    is the run's shape (tasks per phase): the commit checks the results against it."""
    from mrspec.runtime.committer import RunShape

    assert run.plan is not None
    return {
        "job": run.spec.name,
        "run_id": run.run_id,
        "spec_digest": run.spec.digest,
        "started": time.time(),
        "part_token": run.replacing.token if run.replacing else "",
        "bucket_owner": run.account_id,  # tasks send it as ExpectedBucketOwner
        "exchange": RunShape.of_plan(run.plan).to_json(),
    }


def watch(run: AwsRun) -> None:
    sfn = run.session.client("stepfunctions")
    with ProgressView(run.options.console, enabled=not run.options.json_output) as view:

        def on_progress(current: Snapshot) -> None:
            run.last = current
            view.update(current)
            if run.options.on_progress is not None:
                run.options.on_progress(current)

        run.last = follow(sfn, run.execution_arn, on_progress, backoff=run.options.poll)
    if not run.last.succeeded:
        _best_effort("read the failed tasks' errors", lambda: record_failures(run))
        groups = run.outputs.log_groups if run.outputs else ()
        raise JobFailedError(
            failure_message(run.spec, run.last, run.failures),
            hint=failure_hint(run.last, groups, run.options.keep),
        )


def collect(run: AwsRun) -> None:
    run.collected = read_output_manifest(run.session, run.spec.output.prefix)
    if run.replacing is not None and run.collected:  # committed: the old output may go
        _best_effort("remove the replaced output", lambda: _remove_replaced(run))
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
    import botocore.exceptions

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
        _best_effort("stop the execution", lambda: stop_execution(run, "interrupted"))
    elif run.execution_arn:
        _best_effort("stop the execution", lambda: stop_execution(run, "failed"))
    _best_effort("read the failed tasks' errors", lambda: record_failures(run))
    remove_partial_output(run)


def _best_effort(what: str, step: Callable[[], None]) -> None:
    try:
        step()
    except Exception as exc:  # reported; never hides the run's own outcome
        sys.stderr.write(f"warning: could not {what}: {exc}\n")


def remove_partial_output(run: AwsRun) -> None:
    """A run that started and did not commit removes its own parts (never the output it
    was to replace, see ``mrspec.runtime.replace``)."""
    if not run.execution_arn or run.model is None:
        return
    if run.last is not None and run.last.succeeded:
        return  # committed: the output is the user's now, whatever failed afterwards
    try:
        token = run.replacing.token if run.replacing else ""
        config = replace(TaskConfig.from_spec(run.spec), part_token=token)
        cleanup(config, work_prefix=run.model.layout.work_uri, remove_output=True)
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
                group = run.model.log_group(phase.phase).name
                run.failures += failures_from_logs(run.session, group, phase.phase)


def tear_down(run: AwsRun, failure: BaseException | None) -> TeardownError | None:
    """Destroy and forget the stack unless kept; a failure becomes a TeardownError."""
    if run.record is None:
        return None  # nothing was created
    if run.provisioner is None:  # recorded, but creation never started
        run.store.delete(run.record.stack)
        return None
    if run.options.keep:
        run.teardown = "kept"
        run.record = run.store.save(replace(run.record, status="kept"))
        return None
    try:
        run.record = run.store.save(replace(run.record, status="destroying"))
        _say(run, f"removing stack {run.record.stack} ...")
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
            estimate_usd=run.estimate_usd,
            actual_usd=run.actual_usd,
            outcome=_outcome(failure),
            failures=tuple(run.failures),
            log_groups=run.outputs.log_groups if run.outputs else (),
        ),
        console=run.options.console,
        json_output=run.options.json_output,
    )


# --------------------------------------------------------------------------- helpers


def _say(run: AwsRun, text: str) -> None:
    """A progress line on stderr (not with --json, whose stdout is for scripts)."""
    if run.options.json_output:
        return
    if run.options.console is not None:
        run.options.console.print(text, markup=False, highlight=False)
    else:
        sys.stderr.write(text + "\n")


def _build_package(spec: JobSpec, folder: Path) -> Path:
    from mrspec.aws.package import build_package

    return build_package(spec, folder, output_prefix=spec.output.prefix).path


def _with_locations(spec: JobSpec, options: AwsRunOptions) -> JobSpec:
    if options.input_prefixes:
        spec = replace(spec, input=replace(spec.input, prefixes=tuple(options.input_prefixes)))
    if options.output_prefix:
        spec = replace(spec, output=replace(spec.output, prefix=options.output_prefix))
    return spec


def _provisioner(run: AwsRun) -> Provisioner:
    assert run.record is not None
    if run.options.provisioner_factory is not None:
        return run.options.provisioner_factory(run.record, run.store)
    return make_provisioner(run.options.provisioner, run.record, run.store, session=run.session)


def _outcome(failure: BaseException | None) -> str:
    if failure is None:
        return "succeeded"
    if isinstance(failure, KeyboardInterrupt):
        return "interrupted"
    if isinstance(failure, JobFailedError):
        return "failed"
    return "error"


@contextmanager
def _timed(run: AwsRun, phase: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        run.phase_s[phase] = time.monotonic() - started


__all__ = ["AwsRunOptions", "MrspecError", "Terminated", "run_on_aws"]
