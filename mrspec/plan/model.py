"""``JobPlan``: input objects, byte-range splits, bins (map tasks), reduce tasks.

A split ``[start, end)`` of an object *owns every record that starts inside it*: the
reader skips the partial record at ``start`` (unless ``start == 0``) and reads the last
record to its end even past ``end``. So every record is read by exactly one split,
whatever the split size. Compressed objects are one split each (``compressed=True``).

Plans are values: ``plan`` prints one, ``apply`` executes the same one. The ``to_json``
forms are the task manifests handed to map tasks (locally and in the state machine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mrspec.storage import ObjectInfo


@dataclass(frozen=True, slots=True)  # slots: a plan may hold millions of splits
class Split:
    uri: str
    start: int
    end: int  # exclusive; the object's size for the last split
    object_size: int
    compressed: bool = False

    @property
    def length(self) -> int:
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uri": self.uri,
            "start": self.start,
            "end": self.end,
            "size": self.object_size,
        }
        if self.compressed:
            out["compressed"] = True
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Split:
        return cls(
            uri=data["uri"],
            start=int(data["start"]),
            end=int(data["end"]),
            object_size=int(data["size"]),
            compressed=bool(data.get("compressed", False)),
        )


@dataclass(frozen=True, slots=True)
class MapTask:
    task_id: int
    splits: tuple[Split, ...]

    @property
    def input_bytes(self) -> int:
        return sum(s.length for s in self.splits)

    def to_json(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "splits": [s.to_json() for s in self.splits]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MapTask:
        return cls(
            task_id=int(data["task_id"]),
            splits=tuple(Split.from_json(s) for s in data["splits"]),
        )


@dataclass(frozen=True)
class ShuffleInputs:
    """Exchange objects ``range(start, stop, step)`` of exchange level ``level`` (0: map
    outputs). ``step`` > 1 picks one partition range's objects out of a level whose
    groups were cut into ``step`` ranges (their ids are ``group * step + range``)."""

    level: int
    start: int
    stop: int
    step: int = 1

    @property
    def ids(self) -> range:
        return range(self.start, self.stop, self.step)

    @property
    def count(self) -> int:
        return len(self.ids)

    def to_json(self) -> dict[str, Any]:
        out = {"level": self.level, "start": self.start, "stop": self.stop}
        if self.step != 1:
            out["step"] = self.step
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShuffleInputs:
        return cls(int(data["level"]), int(data["start"]), int(data["stop"]), int(data.get("step", 1)))


@dataclass(frozen=True)
class MergeTask:
    """One merge task: merges the partitions ``partitions`` (``[first, stop)``; None: all)
    of its inputs (of level ``level - 1``) into one exchange object of level ``level``.

    ``carries_totals``: whether the object's totals include its inputs' totals. Each
    input object is read by every range task of its group; exactly one of them (the
    first piece of the inputs' range) passes the inputs' totals on, so the commit counts
    every map task once.
    """

    level: int
    task_id: int
    inputs: ShuffleInputs
    partitions: tuple[int, int] | None = None
    carries_totals: bool = True

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level, "task_id": self.task_id, "inputs": self.inputs.to_json()}
        if self.partitions is not None:
            out["partitions"] = list(self.partitions)
        if not self.carries_totals:
            out["carries_totals"] = False
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MergeTask:
        span = data.get("partitions")
        return cls(
            int(data["level"]),
            int(data["task_id"]),
            ShuffleInputs.from_json(data["inputs"]),
            (int(span[0]), int(span[1])) if span is not None else None,
            bool(data.get("carries_totals", True)),
        )


@dataclass(frozen=True)
class MergeLevel:
    """A merge phase: its tasks each read at most ``fan_in`` objects of the level before."""

    level: int
    fan_in: int
    tasks: tuple[MergeTask, ...]
    ranges: int = 1  # partition ranges each group is cut into (tasks = groups x ranges)

    @property
    def phase(self) -> str:
        return f"merge-{self.level}"

    @property
    def groups(self) -> int:
        return len(self.tasks) // self.ranges

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "fan_in": self.fan_in, "tasks": len(self.tasks),
                "groups": self.groups, "partition_ranges": self.ranges}


@dataclass(frozen=True)
class ReduceTask:
    partition: int
    inputs: ShuffleInputs | None = None  # the last exchange level; None: given by the caller

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"partition": self.partition}
        if self.inputs is not None:
            out["inputs"] = self.inputs.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReduceTask:
        inputs = data.get("inputs")
        return cls(int(data["partition"]), ShuffleInputs.from_json(inputs) if inputs else None)


@dataclass(frozen=True)
class StepPlan:
    """One step's phases: map, its merge levels, reduce (none for a map-only step).

    Step 0's map tasks read the job's input splits; a later step's map task ``i`` has no
    splits and reads part ``i`` of the step before (``runtime.layout.step_input_uri``),
    so a later step has as many map tasks as the step before has output parts.
    """

    step: int
    map_tasks: tuple[MapTask, ...]
    reduce_tasks: tuple[ReduceTask, ...] = ()
    merge_levels: tuple[MergeLevel, ...] = ()

    @property
    def map_only(self) -> bool:
        return not self.reduce_tasks

    @property
    def output_parts(self) -> int:
        """Parts this step writes: one per partition, or per map task when map-only."""
        return len(self.map_tasks) if self.map_only else len(self.reduce_tasks)

    @property
    def reduce_inputs(self) -> int:
        """Exchange objects each reducer reads (the results that carry the step's totals)."""
        return len(self.merge_levels[-1].tasks) if self.merge_levels else len(self.map_tasks)

    @property
    def output_phase(self) -> str:
        """The phase whose tasks write the parts (``output_parts`` of them)."""
        return "map" if self.map_only else "reduce"

    def phases(self) -> list[str]:
        """The step's phase names in order: ``map``, ``merge-1``, ..., ``reduce``."""
        names = ["map", *(m.phase for m in self.merge_levels)]
        return names if self.map_only else [*names, "reduce"]

    def task_counts(self) -> dict[str, int]:
        """How many tasks each of ``phases()`` has, in the same order."""
        counts = {"map": len(self.map_tasks), **{m.phase: len(m.tasks) for m in self.merge_levels}}
        return counts if self.map_only else {**counts, "reduce": len(self.reduce_tasks)}

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "map_tasks": len(self.map_tasks),
            "merge_levels": [m.to_json() for m in self.merge_levels],
            "reduce_tasks": len(self.reduce_tasks),
        }


@dataclass(frozen=True)
class JobPlan:
    job_name: str
    spec_digest: str
    objects: tuple[ObjectInfo, ...]  # every input object, hidden ones already excluded
    splits: tuple[Split, ...]
    map_tasks: tuple[MapTask, ...]
    reduce_tasks: tuple[ReduceTask, ...]  # empty for a map-only job
    split_size: int
    bin_size: int
    # how long listing the input took (a measurement, not part of the plan's value)
    listing_seconds: float = field(default=0.0, compare=False)
    merge_levels: tuple[MergeLevel, ...] = ()  # between map and reduce (mrspec.plan.exchange)
    # steps 1.. of a job with steps (the fields above are step 0, as for a one-step job)
    later_steps: tuple[StepPlan, ...] = ()

    @property
    def steps(self) -> tuple[StepPlan, ...]:
        """Every step's phases in order (one step for a job without ``steps``)."""
        first = StepPlan(0, self.map_tasks, self.reduce_tasks, self.merge_levels)
        return (first, *self.later_steps)

    @property
    def exchange_level(self) -> int:
        """The exchange level the reducers read (0: the map outputs themselves)."""
        return len(self.merge_levels)

    @property
    def reduce_inputs(self) -> int:
        """Exchange objects each reducer reads (step 0's)."""
        return self.steps[0].reduce_inputs

    @property
    def input_bytes(self) -> int:
        return sum(o.size for o in self.objects)

    @property
    def partitions(self) -> int:
        return len(self.reduce_tasks)

    @property
    def map_only(self) -> bool:
        return not self.reduce_tasks

    def to_json(self) -> dict[str, Any]:
        """A summary for ``--json`` output (not the full manifests)."""
        return {
            "job": self.job_name,
            "spec_digest": self.spec_digest,
            "input_objects": len(self.objects),
            "input_bytes": self.input_bytes,
            "splits": len(self.splits),
            "map_tasks": len(self.map_tasks),
            "reduce_tasks": len(self.reduce_tasks),
            "merge_levels": [m.to_json() for m in self.merge_levels],
            "split_size": self.split_size,
            "bin_size": self.bin_size,
            "listing_seconds": round(self.listing_seconds, 3),
            **({"steps": [s.to_json() for s in self.steps]} if self.later_steps else {}),
        }
