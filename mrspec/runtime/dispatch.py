"""One place that turns (task kind, task JSON) into a run of the right task function.

Used by the local engine's worker processes and by the Lambda handlers, so both engines
run the plan's phases through the same code.
"""

from __future__ import annotations

from typing import Any

from mrspec.plan.model import MergeTask, ReduceTask
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.results import TaskResult

KINDS = ("map", "merge", "reduce")


def task_label(kind: str, payload: dict[str, Any]) -> tuple[str, int]:
    """(phase name, task id) of a task: ``("merge-2", 7)``, ``("reduce", 3)``."""
    if kind == "map":
        return "map", int(payload["task_id"])
    if kind == "merge":
        return f"merge-{int(payload['level'])}", int(payload["task_id"])
    if kind == "reduce":
        return "reduce", int(payload["partition"])
    raise ValueError(f"unknown task kind {kind!r}")


def run_task(
    kind: str,
    payload: dict[str, Any],
    config: TaskConfig,
    *,
    work_prefix: str,
    scratch_dir: str,
    attempt: int,
) -> TaskResult:
    """Run one task attempt; ``payload`` is its ``MapTask``/``MergeTask``/``ReduceTask`` JSON."""
    from mrspec import runtime
    from mrspec.plan import items

    if kind == "map":  # an item is the task itself or a reference to its manifest shard
        return runtime.run_map_task(
            config, items.resolve(payload, work_prefix), work_prefix=work_prefix,
            scratch_dir=scratch_dir, attempt=attempt,
        )
    if kind == "merge":
        return runtime.run_merge_task(
            config, MergeTask.from_json(payload), work_prefix=work_prefix,
            scratch_dir=scratch_dir, attempt=attempt,
        )
    if kind == "reduce":
        task = ReduceTask.from_json(payload)
        return runtime.run_reduce_task(
            config, task.partition, None, inputs=task.inputs, work_prefix=work_prefix,
            scratch_dir=scratch_dir, attempt=attempt,
        )
    raise ValueError(f"unknown task kind {kind!r}")
