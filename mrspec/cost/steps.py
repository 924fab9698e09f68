"""A job with steps as the cost model reads it: each step as a one-step job.

The phase formulas (``mrspec.cost.phases``) are written for one step: a spec's ``map`` and
``reduce``, a plan's map tasks reading input splits, a stack's ``map``, ``merge-<n>`` and
``reduce`` phases. :func:`step_views` gives each step in that form (a job without steps is
its own one view), so every step's phases are predicted by the same formulas:

- the spec of step ``s``: its ``map`` and ``reduce`` sections, no later steps;
- the plan of step ``s > 0``: map task ``i`` reads part ``i`` of the step before, planned
  as one whole object of the estimated part size: the step before's input bytes x
  ``output_ratio`` (what its reducers or, map-only, its map tasks write), shared evenly
  by its parts; the step's merge levels and reduce tasks are the plan's;
- the stack of step ``s``: its phases and functions under a one-step job's names
  (``steps[1].map`` -> ``map``, function ``map1`` -> ``map``), plus the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mrspec.cost.assumptions import Assumptions
from mrspec.plan.model import JobPlan, MapTask, Split, StepPlan
from mrspec.spec.model import JobSpec
from mrspec.storage import ObjectInfo

if TYPE_CHECKING:
    from mrspec.aws.model import StackModel


@dataclass(frozen=True)
class StepView:
    step: int
    steps: int
    spec: JobSpec
    plan: JobPlan
    stack: StackModel
    names: dict[str, str]  # a one-step phase name -> the stack's ("map" -> "steps[1].map")
    functions: dict[str, str]  # a one-step function name -> the stack's ("map" -> "map1")

    @property
    def last(self) -> bool:
        return self.step == self.steps - 1


def step_plans(plan: JobPlan, a: Assumptions) -> list[JobPlan]:
    """Every step of ``plan`` as a one-step job's plan: step 0 is the plan itself; a later
    step's map task ``i`` reads part ``i`` of the step before, of the estimated size."""
    plans = [plan]
    input_bytes = float(plan.input_bytes)
    for step in plan.later_steps:
        input_bytes = input_bytes * a["output_ratio"]  # what the step before writes
        plans.append(_later_plan(plans[-1], step, input_bytes))
        input_bytes = float(plans[-1].input_bytes)
    return plans


def step_views(spec: JobSpec, plan: JobPlan, stack: StackModel, a: Assumptions) -> list[StepView]:
    """Every step of ``plan`` as a one-step job (see the module docstring)."""
    from mrspec.aws.steps import function_name
    from mrspec.runtime.layout import step_phase

    steps = len(plan.steps)
    views: list[StepView] = []
    for step, this, view_plan in zip(plan.steps, spec.steps, step_plans(plan, a), strict=True):
        kinds = ("map", "merge", "reduce", "commit")
        functions = {k: (k if k == "commit" else function_name(k, step.step)) for k in kinds}
        names = {p: step_phase(step.step, steps, p) for p in step.phases()}
        view_spec = replace(spec, map=this.map, reduce=this.reduce, later_steps=())
        views.append(StepView(step.step, steps, view_spec, view_plan,
                              _step_stack(stack, names, functions), names, functions))
    return views


def _later_plan(before: JobPlan, step: StepPlan, input_bytes: float) -> JobPlan:
    """Step ``step``'s plan with each map task reading one part of ``input_bytes / parts``."""
    parts = max(1, len(step.map_tasks))
    size = int(input_bytes / parts)
    objects = tuple(ObjectInfo(f"step-{step.step}/part-{i:05d}", size) for i in range(parts))
    splits = tuple(Split(o.uri, 0, size, size) for o in objects)
    tasks = tuple(MapTask(t.task_id, (splits[t.task_id],)) for t in step.map_tasks)
    return JobPlan(
        job_name=before.job_name, spec_digest=before.spec_digest, objects=objects,
        splits=splits, map_tasks=tasks, reduce_tasks=step.reduce_tasks,
        split_size=before.split_size, bin_size=before.bin_size,
        merge_levels=step.merge_levels,
    )


def _step_stack(stack: StackModel, names: dict[str, str], functions: dict[str, str]) -> StackModel:
    """The stack as a one-step job of this step sees it: its phases and functions only,
    under one-step names (the commit is shared)."""
    real_phase = {v: k for k, v in names.items()}
    real_function = {v: k for k, v in functions.items()}
    phases = tuple(replace(p, name=real_phase[p.name], function=real_function[p.function])
                   for p in stack.phases if p.name in real_phase)
    fns = tuple(replace(f, logical_name=real_function[f.logical_name])
                for f in stack.functions if f.logical_name in real_function)
    return replace(stack, phases=phases, functions=fns)
