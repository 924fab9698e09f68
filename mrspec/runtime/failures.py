"""A failed task attempt's recorded error (AWS: the handlers write one per failed task
at ``layout.failure_uri``; the commit step and the run report read them back)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FailureRecord:
    phase: str  # "map", "merge-1", "reduce"
    task_id: int
    attempt: int
    error: str  # the exception's class name
    message: str
    traceback: str = ""  # its tail
    time: float = 0.0  # unix time of the failure

    @property
    def order(self) -> tuple[bool, int]:
        """Map failures first (they explain the rest), then by task id."""
        return (self.phase != "map", self.task_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "task_id": self.task_id,
            "attempt": self.attempt,
            "error": self.error,
            "message": self.message,
            "traceback": self.traceback,
            "time": self.time,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FailureRecord:
        return cls(
            phase=str(data.get("phase", "")),
            task_id=int(data.get("task_id", 0)),
            attempt=int(data.get("attempt", 0)),
            error=str(data.get("error", "")),
            message=str(data.get("message", "")),
            traceback=str(data.get("traceback", "")),
            time=float(data.get("time", 0.0)),
        )
