"""What each step of a job adds to its stack: functions, manifests and Distributed Maps.

A job with steps is one deployment and one state machine: the steps' phases run in order
in one execution, then one commit. Each step is built as a one-step job is (a job without
``steps`` is the one-step case of this code, with the names it always had):

    step 0      functions map, merge, reduce     manifests runs/<id>/manifests/...
    step s > 0  functions map<s>, merge<s>,      manifests runs/<id>/step-<s>/manifests/...
                reduce<s>

A step's functions carry its own memory, timeout and /tmp; its phases are named as the
local engine labels them (``runtime.layout.step_phase``: ``steps[1].map`` ...), and in a
job with steps every task's payload says its step, so the handler loads that step's
``TaskConfig``. A later step's map manifest is known at plan time (task ``i`` reads part
``i`` of the step before) and is uploaded with the others. Pure; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from mrspec.aws import asl
from mrspec.aws.model import StepLayout
from mrspec.plan.model import JobPlan, StepPlan
from mrspec.runtime.layout import manifest_key, phase_key_name, step_key_prefix, step_phase
from mrspec.spec.model import JobSpec

MIN_EPHEMERAL_MB = 512
MAX_EPHEMERAL_MB = 10240
# A reduce task's input is a partition of the whole shuffle, unknown before the run; /tmp
# beyond 512 MB costs about $0.0000000309 per GB-second, so reducers get the maximum.
REDUCE_EPHEMERAL_MB = MAX_EPHEMERAL_MB


def map_ephemeral_mb(bin_size: int) -> int:
    """/tmp for a map task: twice its input bin (sorted spills plus the shuffle object
    being written) above the 512 MB base, within Lambda's 512-10,240 MB."""
    need = MIN_EPHEMERAL_MB + 2 * math.ceil(bin_size / 1024**2)
    return max(MIN_EPHEMERAL_MB, min(MAX_EPHEMERAL_MB, need))


def function_name(kind: str, step: int) -> str:
    """The logical name of step ``step``'s ``map``, ``merge`` or ``reduce`` function:
    ``reduce`` for step 0 (every one-step job's), ``reduce1`` for step 1."""
    return kind if step == 0 else f"{kind}{step}"


def phase_function(phase: str) -> str:
    """The logical function a phase's children invoke: ``steps[1].merge-2`` -> ``merge1``,
    ``reduce`` -> ``reduce``."""
    return function_name(asl.phase_kind(phase), asl.phase_step(phase) or 0)


@dataclass(frozen=True)
class FunctionSize:
    logical_name: str
    kind: str  # "map" | "merge" | "reduce" (the handler)
    memory_mb: int
    timeout_s: int
    ephemeral_mb: int


def function_sizes(spec: JobSpec) -> list[FunctionSize]:
    """Every step's functions in step order: map, then merge and reduce when it reduces
    (merge tasks read what reducers read, with the same fan-in: the same sizes)."""
    sizes: list[FunctionSize] = []
    for step, this in enumerate(spec.steps):
        m = this.map
        sizes.append(FunctionSize(function_name("map", step), "map", m.memory_mb, m.timeout_s,
                                  map_ephemeral_mb(m.bin_size)))
        if this.reduce is not None:
            r = this.reduce
            for kind in ("merge", "reduce"):
                sizes.append(FunctionSize(function_name(kind, step), kind, r.memory_mb,
                                          r.timeout_s, REDUCE_EPHEMERAL_MB))
    return sizes


def _step_plans(spec: JobSpec, plan: JobPlan | None) -> list[StepPlan | None]:
    return list(plan.steps) if plan is not None else [None] * len(spec.steps)


def step_layouts(spec: JobSpec, plan: JobPlan | None, work_prefix: str) -> tuple[StepLayout, ...]:
    """Each step's item manifests: under the run's key prefix for step 0, under
    ``step-<s>/`` for a later step (``runtime.layout.step_key_prefix``)."""
    out = []
    for step, (this, planned) in enumerate(zip(spec.steps, _step_plans(spec, plan), strict=True)):
        prefix = step_key_prefix(work_prefix, step)
        levels = planned.merge_levels if planned is not None else ()
        out.append(StepLayout(
            step=step,
            work_prefix=prefix,
            map_manifest_key=manifest_key(prefix, "map"),
            reduce_manifest_key="" if this.map_only else manifest_key(prefix, "reduce"),
            merge_manifest_keys=tuple(manifest_key(prefix, m.phase) for m in levels),
        ))
    return tuple(out)


def phase_inputs(
    spec: JobSpec,
    plan: JobPlan | None,
    layouts: tuple[StepLayout, ...],
    results_prefix: str,
    fn_arn: Mapping[str, str],
) -> list[asl.PhaseInput]:
    """One Distributed Map per phase of every step: map, its merge levels, reduce."""
    attempts = max(1, spec.limits.max_attempts)
    steps = len(spec.steps)
    concurrency = spec.limits.max_concurrency
    out: list[asl.PhaseInput] = []
    for step, (this, planned, layout) in enumerate(
        zip(spec.steps, _step_plans(spec, plan), layouts, strict=True)
    ):
        # (phase, task kind, manifest, MaxConcurrency, the function's timeout)
        wanted = [("map", "map", layout.map_manifest_key, concurrency, this.map.timeout_s)]
        if this.reduce is not None:
            r = this.reduce
            levels = planned.merge_levels if planned is not None else ()
            wanted += [(m.phase, "merge", key, min(concurrency, len(m.tasks)), r.timeout_s)
                       for m, key in zip(levels, layout.merge_manifest_keys, strict=True)]
            wanted.append(("reduce", "reduce", layout.reduce_manifest_key,
                           min(concurrency, r.partitions), r.timeout_s))
        for name, kind, key, most, timeout_s in wanted:
            label = step_phase(step, steps, name)
            out.append(asl.PhaseInput(
                name=label,
                function_arn=fn_arn[function_name(kind, step)],
                manifest_key=key,
                results_prefix=f"{results_prefix}{phase_key_name(label)}",
                max_concurrency=most,
                execution_type=asl.child_execution_type(timeout_s, attempts),
                step=None if steps == 1 else step,
            ))
    return out


def phase_items(plan: JobPlan | None) -> dict[str, int]:
    """Children of each phase, by phase name (nothing without a plan)."""
    if plan is None:
        return {}
    steps = len(plan.steps)
    items: dict[str, int] = {}
    for step in plan.steps:
        items.update({step_phase(step.step, steps, k): v for k, v in step.task_counts().items()})
    return items
