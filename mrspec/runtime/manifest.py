"""The ``_SUCCESS`` manifest: what a committed run's output holds, written last.

``Manifest`` is the commit's result; its JSON form is the file (pretty, sorted keys)::

    {"manifest_version": 1, "job": ..., "spec_digest": ..., "output_format": ...,
     "parts": [{"uri": ..., "size": n, "records": n}], "records": n, "bytes": n,
     "counters": {...}, "user_counters": {...}, "bad_records": [...],
     "tasks": {"map": n, "reduce": n, "merge": [n, ...]},
     "timings": {"started": t, "finished": t, "seconds": s, ...}, ...extra}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mrspec.runtime.badrecords import BadRecord
from mrspec.runtime.results import PartFile

MANIFEST_VERSION = 1
_OWN_KEYS = (
    "manifest_version", "job", "spec_digest", "output_format", "parts", "records", "bytes",
    "counters", "user_counters", "bad_records", "tasks", "timings",
)


@dataclass(frozen=True)
class Manifest:
    job: str
    spec_digest: str
    output_format: str
    parts: tuple[PartFile, ...]
    counters: dict[str, int]
    user_counters: dict[str, int]
    bad_records: tuple[BadRecord, ...]
    map_tasks: int
    reduce_tasks: int
    merge_tasks: tuple[int, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # the caller's (e.g. run_id)
    version: int = MANIFEST_VERSION

    @property
    def records(self) -> int:
        return sum(p.records for p in self.parts)

    @property
    def bytes(self) -> int:
        return sum(p.size for p in self.parts)

    def to_json(self) -> dict[str, Any]:
        tasks: dict[str, Any] = {"map": self.map_tasks, "reduce": self.reduce_tasks}
        if self.merge_tasks:
            tasks["merge"] = list(self.merge_tasks)
        return {
            "manifest_version": self.version,
            "job": self.job,
            "spec_digest": self.spec_digest,
            "output_format": self.output_format,
            "parts": [p.to_json() for p in self.parts],
            "records": self.records,
            "bytes": self.bytes,
            "counters": dict(sorted(self.counters.items())),
            "user_counters": dict(sorted(self.user_counters.items())),
            "bad_records": [b.to_json() for b in self.bad_records],
            "tasks": tasks,
            "timings": dict(self.timings),
            **self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        tasks = data.get("tasks", {})
        return cls(
            job=str(data["job"]),
            spec_digest=str(data.get("spec_digest", "")),
            output_format=str(data.get("output_format", "")),
            parts=tuple(PartFile.from_json(p) for p in data.get("parts", ())),
            counters={k: int(v) for k, v in data.get("counters", {}).items()},
            user_counters={k: int(v) for k, v in data.get("user_counters", {}).items()},
            bad_records=tuple(BadRecord.from_json(b) for b in data.get("bad_records", ())),
            map_tasks=int(tasks.get("map", 0)),
            reduce_tasks=int(tasks.get("reduce", 0)),
            merge_tasks=tuple(int(n) for n in tasks.get("merge", ())),
            timings={k: float(v) for k, v in data.get("timings", {}).items()},
            extra={k: v for k, v in data.items() if k not in _OWN_KEYS},
            version=int(data.get("manifest_version", MANIFEST_VERSION)),
        )
