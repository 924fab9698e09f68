"""``StackModel``: the AWS resources of one job run as plain, frozen data.

``mrspec.aws.lower`` builds it from a ``JobSpec`` (and optionally a ``JobPlan``); several
consumers read it without re-deriving anything:

- ``mrspec.aws.component`` emits it as Pulumi resources (pulumi-aws v7);
- ``mrspec compile`` writes it to ``stacks/<job>/`` as review artifacts (``to_json``);
- the cost model reads function sizes, phases and child execution types;
- the emulated-AWS tests and the apply driver create it with boto3 in moto.

Physical names are deterministic from the job name and a short run id, so every ARN is
known before anything is created (no dependency cycles between roles, policies and the
state machine). No I/O and no Pulumi import here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar

# Names and ARNs live in mrspec.aws.names; re-exported here (see __all__).
from mrspec.aws.names import (
    MAX_BUCKET_NAME,
    MAX_FUNCTION_NAME,
    MAX_JOB_PART,
    MAX_LOG_GROUP_NAME,
    MAX_ROLE_NAME,
    MAX_RUN_ID,
    MAX_STATE_MACHINE_NAME,
    NAME_PREFIX,
    RUN_ID_RE,
    Location,
    ResourceNames,
    job_name_part,
)

# IAM policy documents live in mrspec.aws.policy_doc; re-exported here (see __all__).
from mrspec.aws.policy_doc import (
    IAM_POLICY_VERSION,
    Condition,
    InlinePolicy,
    ManagedPolicy,
    PolicyDocument,
    Statement,
)

Architecture = Literal["arm64", "x86_64"]
ExecutionType = Literal["STANDARD", "EXPRESS"]
ResourceKind = Literal["bucket", "log_group", "role", "function", "state_machine"]

LAMBDA_RUNTIME = "python3.12"


def _empty_mapping() -> Mapping[str, str]:
    return MappingProxyType({})


def frozen_map(mapping: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """A read-only copy with sorted keys (stable JSON output)."""
    return MappingProxyType(dict(sorted((mapping or {}).items())))


# --------------------------------------------------------------------------- IAM


@dataclass(frozen=True)
class Role:
    logical_name: str  # "lambda" | "states"
    name: str
    arn: str
    trust: PolicyDocument  # the assume-role policy
    policies: tuple[InlinePolicy, ...]
    tags: Mapping[str, str] = field(default_factory=_empty_mapping)
    managed_policies: tuple[ManagedPolicy, ...] = ()

    kind: ResourceKind = field(default="role", init=False)

    def to_json(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "logical_name": self.logical_name,
            "name": self.name,
            "arn": self.arn,
            "assume_role_policy": self.trust.to_json(),
            "inline_policies": {p.name: p.document.to_json() for p in self.policies},
            "tags": dict(self.tags),
        }
        if self.managed_policies:
            out["managed_policies"] = {
                p.name: {"arn": p.arn, "policy": p.document.to_json()}
                for p in self.managed_policies
            }
        return out


# --------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class PublicAccessBlock:
    block_public_acls: bool = True
    block_public_policy: bool = True
    ignore_public_acls: bool = True
    restrict_public_buckets: bool = True


@dataclass(frozen=True)
class Bucket:
    logical_name: str  # "work"
    name: str
    arn: str
    policy: PolicyDocument  # TLS-only bucket policy
    force_destroy: bool = True
    sse_algorithm: Literal["AES256", "aws:kms"] = "AES256"
    bucket_key_enabled: bool = True
    public_access_block: PublicAccessBlock = field(default_factory=PublicAccessBlock)
    expiration_days: int = 7  # lifecycle safety net: objects expire even if teardown fails
    abort_multipart_days: int = 1
    tags: Mapping[str, str] = field(default_factory=_empty_mapping)

    kind: ResourceKind = field(default="bucket", init=False)

    def to_json(self) -> dict[str, Any]:
        pab = self.public_access_block
        return {
            "kind": self.kind,
            "logical_name": self.logical_name,
            "name": self.name,
            "arn": self.arn,
            "force_destroy": self.force_destroy,
            "encryption": {
                "sse_algorithm": self.sse_algorithm,
                "bucket_key_enabled": self.bucket_key_enabled,
            },
            "public_access_block": {
                "block_public_acls": pab.block_public_acls,
                "block_public_policy": pab.block_public_policy,
                "ignore_public_acls": pab.ignore_public_acls,
                "restrict_public_buckets": pab.restrict_public_buckets,
            },
            "lifecycle": {
                "expiration_days": self.expiration_days,
                "abort_incomplete_multipart_upload_days": self.abort_multipart_days,
            },
            "policy": self.policy.to_json(),
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class LogGroup:
    logical_name: str  # "map", "reduce", "commit" (functions) or "states"
    name: str
    arn: str
    retention_days: int
    tags: Mapping[str, str] = field(default_factory=_empty_mapping)

    kind: ResourceKind = field(default="log_group", init=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "logical_name": self.logical_name,
            "name": self.name,
            "arn": self.arn,
            "retention_days": self.retention_days,
            "tags": dict(self.tags),
        }


# --------------------------------------------------------------------------- compute


@dataclass(frozen=True)
class Function:
    logical_name: str  # "map" | "reduce" | "commit"
    name: str
    arn: str
    role: str  # logical name of its Role
    handler: str  # "mrspec.aws.handlers.map_handler"
    memory_mb: int
    timeout_s: int
    ephemeral_storage_mb: int
    architecture: Architecture
    log_group: str  # logical name of its LogGroup
    runtime: str = LAMBDA_RUNTIME
    environment: Mapping[str, str] = field(default_factory=_empty_mapping)
    tags: Mapping[str, str] = field(default_factory=_empty_mapping)

    kind: ResourceKind = field(default="function", init=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "logical_name": self.logical_name,
            "name": self.name,
            "arn": self.arn,
            "role": self.role,
            "handler": self.handler,
            "runtime": self.runtime,
            "memory_mb": self.memory_mb,
            "timeout_s": self.timeout_s,
            "ephemeral_storage_mb": self.ephemeral_storage_mb,
            "architecture": self.architecture,
            "log_group": self.log_group,
            "environment": dict(self.environment),
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class Phase:
    """One Distributed Map of the state machine, as the cost model sees it."""

    name: str  # "map" | "merge-<level>" | "reduce"
    state_name: str  # the Map state's name in the definition
    function: str  # logical name of the Function each child invokes
    execution_type: ExecutionType  # of the child workflow executions
    max_concurrency: int
    child_states: int  # states inside one child workflow
    child_transitions: int  # state transitions of one child without retries
    task_attempts: int  # attempts per task on task errors (1 + retries)
    items: int | None = None  # children; known only when lowered with a plan

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state_name": self.state_name,
            "function": self.function,
            "execution_type": self.execution_type,
            "max_concurrency": self.max_concurrency,
            "child_states": self.child_states,
            "child_transitions": self.child_transitions,
            "task_attempts": self.task_attempts,
            "items": self.items,
        }


@dataclass(frozen=True)
class StateMachine:
    logical_name: str  # "job"
    name: str
    arn: str
    role: str  # logical name of its Role
    definition: Mapping[str, Any]  # the ASL document (JSONPath); treat as read-only
    log_group: str  # logical name of its LogGroup
    type: ExecutionType = "STANDARD"
    log_level: Literal["ALL", "ERROR", "FATAL", "OFF"] = "ERROR"
    include_execution_data: bool = False
    # Transitions of the parent workflow on a successful run (children not included).
    parent_transitions: int = 0
    tags: Mapping[str, str] = field(default_factory=_empty_mapping)

    kind: ResourceKind = field(default="state_machine", init=False)

    def definition_json(self) -> str:
        """The definition as AWS receives it: stable, pretty JSON."""
        return json.dumps(self.definition, indent=2, sort_keys=False) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "logical_name": self.logical_name,
            "name": self.name,
            "arn": self.arn,
            "role": self.role,
            "type": self.type,
            "log_group": self.log_group,
            "logging": {
                "level": self.log_level,
                "include_execution_data": self.include_execution_data,
            },
            "parent_transitions": self.parent_transitions,
            "definition_file": "statemachine.asl.json",
            "tags": dict(self.tags),
        }


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class StepLayout:
    """Where one step keeps its item manifests. Step 0's are the ``RunLayout``'s own
    fields; a later step's are under ``<work>/step-<s>/`` (``runtime.layout``)."""

    step: int
    work_prefix: str  # "runs/<run id>/" for step 0, "runs/<run id>/step-<s>/" after
    map_manifest_key: str
    reduce_manifest_key: str  # "" for a map-only step
    merge_manifest_keys: tuple[str, ...] = ()

    @property
    def manifest_keys(self) -> tuple[str, ...]:
        """Every manifest of the step, in phase order."""
        keys = (self.map_manifest_key, *self.merge_manifest_keys, self.reduce_manifest_key)
        return tuple(k for k in keys if k)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "work_prefix": self.work_prefix,
            "map_manifest_key": self.map_manifest_key,
            "merge_manifest_keys": list(self.merge_manifest_keys),
            "reduce_manifest_key": self.reduce_manifest_key,
        }


