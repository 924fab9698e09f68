"""The reduce task (being implemented)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mrspec.runtime.config import TaskConfig


def run_reduce_task(
    config: TaskConfig,
    partition: int,
    map_results: Sequence[dict[str, Any]] | None,
    *,
    work_prefix: str,
    scratch_dir: str,
    attempt: int,
) -> dict[str, Any]:
    raise NotImplementedError
