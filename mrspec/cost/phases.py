"""What each phase of a run asks of its largest task: requests, seconds, memory, payload.

``predict_phases(spec, plan, stack, assumptions)`` is the plain function ``plan`` and the
scale harness share: one :class:`PhasePrediction` per phase in run order (map, each merge
level, reduce, commit), each with its task count, its function's timeout and memory, and
the largest task's figures (:class:`PerTask`). The cost model prices the same predictions
and the limit checks (``mrspec.cost.limits``) compare them with each phase's limits.

The exchange is the one of ``mrspec.plan.exchange`` (fan-in ``F = fan_in(reduce memory)``,
``merge_levels(M, F)``): a merge task reads its group of at most F objects of the level
before (one result/index GET and the object in read windows each) and writes one object
with every partition; a reduce task reads its partition's segment of each of the at most
F objects of the last level; the commit reads one small result per task of the phases
whose results carry the run's totals. docs/plan.md gives every formula.

Time of one task::

    task_overhead_s + cpu MiB x cpu_s_per_mib / cpu_share(memory)
      + read MiB / s3_read_mib_s + written MiB / s3_write_mib_s
      + s3_request_latency_s x (ceil(GETs / s3_reads_in_flight) + PUTs + LISTs)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from mrspec.cost.assumptions import Assumptions
from mrspec.cost.stack import phase_of
from mrspec.plan import exchange
from mrspec.plan.items import map_item
from mrspec.plan.model import JobPlan
from mrspec.runtime.readers import S3_CHUNK
from mrspec.runtime.reducetask import read_window
from mrspec.spec.model import JobSpec

if TYPE_CHECKING:
    from mrspec.aws.model import Phase, StackModel

MIB = 1024**2
ONE_VCPU_MB = 1769  # Lambda memory that gives one full vCPU
LIST_PAGE = 1000  # keys per ListObjectsV2 page
DELETE_BATCH = 1000  # keys per DeleteObjects request
MAP_BUFFER_SHARE = 3  # the map buffer holds up to memory / 3 (runtime.config.buffer_budget)

PhaseKind = Literal["map", "merge", "reduce", "commit"]


def cpu_share(memory_mb: int) -> float:
    """Share of one vCPU a single-threaded Python task gets at ``memory_mb``.

    Lambda allocates CPU in proportion to memory (1,769 MB = 1 vCPU, up to 6 vCPUs at
    10,240 MB); one Python thread uses at most one of them.
    """
    return min(memory_mb / ONE_VCPU_MB, 1.0)


def objects_put_requests(size: float, a: Assumptions) -> int:
    """PUT-class requests to write one object: 1, or a multipart upload
    (CreateMultipartUpload + one UploadPart per part + CompleteMultipartUpload)."""
    part = a["multipart_part_mib"] * MIB
    if size <= part:
        return 1
    return math.ceil(size / part) + 2


def split_get_requests(start: int, end: int, compressed: bool) -> int:
    """Ranged GETs the runtime makes to read a split: windows of ``S3_CHUNK`` bytes from
    ``start - 1`` (to see whether a record starts at ``start``), or one streaming GET
    for a compressed object. The read-ahead past ``end`` is counted apart."""
    if compressed:
        return 1
    first = start - 1 if start > 0 else 0
    return math.ceil((end - first) / S3_CHUNK)


@dataclass(frozen=True)
class TaskLoad:
    """The work of one task, before it is turned into seconds and megabytes."""

    get_requests: int
    put_requests: int
    list_requests: int
    read_bytes: float
    written_bytes: float
    cpu_mib: float  # MiB that pass through the CPU-bound code
    cpu_s_per_mib: float  # on one full vCPU
    held_mb: float  # memory the task holds above the runtime's own
    extra_s: float = 0.0  # a fixed duration of its own (the commit's commit_s)


def task_seconds(load: TaskLoad, memory_mb: int, a: Assumptions, overhead: bool = True) -> float:
    """The task's duration (INIT excluded), the formula of the module docstring."""
    in_flight = max(1.0, a["s3_reads_in_flight"])
    waits = math.ceil(load.get_requests / in_flight) + load.put_requests + load.list_requests
    return (
        (a["task_overhead_s"] if overhead else 0.0)
        + load.extra_s
        + load.cpu_mib * load.cpu_s_per_mib / cpu_share(memory_mb)
        + load.read_bytes / MIB / a["s3_read_mib_s"]
        + load.written_bytes / MIB / a["s3_write_mib_s"]
        + a["s3_request_latency_s"] * waits
    )


