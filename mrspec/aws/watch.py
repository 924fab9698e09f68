"""Following a running execution: phase progress from the Map Runs' item counts.

``follow`` polls ``DescribeExecution`` and ``ListMapRuns`` / ``DescribeMapRun`` with a
growing interval (reset whenever something changes) until the execution ends, calling
``on_progress`` with a :class:`Snapshot` each time. Map Runs are listed in start order,
which is the stack's phase order (``StackModel.phases``: map, merge levels, reduce, for
each step), so the n-th Map Run is named after the n-th phase.

A Distributed Map whose children fail does not always fail its execution (moto never does;
AWS does only beyond the tolerated failures), so the verdict here also requires every
Map Run's ``failed``, ``timedOut`` and ``aborted`` item counts to be zero.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


@dataclass(frozen=True)
class PhaseCounts:
    phase: str  # "map" | "merge-<n>" | "reduce"; "steps[<s>].map" ... in a job with steps
    total: int = 0
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    aborted: int = 0
    status: str = "RUNNING"
    map_run_arn: str = ""

    @property
    def unsuccessful(self) -> int:
        return self.failed + self.timed_out + self.aborted

    @property
    def done(self) -> int:
        return self.succeeded + self.unsuccessful

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "total": self.total,
            "pending": self.pending,
            "running": self.running,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "timed_out": self.timed_out,
            "aborted": self.aborted,
            "status": self.status,
        }


@dataclass(frozen=True)
class Snapshot:
    status: str  # the execution's status
    phases: tuple[PhaseCounts, ...]
    elapsed_s: float
    error: str = ""
    cause: str = ""
    output: str = ""

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def failed_items(self) -> int:
        return sum(p.unsuccessful for p in self.phases)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED" and self.failed_items == 0


@dataclass
class Backoff:
    """Polling intervals: start small, grow by ``factor`` up to ``maximum``, reset on change."""

    initial: float = 0.5
    maximum: float = 5.0
    factor: float = 1.5
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.initial

    def next(self, changed: bool) -> float:
        if changed:
            self.current = self.initial
        else:
            self.current = min(self.maximum, self.current * self.factor)
        return self.current


PHASE_NAMES: Sequence[str] = ("map", "reduce")


def snapshot(
    sfn: Any, execution_arn: str, started: float, names: Sequence[str] = PHASE_NAMES
) -> Snapshot:
    """The execution and its Map Runs now; ``names``: the phases in run order."""
    described = sfn.describe_execution(executionArn=execution_arn)
    runs = sfn.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
    runs = sorted(runs, key=lambda r: (r.get("startDate") or 0, r["mapRunArn"]))
    phases = []
    for index, run in enumerate(runs):
        detail = sfn.describe_map_run(mapRunArn=run["mapRunArn"])
        counts = detail.get("itemCounts", {})
        phases.append(
            PhaseCounts(
                phase=names[index] if index < len(names) else f"phase{index + 1}",
                total=int(counts.get("total", 0)),
                pending=int(counts.get("pending", 0)),
                running=int(counts.get("running", 0)),
                succeeded=int(counts.get("succeeded", 0)),
                failed=int(counts.get("failed", 0)),
                timed_out=int(counts.get("timedOut", 0)),
                aborted=int(counts.get("aborted", 0)),
                status=str(detail.get("status", "RUNNING")),
                map_run_arn=run["mapRunArn"],
            )
        )
    return Snapshot(
        status=str(described["status"]),
        phases=tuple(phases),
        elapsed_s=time.monotonic() - started,
        error=str(described.get("error", "")),
        cause=str(described.get("cause", "")),
        output=str(described.get("output", "")),
    )


def follow(
    sfn: Any,
    execution_arn: str,
    on_progress: Callable[[Snapshot], None],
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    names: Sequence[str] = PHASE_NAMES,
) -> Snapshot:
    """Poll until the execution ends; return the last snapshot.

    A failed item ends the wait early: the execution is then stopped by the caller rather
    than left to run the remaining tasks of a job that has already failed.
    """
    backoff = backoff or Backoff()
    started = time.monotonic()
    previous: Snapshot | None = None
    while True:
        current = snapshot(sfn, execution_arn, started, names)
        on_progress(current)
        if current.finished or current.failed_items:
            return current
        changed = previous is None or current.phases != previous.phases
        previous = current
        sleep(backoff.next(changed))


@dataclass(frozen=True)
class TaskFailure:
    phase: str
    error: str
    cause: str
    source: str  # where the error was read from


def failed_task_errors(sfn: Any, phases: Sequence[PhaseCounts], limit: int = 3) -> list[TaskFailure]:
    """The errors of failed children, read from their executions (AWS). Empty when the
    service cannot list a Map Run's children (moto)."""
    import botocore.exceptions

    found: list[TaskFailure] = []
    for phase in phases:
        if not phase.unsuccessful or not phase.map_run_arn:
            continue
        try:
            children = sfn.list_executions(mapRunArn=phase.map_run_arn, statusFilter="FAILED")
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            continue
        for child in children.get("executions", [])[:limit]:
            detail = sfn.describe_execution(executionArn=child["executionArn"])
            found.append(
                TaskFailure(
                    phase=phase.phase,
                    error=str(detail.get("error", "")),
                    cause=_short_cause(str(detail.get("cause", ""))),
                    source=child["executionArn"],
                )
            )
    return found


def _short_cause(cause: str) -> str:
    """Lambda's error payload as ``Type: message`` (the trace stays in the logs)."""
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause[:2000]
    if isinstance(payload, dict) and "errorMessage" in payload:
        return f"{payload.get('errorType', 'Error')}: {payload['errorMessage']}"
    return cause[:2000]
