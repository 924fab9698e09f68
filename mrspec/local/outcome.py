"""What a task process reports to the pool: its result, or how the attempt failed.

The worker sends ``Outcome.to_json()`` through its pipe (plain JSON types, like a Lambda
response); the pool builds the typed ``Outcome`` (and its ``TaskResult``) as it receives
it, and makes the ones for attempts that never answered (a crash, a timeout) itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mrspec.runtime.results import TaskResult, result_from_json

Status = Literal["ok", "memory", "failed", "error", "crashed", "timeout"]
STATUSES: tuple[Status, ...] = ("ok", "memory", "failed", "error", "crashed", "timeout")


@dataclass(frozen=True)
class Outcome:
    """One attempt's end.

    ``ok``: ``result`` is set. ``failed``: the task said retrying cannot help
    (``TaskFailedError``), ``error``: any other error (``message``, ``hint``: its
    traceback's tail for an unexpected one), ``memory``: over its cap, ``crashed``: the
    process died (``message`` says how), ``timeout``: stopped at ``timeout_s``.
    """

    status: Status
    result: TaskResult | None = None
    message: str | None = None
    hint: str | None = None
    timeout_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "result": None if self.result is None else self.result.to_json(),
            "message": self.message,
            "hint": self.hint,
            "timeout_s": self.timeout_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        status = data["status"]
        if status not in STATUSES:
            raise ValueError(f"a task outcome's status must be one of {STATUSES}, not {status!r}")
        result = data.get("result")
        timeout = data.get("timeout_s")
        return cls(
            status=status,
            result=None if result is None else result_from_json(result),
            message=data.get("message"),
            hint=data.get("hint"),
            timeout_s=None if timeout is None else float(timeout),
        )