@dataclass(frozen=True)
class PerTask:
    """The largest task of a phase, as ``plan --json`` prints it under ``per_task``."""

    get_requests: int
    put_requests: int
    list_requests: int
    seconds: float
    peak_memory_mb: float
    payload_bytes: int  # the task's Distributed Map item / state input, as Lambda gets it

    def to_json(self) -> dict[str, Any]:
        return {
            "get_requests": self.get_requests,
            "put_requests": self.put_requests,
            "list_requests": self.list_requests,
            "seconds": round(self.seconds, 3),
            "peak_memory_mb": round(self.peak_memory_mb, 1),
            "payload_bytes": self.payload_bytes,
        }


@dataclass(frozen=True)
class PhasePrediction:
    name: str  # "map", "merge-1", "merge-2", ..., "reduce", "commit"
    kind: PhaseKind
    function: str  # logical function name
    phase: Phase | None  # the Distributed Map phase (None: the commit, a Task state)
    tasks: int
    timeout_s: int
    memory_mb: int
    per_task: PerTask
    task_seconds: tuple[float, ...]  # every task's duration (the reduce: the mean partition's)
    loads: tuple[TaskLoad, ...]  # every task's load, in task order (reduce: the mean one each)

    @property
    def execution_type(self) -> str | None:
        return self.phase.execution_type if self.phase else None

    @property
    def max_concurrency(self) -> int:
        return self.phase.max_concurrency if self.phase else 1

    def total(self, field: str) -> float:
        return float(sum(getattr(load, field) for load in self.loads))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "function": self.function,
            "execution_type": self.execution_type,
            "max_concurrency": self.max_concurrency,
            "tasks": self.tasks,
            "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb,
            "per_task": self.per_task.to_json(),
        }


# ------------------------------------------------------------------------ payloads


def compact_json_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def representative_run_input(spec: JobSpec) -> dict[str, Any]:
    """The parent execution's input every task gets as ``run`` (aws.driver.execution_input)."""
    return {"job": spec.name, "run_id": "x" * 12, "spec_digest": spec.digest,
            "started": 1_800_000_000.123456}


def task_payload_bytes(phase: str, item: Any, spec: JobSpec, work_uri_bytes: int = 120) -> int:
    """Bytes of the Lambda payload a Distributed Map child builds from ``item``: the
    ItemSelector's ``{task, run}`` plus the invoke's ``phase``, ``work`` and ``attempt``
    (aws.asl). The work URI is counted at ``work_uri_bytes`` (bucket and run prefix)."""
    payload = {"phase": phase, "task": item, "run": representative_run_input(spec),
               "work": "s" * work_uri_bytes, "attempt": 0}
    return compact_json_bytes(payload)


def commit_payload_bytes(spec: JobSpec, phases: int) -> int:
    """The commit's state input: the run input and one ResultWriter summary per phase."""
    writer = {"MapRunArn": "a" * 200, "ResultWriterDetails": {"Bucket": "b" * 63,
                                                              "Key": "k" * 120}}
    return task_payload_bytes("commit", [writer] * phases, spec)


# ------------------------------------------------------------------------ phases


def predict_phases(
    spec: JobSpec,
    plan: JobPlan,
    stack: StackModel,
    a: Assumptions,
    *,
    fan_in: int | None = None,
) -> tuple[PhasePrediction, ...]:
    """Map, merge levels, reduce and commit of ``plan`` as ``apply`` runs them.

    ``fan_in`` replaces ``exchange.fan_in(reduce memory)`` (a value >= the map task
    count gives the exchange without merge phases, every reducer reading every map
    output: the old design, to compare).
    """
    map_phase = _map_phase(spec, plan, stack, a)
    phases = [map_phase]
    if not plan.map_only and phase_of(stack, "reduce") is not None:
        reduce_fn = stack.function(phase_of(stack, "reduce").function)  # type: ignore[union-attr]
        fan = fan_in if fan_in is not None else exchange.fan_in(reduce_fn.memory_mb)
        sizes = [t.input_bytes * a["shuffle_ratio"] for t in plan.map_tasks]
        for level, tasks in enumerate(exchange.merge_levels(len(sizes), fan), start=1):
            merge, sizes = _merge_phase(spec, stack, a, level, tasks, sizes)
            phases.append(merge)
        phases.append(_reduce_phase(spec, plan, stack, a, sizes))
    phases.append(_commit_phase(spec, stack, a, phases))
    return tuple(phases)


