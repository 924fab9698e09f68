"""The stages of an AWS run up to a started execution: preflight, plan, budget and
limit guards, compile and package, record + deploy, upload the task manifests, start.

``mrspec.aws.driver`` runs them in order; after ``start_execution`` the run can be
detached and attached again (``mrspec.aws.context`` keeps what attaching needs).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from mrspec.aws import context, preflight
from mrspec.aws.provision import check_pulumi_cli
from mrspec.aws.run import AwsRun, build_package, provisioner_of, say
from mrspec.aws.state import RunRecord
from mrspec.plan import items
from mrspec.plan.model import MapTask, MergeTask, ReduceTask
from mrspec.runtime.committer import prepare_output
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.layout import step_phase
from mrspec.storage.s3 import S3Storage, expect_bucket_owner

T = TypeVar("T", MapTask, MergeTask, ReduceTask)


def check_preflight(run: AwsRun, output_check: bool = True) -> None:
    """Refuse what AWS or the spec would refuse, before anything is created (a resume
    checks the output itself, once it has removed the kept run's leftovers)."""
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
    if output_check:
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
    if estimated.kept_failed is not None:
        run.kept_usd_per_day = estimated.kept_failed.usd_per_day
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
        say(run, f"iam: {line}")
    # The guard checked the review stack; the run's own names (account, run id) can make
    # its policies a little longer, so its IAM sizes are checked again before deploying.
    refuse_failed_limits(run.spec.name, stack_checks(run.spec, run.model))
    folder = Path(tempfile.mkdtemp(prefix="mrspec-package-"))
    builder = run.options.package_builder or build_package
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
    run.provisioner = provisioner_of(run)
    assert run.package is not None
    say(run, f"creating stack {model.stack_name} in {model.region} ({run.provisioner.name}) ...")
    run.outputs = run.provisioner.up(model, run.package)
    run.record = run.store.save(replace(run.record, status="running"))


def upload_manifests(run: AwsRun, only: Mapping[str, Collection[int]] | None = None) -> None:
    """Every step's item manifests; ``only`` (a resume's: task ids by phase label,
    ``runtime.layout.step_phase``) keeps the tasks to run."""
    assert run.plan is not None and run.outputs is not None
    layout, plan = run.model.layout, run.plan

    def chosen(step: int, phase: str, tasks: Sequence[T]) -> list[T]:
        if only is None:
            return list(tasks)
        ids = set(only.get(step_phase(step, len(plan.steps), phase), ()))
        return [t for t in tasks if _task_id(t) in ids]

    s3 = run.session.client("s3")
    # Shards first: the manifest that references them is what the state machine reads.
    first = chosen(0, "map", plan.map_tasks)
    uploads = [(f"{layout.work_prefix}{k}", body) for k, body in items.shards(first)]
    # every step's manifests are known now (a later step's map task i reads part i of
    # the step before), so all are uploaded before the execution starts
    for step, where in zip(plan.steps, layout.steps, strict=True):
        map_tasks = chosen(step.step, "map", step.map_tasks)
        uploads.append((where.map_manifest_key, items.map_manifest(map_tasks)))
        for level, key in zip(step.merge_levels, where.merge_manifest_keys, strict=True):
            merge_tasks = chosen(step.step, level.phase, level.tasks)
            uploads.append((key, items.encode([t.to_json() for t in merge_tasks])))
        if where.reduce_manifest_key:
            reduce_tasks = chosen(step.step, "reduce", step.reduce_tasks)
            uploads.append((where.reduce_manifest_key, items.encode([t.to_json() for t in reduce_tasks])))
    for key, body in uploads:
        s3.put_object(Bucket=layout.bucket, Key=key, Body=body)


def _task_id(task: MapTask | MergeTask | ReduceTask) -> int:
    return task.partition if isinstance(task, ReduceTask) else task.task_id


def start_execution(run: AwsRun, name: str = "") -> None:
    """Start the execution (``name``: default ``run-<run id>``; a resume's is new, as
    execution names are unique per state machine)."""
    import json

    assert run.outputs is not None and run.record is not None
    # Nothing is removed here: the old output stays whole until the new _SUCCESS is
    # written, and the parts of this run carry a token no old object has.
    run.replacing = prepare_output(
        TaskConfig.from_spec(run.spec, len(run.spec.steps) - 1),  # the step writing the output
        overwrite=run.options.overwrite, token=run.run_id
    )
    sfn = run.session.client("stepfunctions")
    run.execution_started = time.time()
    started = sfn.start_execution(
        stateMachineArn=run.outputs.state_machine_arn,
        name=name or f"run-{run.run_id}",
        input=json.dumps(execution_input(run)),
    )
    run.execution_arn = str(started["executionArn"])
    run.record = run.store.save(replace(run.record, execution_arn=run.execution_arn))
    # What attaching from another process needs (the plan, the locations, the output it
    # replaces) is kept beside the record: a lost terminal must not lose the run.
    run.store.save_context(run.record.stack, context.document(run))


def execution_input(run: AwsRun) -> dict[str, Any]:
    """The parent execution's input; every task receives it as ``run``. ``exchange``
    is the last step's shape (tasks per phase): the commit checks the results against it;
    a job with steps adds every step's (``steps``), whose totals the commit reads."""
    from mrspec.runtime.committer import RunShape

    assert run.plan is not None
    shapes = [RunShape.of_step(step).to_json() for step in run.plan.steps]
    return {
        "job": run.spec.name,
        "run_id": run.run_id,
        "spec_digest": run.spec.digest,
        "started": run.execution_started,
        "part_token": run.replacing.token if run.replacing else "",
        "bucket_owner": run.account_id,  # tasks send it as ExpectedBucketOwner
        "exchange": shapes[-1],
        **({"steps": shapes} if len(shapes) > 1 else {}),
    }
