"""Lowering: ``JobSpec`` (+ optional ``JobPlan``) -> ``StackModel``. Pure; no I/O.

    names     = ResourceNames(job, run id)            deterministic physical names
    layout    = RunLayout(working bucket, run prefix)  manifests, results, failures
    functions = map, merge and reduce (unless map-only) per step, commit
                                                     sized from the spec (commit: the plan)
                                                     mrspec.aws.steps: what each step adds
    roles     = lambda, states                         mrspec.aws.iam
    machine   = the Distributed Map workflow           mrspec.aws.asl

AWS needs ``s3://`` input and output locations. A spec written for ``--local`` runs names
local folders: pass ``input_prefixes=``/``output_prefix=`` overrides, or
``placeholders=True`` (what ``mrspec compile`` does for review artifacts) to stand in
clearly invalid ``s3://LOCAL-INPUT-<n>/`` and ``s3://LOCAL-OUTPUT/`` locations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mrspec.aws import asl, iam, steps
from mrspec.aws.model import (
    Bucket,
    Function,
    Location,
    LogGroup,
    Phase,
    PolicyDocument,
    ResourceNames,
    Role,
    RunLayout,
    StackModel,
    StateMachine,
    frozen_map,
)
from mrspec.aws.policy_fit import fit_policies
from mrspec.errors import MrspecError
from mrspec.plan.model import JobPlan
from mrspec.runtime.layout import FAILURES_DIR
from mrspec.spec.model import JobSpec, is_s3_uri

# What `mrspec compile` uses, so review artifacts do not change from run to run.
REVIEW_RUN_ID = "review"
REVIEW_ACCOUNT_ID = "123456789012"  # the example account of AWS's docs (and moto's default)
PLACEHOLDER_INPUT = "s3://LOCAL-INPUT-{n}/"
PLACEHOLDER_OUTPUT = "s3://LOCAL-OUTPUT/"

HANDLERS = {
    "map": "mrspec.aws.handlers.map_handler",
    "merge": "mrspec.aws.handlers.merge_handler",
    "reduce": "mrspec.aws.handlers.reduce_handler",
    "commit": "mrspec.aws.handlers.commit_handler",
}
COMMIT_MEMORY_MB = 512  # with no plan, and the floor with one
COMMIT_TIMEOUT_S = 300
# The commit reads one result per task of the last exchange level and per reducer (about
# 1 KB each, read 8 at a time) and deletes the work objects 1,000 keys per request:
COMMIT_BASE_MB = 256  # the interpreter, boto3 and the read threads
COMMIT_MB_PER_1000_RESULTS = 32  # parsed results and the manifest being built
COMMIT_BASE_S = 30  # start-up, the manifest write, the listing of the work prefix
COMMIT_SECONDS_PER_1000_RESULTS = 10  # ~10-30 ms per GET from Lambda, 8 in flight
COMMIT_SECONDS_PER_1000_OBJECTS = 2  # listing and deleting the work objects
MAX_LAMBDA_MEMORY_MB = 10240
MAX_LAMBDA_TIMEOUT_S = 900
# Every client in the functions retries throttling (S3 SlowDown) with client-side rate
# limiting, so a throttled request is retried by botocore, not by re-running the task.
RETRY_ENVIRONMENT = {"AWS_RETRY_MODE": "adaptive", "AWS_MAX_ATTEMPTS": "10"}
MIN_EPHEMERAL_MB = steps.MIN_EPHEMERAL_MB
MAX_EPHEMERAL_MB = steps.MAX_EPHEMERAL_MB
REDUCE_EPHEMERAL_MB = steps.REDUCE_EPHEMERAL_MB
map_ephemeral_mb = steps.map_ephemeral_mb
WORK_BUCKET_EXPIRATION_DAYS = 7

MRSPEC_TAG_JOB = "mrspec:job"
MRSPEC_TAG_RUN = "mrspec:run"
MRSPEC_TAG_MANAGED = "mrspec:managed-by"

def commit_size(plan: JobPlan | None) -> tuple[int, int]:
    """(memory MB, timeout s) of the commit: linear in the results it reads (the last
    exchange level's producers and the reducers, of every step: each step's totals go in
    ``_SUCCESS``) and the work objects it deletes, never in M x R."""
    if plan is None:
        return COMMIT_MEMORY_MB, COMMIT_TIMEOUT_S
    results = objects = 0
    for step in plan.steps:
        read = step.reduce_inputs + len(step.reduce_tasks)
        results += read
        objects += 2 * (len(step.map_tasks) + sum(len(m.tasks) for m in step.merge_levels)) + read
    need = COMMIT_BASE_MB + results * COMMIT_MB_PER_1000_RESULTS / 1000
    memory = max(COMMIT_MEMORY_MB, 64 * math.ceil(need / 64))  # 512 MB up to ~8,000 results
    work = (
        COMMIT_BASE_S
        + results * COMMIT_SECONDS_PER_1000_RESULTS / 1000
        + objects * COMMIT_SECONDS_PER_1000_OBJECTS / 1000
    )
    seconds = max(COMMIT_TIMEOUT_S, 60 * math.ceil(2 * work / 60))  # twice the estimate
    return min(memory, MAX_LAMBDA_MEMORY_MB), min(seconds, MAX_LAMBDA_TIMEOUT_S)


def _resolve_locations(
    spec: JobSpec,
    input_prefixes: Sequence[str] | None,
    output_prefix: str | None,
    placeholders: bool,
) -> tuple[tuple[str, ...], str]:
    inputs = tuple(input_prefixes) if input_prefixes else spec.input.prefixes
    output = output_prefix or spec.output.prefix
    if placeholders:
        inputs = tuple(
            p if is_s3_uri(p) else PLACEHOLDER_INPUT.format(n=i) for i, p in enumerate(inputs)
        )
        output = output if is_s3_uri(output) else PLACEHOLDER_OUTPUT
    local = [p for p in (*inputs, output) if not is_s3_uri(p)]
    if local:
        raise MrspecError(
            f"job {spec.name!r}: AWS runs need s3:// input and output locations, "
            f"but these are local: {', '.join(local)}",
            hint="set input.prefix and output.prefix to s3:// URIs in the spec, pass "
            "--input/--output s3://... on the command line, or run with --local",
        )
    return inputs, output


def lower(
    spec: JobSpec,
    plan: JobPlan | None = None,
    *,
    run_id: str,
    account_id: str,
    input_prefixes: Sequence[str] | None = None,
    output_prefix: str | None = None,
    placeholders: bool = False,
    emulator: bool = False,
    kms_keys: iam.KmsKeys | None = None,
) -> StackModel:
    """The resources of one run of ``spec`` (see the module docstring): the layout, the
    functions and their log groups, the state machine, the roles, the working bucket."""
    inputs, output = _resolve_locations(spec, input_prefixes, output_prefix, placeholders)
    names = ResourceNames(spec.name, run_id)
    location = Location(region=spec.aws.region, account_id=account_id)
    tags = frozen_map(
        {
            **dict(spec.aws.tags),
            MRSPEC_TAG_JOB: spec.name,
            MRSPEC_TAG_RUN: run_id,
            MRSPEC_TAG_MANAGED: "mrspec",
        }
    )
    layout = _layout(spec, plan, names, f"runs/{run_id}/", inputs, output)
    functions, log_groups = _functions(spec, plan, names, location, layout, tags)
    state_machine, phases = _state_machine(
        spec, plan, names, location, layout, functions, tags, emulator
    )
    lambda_role, states_role, widened = _roles(
        names, location, layout, functions, log_groups, state_machine, tags, kms_keys
    )
    return StackModel(
        job_name=spec.name,
        run_id=run_id,
        stack_name=names.base,
        location=location,
        architecture=spec.aws.architecture,
        layout=layout,
        buckets=(_work_bucket(names, location, tags),),
        log_groups=log_groups,
        roles=(lambda_role, states_role),
        functions=functions,
        state_machine=state_machine,
        phases=phases,
        tags=tags,
        spec_digest=spec.digest,
        emulator=emulator,
        iam_widened=widened,
    )


def _layout(
    spec: JobSpec,
    plan: JobPlan | None,
    names: ResourceNames,
    work_prefix: str,
    inputs: tuple[str, ...],
    output: str,
) -> RunLayout:
    """Where the run's manifests (each step's), results and failures go in the working
    bucket."""
    first, *later = steps.step_layouts(spec, plan, work_prefix)
    return RunLayout(
        bucket=names.bucket,
        work_prefix=work_prefix,
        map_manifest_key=first.map_manifest_key,
        reduce_manifest_key=first.reduce_manifest_key,
        merge_manifest_keys=first.merge_manifest_keys,
        later_steps=tuple(later),
        results_prefix=f"{work_prefix}sfn-results/",
        failures_prefix=f"{work_prefix}{FAILURES_DIR}/",
        input_prefixes=inputs,
        output_prefix=output,
    )


def _functions(
    spec: JobSpec,
    plan: JobPlan | None,
    names: ResourceNames,
    location: Location,
    layout: RunLayout,
    tags: Mapping[str, str],
) -> tuple[tuple[Function, ...], tuple[LogGroup, ...]]:
    """Each step's map, merge and reduce (unless map-only) functions, the commit, each with
    its log group, and the state machine's log group last."""
    sizes = [(s.logical_name, s.kind, s.memory_mb, s.timeout_s, s.ephemeral_mb)
             for s in steps.function_sizes(spec)]
    sizes.append(("commit", "commit", *commit_size(plan), MIN_EPHEMERAL_MB))
    environment = frozen_map(
        {
            "MRSPEC_JOB": spec.name,
            "MRSPEC_RUN_ID": names.run_id,
            "MRSPEC_WORK_URI": layout.work_uri,
            **RETRY_ENVIRONMENT,
        }
    )
    retention = spec.aws.log_retention_days
    log_groups: list[LogGroup] = []
    functions: list[Function] = []
    for logical, kind, memory, timeout, ephemeral in sizes:
        lg_name = names.function_log_group(logical)
        log_groups.append(
            LogGroup(logical, lg_name, location.log_group_arn(lg_name), retention, tags)
        )
        fn_name = names.function(logical)
        functions.append(
            Function(
                logical_name=logical,
                name=fn_name,
                arn=location.function_arn(fn_name),
                role="lambda",
                handler=HANDLERS[kind],
                memory_mb=memory,
                timeout_s=timeout,
                ephemeral_storage_mb=ephemeral,
                architecture=spec.aws.architecture,
                log_group=logical,
                environment=environment,
                tags=tags,
            )
        )
    sm_lg = names.state_machine_log_group
    log_groups.append(LogGroup("states", sm_lg, location.log_group_arn(sm_lg), retention, tags))
    return tuple(functions), tuple(log_groups)