def _largest(
    name: str, kind: PhaseKind, pf: Phase | None, function: str, stack: StackModel,
    a: Assumptions, loads: Sequence[TaskLoad], payload: int, largest: TaskLoad | None = None,
) -> PhasePrediction:
    fn = stack.function(function)
    seconds = tuple(task_seconds(load, fn.memory_mb, a) for load in loads)
    top = largest or max(loads, key=lambda load: task_seconds(load, fn.memory_mb, a))
    per_task = PerTask(
        get_requests=top.get_requests,
        put_requests=top.put_requests,
        list_requests=top.list_requests,
        seconds=task_seconds(top, fn.memory_mb, a),
        peak_memory_mb=a["runtime_memory_mb"] + max(load.held_mb for load in (*loads, top)),
        payload_bytes=payload,
    )
    return PhasePrediction(
        name=name, kind=kind, function=function, phase=pf, tasks=len(loads),
        timeout_s=fn.timeout_s, memory_mb=fn.memory_mb,
        per_task=per_task, task_seconds=seconds, loads=tuple(loads),
    )


def _map_phase(spec: JobSpec, plan: JobPlan, stack: StackModel, a: Assumptions) -> PhasePrediction:
    pf = phase_of(stack, "map")
    assert pf is not None, "every stack has a map phase"
    fn = stack.function(pf.function)
    ratio = a["output_ratio"] if plan.map_only else a["shuffle_ratio"]
    measured = a["map_peak_memory_mb"] - a["runtime_memory_mb"]  # by --sample, if it ran
    loads = []
    for task in plan.map_tasks:
        # The map buffer (at most its budget, at most about the task's input) and the
        # read windows in flight; a sample's task is smaller, so its peak is a floor.
        held = max(measured, (
            min(fn.memory_mb * MIB / MAP_BUFFER_SHARE, task.input_bytes)
            + min(a["s3_reads_in_flight"] * S3_CHUNK, task.input_bytes)
        ) / MIB)
        readahead = sum(1 for s in task.splits if s.end < s.object_size and not s.compressed)
        written = task.input_bytes * ratio
        loads.append(TaskLoad(
            get_requests=sum(split_get_requests(s.start, s.end, s.compressed) for s in task.splits)
            + int(a["readahead_gets_per_split"]) * readahead,
            put_requests=objects_put_requests(written, a) + 1,  # shuffle or output, + result
            list_requests=0,
            read_bytes=task.input_bytes, written_bytes=written,
            cpu_mib=task.input_bytes / MIB, cpu_s_per_mib=a["map_cpu_s_per_mib"],
            held_mb=held,
        ))
    # a task too big to inline travels as a reference to its manifest shard (plan.items)
    payload = max((task_payload_bytes("map", map_item(t), spec) for t in plan.map_tasks),
                  default=0)
    if not loads:
        loads = [TaskLoad(0, 0, 0, 0, 0, 0, 0, 0)]
    return _largest("map", "map", pf, pf.function, stack, a, loads, payload)


