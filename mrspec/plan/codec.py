"""A :class:`~mrspec.plan.model.JobPlan` as a whole JSON document, and its digest.

``JobPlan.to_json`` is a summary for ``--json`` output; this is the full plan (every
object, split and task), so a run detached on one command line can be attached from
another without listing the input again, and two plans can be compared by digest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mrspec.plan.model import (
    JobPlan,
    MapTask,
    MergeLevel,
    MergeTask,
    ReduceTask,
    Split,
    StepPlan,
)
from mrspec.storage import ObjectInfo


def plan_document(plan: JobPlan) -> dict[str, Any]:
    return {
        "job_name": plan.job_name,
        "spec_digest": plan.spec_digest,
        "objects": [[o.uri, o.size] for o in plan.objects],
        "splits": [s.to_json() for s in plan.splits],
        "map_tasks": [t.to_json() for t in plan.map_tasks],
        "reduce_tasks": [t.to_json() for t in plan.reduce_tasks],
        "split_size": plan.split_size,
        "bin_size": plan.bin_size,
        "listing_seconds": plan.listing_seconds,  # a measurement: not in the digest
        "merge_levels": _levels_document(plan.merge_levels),
        # a job with steps: steps 1.. (none in a one-step plan, whose digest stays as it was)
        **({"later_steps": [_step_document(s) for s in plan.later_steps]}
           if plan.later_steps else {}),
    }


def _levels_document(levels: tuple[MergeLevel, ...]) -> list[dict[str, Any]]:
    return [
        {"level": m.level, "fan_in": m.fan_in, "ranges": m.ranges,
         "tasks": [t.to_json() for t in m.tasks]}
        for m in levels
    ]


def _levels_from(data: list[dict[str, Any]]) -> tuple[MergeLevel, ...]:
    return tuple(
        MergeLevel(int(m["level"]), int(m["fan_in"]),
                   tuple(MergeTask.from_json(t) for t in m["tasks"]), int(m.get("ranges", 1)))
        for m in data
    )


def _step_document(step: StepPlan) -> dict[str, Any]:
    return {"step": step.step, "map_tasks": [t.to_json() for t in step.map_tasks],
            "reduce_tasks": [t.to_json() for t in step.reduce_tasks],
            "merge_levels": _levels_document(step.merge_levels)}


def _step_from(data: dict[str, Any]) -> StepPlan:
    return StepPlan(int(data["step"]), tuple(MapTask.from_json(t) for t in data["map_tasks"]),
                    tuple(ReduceTask.from_json(t) for t in data["reduce_tasks"]),
                    _levels_from(data.get("merge_levels", [])))


def plan_from_document(data: dict[str, Any]) -> JobPlan:
    return JobPlan(
        job_name=str(data["job_name"]),
        spec_digest=str(data["spec_digest"]),
        objects=tuple(ObjectInfo(str(uri), int(size)) for uri, size in data["objects"]),
        splits=tuple(Split.from_json(s) for s in data["splits"]),
        map_tasks=tuple(MapTask.from_json(t) for t in data["map_tasks"]),
        reduce_tasks=tuple(ReduceTask.from_json(t) for t in data["reduce_tasks"]),
        split_size=int(data["split_size"]),
        bin_size=int(data["bin_size"]),
        listing_seconds=float(data.get("listing_seconds", 0.0)),
        merge_levels=_levels_from(data.get("merge_levels", [])),
        later_steps=tuple(_step_from(s) for s in data.get("later_steps", [])),
    )


def plan_digest(plan: JobPlan) -> str:
    """sha256 of the plan's work (input objects, splits, tasks), not of the spec: equal
    digests mean the same tasks over the same input."""
    document = plan_document(plan)
    document.pop("spec_digest")
    document.pop("listing_seconds")
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def resume_digests(plan: JobPlan) -> dict[str, str]:
    """What a resumed run must share with the run it resumes, one digest per reason a
    resume is refused: the input (every object and size), the partitioning (the number
    of reduce partitions) and the task manifests (map tasks, merge levels, reduce tasks),
    over every step of a job with steps (a one-step job's digests are as they were)."""
    document = plan_document(plan)

    def digest(value: Any) -> str:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    manifests: list[Any] = [
        document[k] for k in ("map_tasks", "merge_levels", "reduce_tasks", "splits")
    ]
    partitions: Any = len(plan.reduce_tasks)
    if plan.later_steps:  # a job with steps: every step's tasks and partitions
        manifests.append(document["later_steps"])
        partitions = [len(s.reduce_tasks) for s in plan.steps]
    return {
        "input": digest(document["objects"]),
        "partitioning": digest(partitions),
        "task manifests": digest(manifests),
    }
