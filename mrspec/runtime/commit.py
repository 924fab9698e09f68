"""Output preflight, commit and cleanup (being implemented)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mrspec.runtime.config import TaskConfig


def prepare_output(config: TaskConfig, *, overwrite: bool) -> int:
    raise NotImplementedError


def commit(
    config: TaskConfig,
    *,
    work_prefix: str,
    map_results: Sequence[dict[str, Any]] | None,
    reduce_results: Sequence[dict[str, Any]] | None,
    started: float,
    timings: dict[str, float] | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    raise NotImplementedError


def cleanup(config: TaskConfig, *, work_prefix: str, remove_output: bool) -> None:
    raise NotImplementedError