@dataclass(frozen=True)
class RunLayout:
    """Where a run keeps its data. Keys are relative to the working bucket."""

    bucket: str
    work_prefix: str  # "runs/<run id>/" (ends with "/")
    map_manifest_key: str  # JSON array of MapTask.to_json(), one item per map child
    reduce_manifest_key: str  # JSON array of ReduceTask.to_json(); "" for map-only jobs
    results_prefix: str  # Distributed Map ResultWriter output ("<work>/sfn-results/")
    failures_prefix: str  # handlers record a failed task's error here
    input_prefixes: tuple[str, ...]  # s3:// URIs the job reads
    output_prefix: str  # s3:// URI the job writes (never part of the stack)
    merge_manifest_keys: tuple[str, ...] = ()  # one JSON array of MergeTask per merge level
    later_steps: tuple[StepLayout, ...] = ()  # steps 1.. of a job with steps

    @property
    def steps(self) -> tuple[StepLayout, ...]:
        """Every step's manifests in order (one step for a job without ``steps``)."""
        first = StepLayout(0, self.work_prefix, self.map_manifest_key,
                           self.reduce_manifest_key, self.merge_manifest_keys)
        return (first, *self.later_steps)

    @property
    def work_uri(self) -> str:
        """``s3://<bucket>/runs/<run id>`` (no trailing slash): the runtime's work prefix."""
        return f"s3://{self.bucket}/{self.work_prefix.rstrip('/')}"

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "work_prefix": self.work_prefix,
            "work_uri": self.work_uri,
            "map_manifest_key": self.map_manifest_key,
            "reduce_manifest_key": self.reduce_manifest_key,
            "results_prefix": self.results_prefix,
            "failures_prefix": self.failures_prefix,
            "input_prefixes": list(self.input_prefixes),
            "output_prefix": self.output_prefix,
            "merge_manifest_keys": list(self.merge_manifest_keys),
            **({"steps": [st.to_json() for st in self.later_steps]} if self.later_steps else {}),
        }