def _state_machine(
    spec: JobSpec,
    plan: JobPlan | None,
    names: ResourceNames,
    location: Location,
    layout: RunLayout,
    functions: Sequence[Function],
    tags: Mapping[str, str],
    emulator: bool,
) -> tuple[StateMachine, tuple[Phase, ...]]:
    """The workflow (its phases in order, then the commit) and each phase's model."""
    attempts = max(1, spec.limits.max_attempts)
    fn_arn = {f.logical_name: f.arn for f in functions}
    phase_inputs = steps.phase_inputs(spec, plan, layout.steps, layout.results_prefix, fn_arn)
    definition = asl.build_definition(
        asl.DefinitionInput(
            job_name=spec.name,
            run_id=names.run_id,
            bucket=names.bucket,
            work_uri=layout.work_uri,
            phases=tuple(phase_inputs),
            commit_function_arn=fn_arn["commit"],
            max_attempts=attempts,
            emulator=emulator,
            commit_step=None if len(spec.steps) == 1 else len(spec.steps) - 1,
        )
    )
    items = steps.phase_items(plan)
    phases = tuple(
        Phase(
            name=p.name,
            state_name=asl.state_name(p.name),
            function=steps.phase_function(p.name),
            execution_type="STANDARD" if emulator else p.execution_type,
            max_concurrency=p.max_concurrency,
            child_states=1,
            child_transitions=1,
            task_attempts=attempts,
            items=items.get(p.name),
        )
        for p in phase_inputs
    )
    machine = StateMachine(
        logical_name="job",
        name=names.state_machine,
        arn=location.state_machine_arn(names.state_machine),
        role="states",
        definition=definition,
        log_group="states",
        type="STANDARD",
        log_level="ERROR",
        include_execution_data=False,
        parent_transitions=asl.parent_transitions(len(phases)),
        tags=tags,
    )
    return machine, phases


