"""What the cost model needs to know about the stack, read from the ``StackModel``.

:class:`StackFacts` is the small, plain view of a compiled stack the estimate uses:
each function's memory, timeout, ephemeral storage and architecture; each Distributed
Map phase's child execution type, concurrency and transitions; the parent's transitions;
and the resources a reviewer sees listed. ``facts_from_stack_model`` reads it from
``mrspec.aws.model.StackModel``; ``facts_for_spec`` lowers the spec with
``mrspec.aws.lower`` and reads the result. Tests build ``StackFacts`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mrspec.aws.model import StackModel
    from mrspec.plan.model import JobPlan
    from mrspec.spec.model import JobSpec

ExecutionType = Literal["STANDARD", "EXPRESS"]


@dataclass(frozen=True)
class FunctionFacts:
    logical_name: str  # "map" | "reduce" | "commit"
    memory_mb: int
    timeout_s: int
    architecture: str  # "arm64" | "x86_64"
    ephemeral_storage_mb: int = 512


@dataclass(frozen=True)
class PhaseFacts:
    name: str  # "map" | "reduce"
    function: str  # logical name of the function each child invokes
    execution_type: ExecutionType
    max_concurrency: int
    child_transitions: int  # of one STANDARD child without retries
    task_attempts: int = 3


@dataclass(frozen=True)
class ResourceLine:
    kind: str
    name: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "detail": self.detail}


@dataclass(frozen=True)
class StackFacts:
    region: str
    architecture: str
    functions: tuple[FunctionFacts, ...]
    phases: tuple[PhaseFacts, ...]  # map, then reduce (absent for map-only)
    parent_transitions: int  # of the parent workflow on a successful run, children excluded
    resources: tuple[ResourceLine, ...] = ()

    def function(self, logical_name: str) -> FunctionFacts:
        for f in self.functions:
            if f.logical_name == logical_name:
                return f
        raise KeyError(logical_name)

    def phase(self, name: str) -> PhaseFacts | None:
        for p in self.phases:
            if p.name == name:
                return p
        return None


def _resource_detail(resource: Any) -> str:
    kind = resource.kind
    if kind == "function":
        return (
            f"{resource.memory_mb} MB, {resource.architecture}, timeout {resource.timeout_s} s, "
            f"/tmp {resource.ephemeral_storage_mb} MB, {resource.runtime}"
        )
    if kind == "bucket":
        return (
            f"private, {resource.sse_algorithm}, TLS-only, expires objects after "
            f"{resource.expiration_days} d"
        )
    if kind == "log_group":
        return f"retention {resource.retention_days} d"
    if kind == "role":
        return f"{len(resource.policies)} inline polic{'y' if len(resource.policies) == 1 else 'ies'}"
    if kind == "state_machine":
        return f"{resource.type}, logging {resource.log_level}"
    raise ValueError(f"unsupported resource kind {kind!r}")


def facts_from_stack_model(model: StackModel) -> StackFacts:
    functions = tuple(
        FunctionFacts(
            logical_name=f.logical_name,
            memory_mb=f.memory_mb,
            timeout_s=f.timeout_s,
            architecture=f.architecture,
            ephemeral_storage_mb=f.ephemeral_storage_mb,
        )
        for f in model.functions
    )
    phases = tuple(
        PhaseFacts(
            name=p.name,
            function=p.function,
            execution_type=p.execution_type,
            max_concurrency=p.max_concurrency,
            child_transitions=p.child_transitions,
            task_attempts=p.task_attempts,
        )
        for p in model.phases
    )
    resources = tuple(
        ResourceLine(r.kind, r.name, _resource_detail(r)) for r in model.resources()
    )
    return StackFacts(
        region=model.region,
        architecture=model.architecture,
        functions=functions,
        phases=phases,
        parent_transitions=model.state_machine.parent_transitions,
        resources=resources,
    )


def review_model(spec: JobSpec, plan: JobPlan | None = None) -> StackModel:
    """The spec (and plan) lowered to a StackModel as ``compile`` does (review names)."""
    from mrspec.aws.lower import REVIEW_ACCOUNT_ID, REVIEW_RUN_ID, lower

    return lower(
        spec, plan, run_id=REVIEW_RUN_ID, account_id=REVIEW_ACCOUNT_ID, placeholders=True
    )


def facts_for_spec(spec: JobSpec, plan: JobPlan | None = None) -> StackFacts:
    """Lower the spec (and plan) to a StackModel, as ``compile`` does, and read its facts."""
    return facts_from_stack_model(review_model(spec, plan))