def _merge_phase(
    spec: JobSpec, stack: StackModel, a: Assumptions, level: int, tasks: int,
    sizes: Sequence[float],
) -> tuple[PhasePrediction, list[float]]:
    """One merge level: ``tasks`` groups of the objects ``sizes``; returns the level's
    prediction and the sizes of the objects it writes."""
    reduce_pf = phase_of(stack, "reduce")
    assert reduce_pf is not None
    name = f"merge-{level}"
    pf = phase_of(stack, name) or replace(
        reduce_pf, name=name, max_concurrency=min(spec.limits.max_concurrency, tasks)
    )
    fn = stack.function(reduce_pf.function)  # merge tasks run with the reduce section's sizes
    loads, written = [], []
    for group in exchange.groups(len(sizes), tasks):
        window = read_window(fn.memory_mb, len(group))
        read = sum(sizes[i] for i in group)
        loads.append(TaskLoad(
            get_requests=sum(1 + math.ceil(sizes[i] / window) for i in group),
            put_requests=objects_put_requests(read, a) + 1,
            list_requests=0,
            read_bytes=read, written_bytes=read,
            cpu_mib=read / MIB, cpu_s_per_mib=a["merge_cpu_s_per_mib"],
            held_mb=(len(group) * 2 * window + min(a["multipart_part_mib"] * MIB, read)) / MIB,
        ))
        written.append(read)
    item = {"level": level, "task_id": tasks - 1, "inputs": [len(sizes) - 1, len(sizes)]}
    payload = task_payload_bytes("merge", item, spec)
    return _largest(name, "merge", pf, fn.logical_name, stack, a, loads, payload), written


def _reduce_phase(
    spec: JobSpec, plan: JobPlan, stack: StackModel, a: Assumptions, sizes: Sequence[float]
) -> PhasePrediction:
    """Each reduce task reads its partition's segment of every object of ``sizes``."""
    pf = phase_of(stack, "reduce")
    assert pf is not None
    fn = stack.function(pf.function)
    partitions = plan.partitions
    window = read_window(fn.memory_mb, len(sizes))
    index_reads = int(a["reduce_reads_map_results"])
    output = plan.input_bytes * a["output_ratio"] / partitions

    def load(scale: float) -> TaskLoad:
        segments = [s / partitions * scale for s in sizes]
        written = output * scale
        return TaskLoad(
            get_requests=sum(math.ceil(s / window) for s in segments) + index_reads * len(sizes),
            put_requests=objects_put_requests(written, a) + 1,
            list_requests=0,  # the plan names the objects; nothing is listed
            read_bytes=sum(segments), written_bytes=written,
            cpu_mib=sum(segments) / MIB, cpu_s_per_mib=a["reduce_cpu_s_per_mib"],
            held_mb=max(
                (len(sizes) * 2 * window + min(a["multipart_part_mib"] * MIB, written)) / MIB,
                a["reduce_peak_memory_mb"] - a["runtime_memory_mb"],
            ),
        )

    mean, hot = load(1.0), load(max(1.0, a["partition_skew"]))
    payload = task_payload_bytes("reduce", {"partition": max(0, partitions - 1)}, spec)
    return _largest("reduce", "reduce", pf, pf.function, stack, a, [mean] * partitions,
                    payload, largest=hot)


def _commit_phase(
    spec: JobSpec, stack: StackModel, a: Assumptions, phases: Sequence[PhasePrediction]
) -> PhasePrediction:
    """The commit reads the results that carry the run's totals: the last merge level's
    (they hold their groups') or, without merges, the map tasks', and the reducers'."""
    merges = [p for p in phases if p.kind == "merge"]
    reads = [p.tasks for p in phases if p.kind == "reduce"]  # results read, per phase
    reads.append(merges[-1].tasks if merges else phases[0].tasks)
    results = sum(reads)
    work_objects = sum(2 * p.tasks for p in phases) + len(phases)  # objects + results + manifests
    load = TaskLoad(
        get_requests=results,
        put_requests=1 + math.ceil(work_objects / DELETE_BATCH),  # _SUCCESS, DeleteObjects
        list_requests=sum(math.ceil(n / LIST_PAGE) for n in reads) + 1
        + math.ceil(work_objects / LIST_PAGE),  # results, the output check, the cleanup
        read_bytes=0, written_bytes=0,  # small results: latency, not bandwidth
        cpu_mib=0, cpu_s_per_mib=0,
        held_mb=results * a["task_result_memory_kib"] / 1024,
        extra_s=a["commit_s"],
    )
    fn = stack.function("commit")
    seconds = task_seconds(load, fn.memory_mb, a, overhead=False)
    payload = commit_payload_bytes(spec, len(phases))
    prediction = _largest("commit", "commit", None, "commit", stack, a, [load], payload)
    return replace(prediction, task_seconds=(seconds,),
                   per_task=replace(prediction.per_task, seconds=seconds))