# --------------------------------------------------------------------------- the stack

Resource = Bucket | LogGroup | Role | Function | StateMachine


@dataclass(frozen=True)
class StackModel:
    job_name: str
    run_id: str
    stack_name: str  # == names.base; also the Pulumi stack name
    location: Location
    architecture: Architecture
    layout: RunLayout
    buckets: tuple[Bucket, ...]
    log_groups: tuple[LogGroup, ...]
    roles: tuple[Role, ...]
    functions: tuple[Function, ...]
    state_machine: StateMachine
    phases: tuple[Phase, ...]  # map, then reduce (absent for map-only jobs)
    tags: Mapping[str, str] = field(
        default_factory=_empty_mapping
    )  # on every resource (spec tags + mrspec:* tags)
    spec_digest: str = ""
    emulator: bool = False  # True: the moto-accepted variant of the definition
    # input grants widened to fit IAM's limits, with the reason (aws.policy_fit)
    iam_widened: tuple[str, ...] = ()

    @property
    def region(self) -> str:
        return self.location.region

    @property
    def account_id(self) -> str:
        return self.location.account_id

    @property
    def work_bucket(self) -> Bucket:
        return self.buckets[0]

    def resources(self) -> Iterator[Resource]:
        """Every resource, in creation order (a dependency never follows its user)."""
        yield from self.buckets
        yield from self.log_groups
        yield from self.roles
        yield from self.functions
        yield self.state_machine

    def function(self, logical_name: str) -> Function:
        return _find(self.functions, logical_name)

    def role(self, logical_name: str) -> Role:
        return _find(self.roles, logical_name)

    def log_group(self, logical_name: str) -> LogGroup:
        return _find(self.log_groups, logical_name)

    def phase(self, name: str) -> Phase:
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The whole model (the definition lives in its own artifact file)."""
        return {
            "job": self.job_name,
            "run_id": self.run_id,
            "stack_name": self.stack_name,
            "region": self.location.region,
            "account_id": self.location.account_id,
            "partition": self.location.partition,
            "architecture": self.architecture,
            "emulator": self.emulator,
            "tags": dict(self.tags),
            "layout": self.layout.to_json(),
            "phases": [p.to_json() for p in self.phases],
            "resources": [r.to_json() for r in self.resources()],
            **({"iam_widened": list(self.iam_widened)} if self.iam_widened else {}),
        }

    def to_json_text(self) -> str:
        """``to_json`` as stable, pretty text (2-space indent, trailing newline)."""
        return dump_json(self.to_json())


def dump_json(data: Any) -> str:
    """The one JSON style of review artifacts: 2-space indent, key order kept, newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


_R = TypeVar("_R", Bucket, LogGroup, Role, Function)


def _find(items: tuple[_R, ...], logical_name: str) -> _R:
    for item in items:
        if item.logical_name == logical_name:
            return item
    raise KeyError(logical_name)


__all__ = [
    "IAM_POLICY_VERSION",
    "LAMBDA_RUNTIME",
    "MAX_BUCKET_NAME",
    "MAX_FUNCTION_NAME",
    "MAX_JOB_PART",
    "MAX_LOG_GROUP_NAME",
    "MAX_ROLE_NAME",
    "MAX_RUN_ID",
    "MAX_STATE_MACHINE_NAME",
    "NAME_PREFIX",
    "RUN_ID_RE",
    "Architecture",
    "Bucket",
    "Condition",
    "ExecutionType",
    "Function",
    "InlinePolicy",
    "Location",
    "LogGroup",
    "ManagedPolicy",
    "Phase",
    "PolicyDocument",
    "PublicAccessBlock",
    "Resource",
    "ResourceKind",
    "ResourceNames",
    "Role",
    "RunLayout",
    "StackModel",
    "StateMachine",
    "Statement",
    "StepLayout",
    "dump_json",
    "frozen_map",
    "job_name_part",
]