def _roles(
    names: ResourceNames,
    location: Location,
    layout: RunLayout,
    functions: Sequence[Function],
    log_groups: Sequence[LogGroup],
    state_machine: StateMachine,
    tags: Mapping[str, str],
    kms_keys: iam.KmsKeys | None,
) -> tuple[Role, Role, tuple[str, ...]]:
    """The functions' role and the state machine's, each fitted within IAM's sizes, and
    the input prefixes widened to fit the functions' (``policy_fit``; usually none)."""

    def lambda_document(prefixes: Sequence[str]) -> PolicyDocument:
        return iam.lambda_policy(
            location,
            input_prefixes=prefixes,
            output_prefix=layout.output_prefix,
            work_bucket=names.bucket,
            work_prefix=layout.work_prefix,
            log_group_arns=[lg.arn for lg in log_groups if lg.logical_name != "states"],
            kms_keys=kms_keys,
        )

    lambda_fit = fit_policies(
        names.role("lambda"), location, "mrspec-tasks", lambda_document, layout.input_prefixes
    )
    lambda_role = Role(
        logical_name="lambda",
        name=names.role("lambda"),
        arn=location.role_arn(names.role("lambda")),
        trust=iam.lambda_trust(),
        policies=lambda_fit.inline,
        managed_policies=lambda_fit.managed,
        tags=tags,
    )
    manifest_keys = [k for step in layout.steps for k in step.manifest_keys]
    states_document = iam.states_policy(
        location,
        state_machine_name=names.state_machine,
        function_arns=[f.arn for f in functions],
        work_bucket=names.bucket,
        manifest_keys=manifest_keys,
        results_prefix=layout.results_prefix,
        logging=state_machine.log_level != "OFF",
    )
    states_fit = fit_policies(
        names.role("states"), location, "mrspec-workflow", lambda _: states_document
    )
    states_role = Role(
        logical_name="states",
        name=names.role("states"),
        arn=location.role_arn(names.role("states")),
        trust=iam.states_trust(location),
        policies=states_fit.inline,
        managed_policies=states_fit.managed,
        tags=tags,
    )
    return lambda_role, states_role, lambda_fit.widened


def _work_bucket(names: ResourceNames, location: Location, tags: Mapping[str, str]) -> Bucket:
    """The run's working bucket (manifests, shuffle, results), TLS only, expiring."""
    return Bucket(
        logical_name="work",
        name=names.bucket,
        arn=location.bucket_arn(names.bucket),
        policy=iam.tls_only_bucket_policy(location, names.bucket),
        expiration_days=WORK_BUCKET_EXPIRATION_DAYS,
        tags=tags,
    )
