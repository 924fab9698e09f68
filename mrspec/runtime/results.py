"""Task results: what each task attempt reports, and storing them under the work prefix.

A result is a frozen dataclass (``MapResult``, ``MergeResult``, ``ReduceResult``) with a
JSON form; the JSON form is what crosses a process or Lambda boundary and what is stored
at ``layout.result_uri``, and ``result_from_json`` builds the typed object back where
it is read. JSON form (small enough for a Step Functions state)::

    {
      "kind": "map" | "merge" | "reduce",
      "task_id": 3,                    # map or merge task id, or the reduce partition
      "attempt": 1,
      "counters": {"map_input_records": ..., ...},   # built-in, see COUNTER_NAMES
      "user_counters": {"name": n, ...},             # mrspec.api.increment()
      "started": unix_time, "seconds": float,
      "peak_memory_bytes": n,          # this process's peak RSS (getrusage maxrss)
      "memory_cap_mb": n,
      # map and reduce:
      "bad_records": [{"uri": ..., "offset": 123, "error": "ValueError: ..."}],
      "bad_record_count": 1,
      "outputs": [{"uri": ..., "size": n, "records": n}],  # reduce, map-only
      # map (map+reduce jobs) and merge: the exchange object written
      "shuffle": {"uri": ..., "bytes": n},
      "buffer_peak_estimate": n,       # map with a shuffle
      "shuffle_segments": n,           # reduce: exchange objects with this partition
      "level": 1, "totals": {...}, "merge": {"inputs": n, "records": n, "bytes": n},  # merge
    }

Keys come from ``mrspec.runtime.layout``; a phase's results are read by key (task ids
0..n-1), in parallel, never by listing, so the reader learns exactly which are missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mrspec.runtime.badrecords import BadRecord
from mrspec.runtime.exchange import Totals, parallel
from mrspec.runtime.layout import result_uri
from mrspec.storage import storage_for


@dataclass(frozen=True)
class PartFile:
    """One output part a task wrote."""

    uri: str
    size: int
    records: int

    def to_json(self) -> dict[str, Any]:
        return {"uri": self.uri, "size": self.size, "records": self.records}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartFile:
        return cls(str(data["uri"]), int(data["size"]), int(data["records"]))


@dataclass(frozen=True)
class ShuffleObject:
    """The exchange object a map or merge task wrote."""

    uri: str
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"uri": self.uri, "bytes": self.bytes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShuffleObject:
        return cls(str(data["uri"]), int(data["bytes"]))


def _ints(data: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in (data or {}).items()}


@dataclass(frozen=True, kw_only=True)
class TaskResult:
    """What every task attempt reports; see the subclasses for each kind's own fields."""

    kind: ClassVar[str] = ""
    task_id: int
    attempt: int = 1
    counters: dict[str, int] = field(default_factory=dict)
    user_counters: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    seconds: float = 0.0
    peak_memory_bytes: int = 0
    memory_cap_mb: int = 0

    @property
    def phase(self) -> str:
        """The phase the result belongs to: ``map``, ``merge-2``, ``reduce``."""
        return self.kind

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "task_id": self.task_id,
            "attempt": self.attempt,
            "counters": dict(self.counters),
            "user_counters": dict(self.user_counters),
            "started": self.started,
            "seconds": self.seconds,
            "peak_memory_bytes": self.peak_memory_bytes,
            "memory_cap_mb": self.memory_cap_mb,
        }

    @staticmethod
    def _common(data: dict[str, Any]) -> dict[str, Any]:
        return {
            "task_id": int(data["task_id"]),
            "attempt": int(data.get("attempt", 1)),
            "counters": _ints(data.get("counters")),
            "user_counters": _ints(data.get("user_counters")),
            "started": float(data.get("started", 0.0)),
            "seconds": float(data.get("seconds", 0.0)),
            "peak_memory_bytes": int(data.get("peak_memory_bytes", 0)),
            "memory_cap_mb": int(data.get("memory_cap_mb", 0)),
        }


