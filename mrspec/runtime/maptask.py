"""The map task (being implemented)."""

from __future__ import annotations

from typing import Any

from mrspec.plan.model import MapTask
from mrspec.runtime.config import TaskConfig


def run_map_task(
    config: TaskConfig, task: MapTask, *, work_prefix: str, scratch_dir: str, attempt: int
) -> dict[str, Any]:
    raise NotImplementedError
