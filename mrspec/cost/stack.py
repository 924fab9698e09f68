"""The cost package reads the compiled ``StackModel`` itself (``mrspec.aws.model``): each
function's memory, timeout, ephemeral storage and architecture, each Distributed Map
phase's child execution type, concurrency and transitions, the parent's transitions,
the roles' policies. This module adds what reading it needs: :func:`review_model`
lowers a spec as ``compile`` does (review names), :func:`phase_of` finds a phase that
may be absent, :func:`resource_lines` lists the resources for the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mrspec.aws.model import Phase, StackModel
    from mrspec.plan.model import JobPlan
    from mrspec.spec.model import JobSpec


@dataclass(frozen=True)
class ResourceLine:
    kind: str
    name: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "detail": self.detail}


def phase_of(model: StackModel, name: str) -> Phase | None:
    """The Distributed Map phase ``name`` of the stack, or None (a map-only job has no
    reduce phase)."""
    return next((p for p in model.phases if p.name == name), None)


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
        inline, managed = len(resource.policies), len(resource.managed_policies)
        text = f"{inline} inline polic{'y' if inline == 1 else 'ies'}"
        # permissions too large to be inline: the stack's own managed policies (policy_fit)
        return text + (f", {managed} managed" if managed else "")
    if kind == "state_machine":
        return f"{resource.type}, logging {resource.log_level}"
    raise ValueError(f"unsupported resource kind {kind!r}")


def resource_lines(model: StackModel) -> tuple[ResourceLine, ...]:
    """The stack's resources as a reviewer sees them listed."""
    return tuple(ResourceLine(r.kind, r.name, _resource_detail(r)) for r in model.resources())


def review_model(spec: JobSpec, plan: JobPlan | None = None) -> StackModel:
    """The spec (and plan) lowered to a StackModel as ``compile`` does (review names)."""
    from mrspec.aws.lower import REVIEW_ACCOUNT_ID, REVIEW_RUN_ID, lower

    return lower(
        spec, plan, run_id=REVIEW_RUN_ID, account_id=REVIEW_ACCOUNT_ID, placeholders=True
    )