@dataclass(frozen=True, kw_only=True)
class _WritesRecords(TaskResult):
    """A map or reduce task: it may skip records and may write output parts."""

    bad_records: tuple[BadRecord, ...] = ()  # the first MAX_REPORTED_BAD_RECORDS
    bad_record_count: int = 0
    outputs: tuple[PartFile, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["bad_records"] = [b.to_json() for b in self.bad_records]
        out["bad_record_count"] = self.bad_record_count
        if self.outputs:
            out["outputs"] = [p.to_json() for p in self.outputs]
        return out

    @staticmethod
    def _records(data: dict[str, Any]) -> dict[str, Any]:
        return {
            "bad_records": tuple(BadRecord.from_json(b) for b in data.get("bad_records", ())),
            "bad_record_count": int(data.get("bad_record_count", 0)),
            "outputs": tuple(PartFile.from_json(p) for p in data.get("outputs", ())),
        }


@dataclass(frozen=True, kw_only=True)
class MapResult(_WritesRecords):
    kind: ClassVar[str] = "map"
    shuffle: ShuffleObject | None = None  # map+reduce jobs; a map-only job has outputs
    buffer_peak_estimate: int | None = None

    def totals(self) -> Totals:
        """This task's totals, as its exchange object carries them."""
        return Totals(
            1, dict(self.counters), dict(self.user_counters), self.bad_record_count,
            self.bad_records,
        )

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if self.shuffle is not None:
            out["shuffle"] = self.shuffle.to_json()
        if self.buffer_peak_estimate is not None:
            out["buffer_peak_estimate"] = self.buffer_peak_estimate
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MapResult:
        shuffle = data.get("shuffle")
        peak = data.get("buffer_peak_estimate")
        return cls(
            **cls._common(data), **cls._records(data),
            shuffle=ShuffleObject.from_json(shuffle) if shuffle else None,
            buffer_peak_estimate=None if peak is None else int(peak),
        )


@dataclass(frozen=True, kw_only=True)
class ReduceResult(_WritesRecords):
    kind: ClassVar[str] = "reduce"
    shuffle_segments: int = 0  # exchange objects that held this partition

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "shuffle_segments": self.shuffle_segments}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReduceResult:
        return cls(
            **cls._common(data), **cls._records(data),
            shuffle_segments=int(data.get("shuffle_segments", 0)),
        )


@dataclass(frozen=True)
class MergeStats:
    inputs: int  # exchange objects merged
    records: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "records": self.records, "bytes": self.bytes}


@dataclass(frozen=True, kw_only=True)
class MergeResult(TaskResult):
    kind: ClassVar[str] = "merge"
    level: int
    totals: Totals  # of the map tasks the merged group covers
    shuffle: ShuffleObject
    merge: MergeStats

    @property
    def phase(self) -> str:
        return f"merge-{self.level}"

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "level": self.level,
            "totals": self.totals.to_json(),
            "shuffle": self.shuffle.to_json(),
            "merge": self.merge.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MergeResult:
        m = data["merge"]
        return cls(
            **cls._common(data),
            level=int(data["level"]),
            totals=Totals.from_json(data["totals"]),
            shuffle=ShuffleObject.from_json(data["shuffle"]),
            merge=MergeStats(int(m["inputs"]), int(m["records"]), int(m["bytes"])),
        )


_KINDS: dict[str, type[MapResult] | type[MergeResult] | type[ReduceResult]] = {
    "map": MapResult, "merge": MergeResult, "reduce": ReduceResult,
}


def result_from_json(data: dict[str, Any]) -> TaskResult:
    """The typed result of a result's JSON form (its ``kind`` says which)."""
    kind = data.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"a task result's kind must be one of {sorted(_KINDS)}, not {kind!r}")
    return _KINDS[str(kind)].from_json(data)


def store_result(work_prefix: str, result: TaskResult) -> None:
    uri = result_uri(work_prefix, result.phase, result.task_id)
    storage_for(uri).write(uri, json.dumps(result.to_json(), separators=(",", ":")).encode())


def _load(uri: str) -> TaskResult | None:
    storage = storage_for(uri)
    try:
        data: dict[str, Any] = json.loads(storage.read(uri))
    except FileNotFoundError:
        return None
    except Exception as exc:  # S3's NoSuchKey is a botocore ClientError
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            return None
        raise
    return result_from_json(data)


def load_results(work_prefix: str, phase: str, count: int) -> tuple[list[TaskResult], list[int]]:
    """The results of tasks ``0..count-1`` of ``phase``: (those present, missing ids)."""
    uris = [result_uri(work_prefix, phase, i) for i in range(count)]
    found = parallel(_load, uris)
    present = [r for r in found if r is not None]
    missing = [i for i, r in enumerate(found) if r is None]
    return present, missing


def drop_results(work_prefix: str, phase: str, count: int) -> None:
    """Forget the results of tasks ``0..count-1`` of ``phase`` (a failed run keeping its
    work for a resume drops those of the tasks whose parts it removed, so they run again)."""
    uris = [result_uri(work_prefix, phase, i) for i in range(count)]
    if uris:
        storage_for(uris[0]).delete(uris)
