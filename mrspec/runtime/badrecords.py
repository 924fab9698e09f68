"""A skipped input record, and how many of them one result or manifest lists in full.

A task's result, an exchange object's totals and the ``_SUCCESS`` manifest all list the
first ``MAX_REPORTED_BAD_RECORDS`` skipped records (their count is always exact), so a
Step Functions state never carries an unbounded list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# How many skipped records one task result (or the totals of a group) lists in full.
MAX_REPORTED_BAD_RECORDS = 100


@dataclass(frozen=True)
class BadRecord:
    """A record the job skipped: where it starts and why."""

    uri: str
    offset: int
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"uri": self.uri, "offset": self.offset, "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BadRecord:
        return cls(str(data["uri"]), int(data["offset"]), str(data["error"]))
