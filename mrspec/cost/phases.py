"""What each phase of a run asks of its largest task: requests, seconds, memory, payload.

``predict_phases(spec, plan, stack, assumptions)`` is the plain function ``plan`` and the
scale harness share: one :class:`PhasePrediction` per phase in run order (map, each merge
level, reduce, commit), each with its task count, its function's timeout and memory, and
the largest task's figures (:class:`PerTask`). The cost model prices the same predictions
and the limit checks (``mrspec.cost.limits``) compare them with each phase's limits.

The exchange is the plan's (``JobPlan.merge_levels``, shaped by ``mrspec.plan.exchange``:
fan-in ``F = fan_in(reduce memory)``, groups cut into partition ranges of at most
``MERGE_TASK_BYTES`` of input): a merge task reads its range's share of each of its at
most F input objects (one head GET and its share in read windows each) and writes one
object holding that range; a reduce task reads its partition's segment of each of the at
most F objects of the last level; the commit reads one small result per task of the phases
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
from mrspec.plan.items import map_item
from mrspec.plan.model import JobPlan, MergeLevel
from mrspec.plan.planner import plan_exchange, reduce_inputs
from mrspec.runtime.exchange import HEAD_READ, PREAMBLE, SegmentIndex
from mrspec.runtime.readers import S3_CHUNK
from mrspec.runtime.reducetask import read_window
from mrspec.spec.model import JobSpec

if TYPE_CHECKING:
    from mrspec.aws.model import Phase, StackModel

MIB = 1024**2
ONE_VCPU_MB = 1769  # Lambda memory that gives one full vCPU
LIST_PAGE = 1000  # keys per ListObjectsV2 page
DELETE_BATCH = 1000  # keys per DeleteObjects request
TOTALS_BYTES = 512  # an exchange object's totals JSON (counters, a few bad records)
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


def object_bytes(data: float, partitions: int) -> float:
    """An exchange object's size: its data and its header, whose index has an entry
    (``SegmentIndex.size``) per partition (all assumed non-empty) and a small totals
    document. At 2,000 partitions the index alone is 56 KB of the 64 KiB head read."""
    return data + PREAMBLE.size + TOTALS_BYTES + SegmentIndex.size(partitions)


def exchange_gets(size: float, share: float, window: int) -> int:
    """GETs to read ``share`` bytes of an exchange object of ``size`` bytes (header
    included): the head (``HEAD_READ`` bytes: header, index and, for a small object, all
    of its data), then the share in read windows when the head did not bring it."""
    if size <= HEAD_READ:
        return 1
    return 1 + math.ceil(share / window)


def run_held_bytes(size: float, share: float, window: int) -> float:
    """Memory one open input holds: its head (kept while the task runs: index and the
    data it brought along) and at most two read windows of its share, never more than
    the share."""
    return min(size, HEAD_READ) + min(2 * window, share)


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
    inputs: int = 0  # exchange objects each task reads (merge: the largest group; reduce)
    step: int = 0  # the step of a job with steps (its name says it: "steps[1].map")

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
    """Map, merge levels, reduce of each step, and the commit, of ``plan`` as ``apply``
    runs them: each step is predicted as a one-step job (``mrspec.cost.steps``) and its
    phases named as the stack names them.

    ``fan_in`` replaces ``exchange.fan_in(reduce memory)`` (a value >= the map task
    count gives the exchange without merge phases, every reducer reading every map
    output: the old design, to compare).
    """
    from mrspec.cost.steps import step_views

    phases: list[PhasePrediction] = []
    for view in step_views(spec, plan, stack, a):
        for p in _step_phases(view.spec, view.plan, view.stack, a, fan_in):
            if view.steps == 1:
                phases.append(p)
                continue
            function = view.functions[p.function]
            phase = replace(p.phase, name=view.names[p.name], function=function) if p.phase else None
            phases.append(replace(p, name=view.names[p.name], function=function, phase=phase,
                                  step=view.step))
    phases.append(_commit_phase(spec, stack, a, phases))
    return tuple(phases)


def _step_phases(
    spec: JobSpec, plan: JobPlan, stack: StackModel, a: Assumptions, fan_in: int | None
) -> list[PhasePrediction]:
    """Map, merge levels and reduce of a one-step job (or one step, as such a job)."""
    map_phase = _map_phase(spec, plan, stack, a)
    phases = [map_phase]
    if not plan.map_only and phase_of(stack, "reduce") is not None:
        levels = plan.merge_levels
        if fan_in is not None:
            covered = [t.input_bytes for t in plan.map_tasks]
            levels = plan_exchange(covered, fan_in, plan.partitions)
        # each object of the level before: (shuffle bytes, partitions it holds)
        objects = [(t.input_bytes * a["shuffle_ratio"], plan.partitions) for t in plan.map_tasks]
        for level in levels:
            merge, objects = _merge_phase(spec, stack, a, level, objects, plan.partitions)
            phases.append(merge)
        inputs = reduce_inputs(levels, len(plan.map_tasks), 0)
        phases.append(_reduce_phase(spec, plan, stack, a, [objects[i] for i in inputs.ids]))
    return phases


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
    spec: JobSpec, stack: StackModel, a: Assumptions, level: MergeLevel,
    objects: Sequence[tuple[float, int]], partitions: int,
) -> tuple[PhasePrediction, list[tuple[float, int]]]:
    """One merge level over ``objects`` (the level before's, as ``(bytes, partitions
    held)``): each task reads its range's share of each of its inputs. Returns the
    level's prediction and the objects it writes."""
    reduce_pf = phase_of(stack, "reduce")
    assert reduce_pf is not None
    pf = phase_of(stack, level.phase) or replace(
        reduce_pf, name=level.phase, max_concurrency=min(spec.limits.max_concurrency, len(level.tasks))
    )
    fn = stack.function(reduce_pf.function)  # merge tasks run with the reduce section's sizes
    loads, written = [], []
    for task in level.tasks:
        first, stop = task.partitions or (0, partitions)
        inputs = [
            (object_bytes(*objects[i]), objects[i][0] * (stop - first) / objects[i][1])
            for i in task.inputs.ids
        ]
        window = read_window(fn.memory_mb, len(inputs))
        read = sum(share for _, share in inputs)
        out = read * a["merge_output_ratio"]
        loads.append(TaskLoad(
            get_requests=sum(exchange_gets(size, share, window) for size, share in inputs),
            put_requests=objects_put_requests(out, a) + 1,
            list_requests=0,
            read_bytes=read, written_bytes=out,
            cpu_mib=read / MIB, cpu_s_per_mib=a["merge_cpu_s_per_mib"],
            held_mb=(sum(run_held_bytes(size, share, window) for size, share in inputs)
                     + min(a["multipart_part_mib"] * MIB, out)) / MIB,
        ))
        written.append((out, stop - first))
    payload = max(task_payload_bytes("merge", t.to_json(), spec) for t in level.tasks[-level.ranges:])
    return _largest(level.phase, "merge", pf, fn.logical_name, stack, a, loads, payload), written


def _reduce_phase(
    spec: JobSpec, plan: JobPlan, stack: StackModel, a: Assumptions,
    objects: Sequence[tuple[float, int]],
) -> PhasePrediction:
    """Each reduce task reads its partition's segment of each of its ``objects`` (``(bytes,
    partitions held)``; those of partition 0 stand for every partition's)."""
    pf = phase_of(stack, "reduce")
    assert pf is not None
    fn = stack.function(pf.function)
    partitions = plan.partitions
    window = read_window(fn.memory_mb, len(objects))
    index_reads = int(a["reduce_reads_map_results"])
    output = plan.input_bytes * a["output_ratio"] / partitions

    def load(scale: float) -> TaskLoad:
        segments = [size / held * scale for size, held in objects]
        written = output * scale
        gets = sum(exchange_gets(object_bytes(*o), s, window) for o, s in zip(objects, segments, strict=True))
        return TaskLoad(
            # without the heads (index_reads 0) one GET per object less
            get_requests=gets - (1 - index_reads) * len(objects),
            put_requests=objects_put_requests(written, a) + 1,
            list_requests=0,  # the plan names the objects; nothing is listed
            read_bytes=sum(segments), written_bytes=written,
            cpu_mib=sum(segments) / MIB, cpu_s_per_mib=a["reduce_cpu_s_per_mib"],
            held_mb=max(
                (sum(run_held_bytes(object_bytes(*o), s, window) for o, s in zip(objects, segments, strict=True))
                 + min(a["multipart_part_mib"] * MIB, written)) / MIB,
                a["reduce_peak_memory_mb"] - a["runtime_memory_mb"],
            ),
        )

    mean, hot = load(1.0), load(max(1.0, a["partition_skew"]))
    payload = task_payload_bytes("reduce", {"partition": max(0, partitions - 1)}, spec)
    prediction = _largest("reduce", "reduce", pf, pf.function, stack, a, [mean] * partitions,
                          payload, largest=hot)
    return replace(prediction, inputs=len(objects))


def _results_read(phases: Sequence[PhasePrediction], step: int) -> int:
    """Results holding step ``step``'s totals: its last exchange level's and reducers'."""
    mine = [p for p in phases if p.step == step]
    merges = [p for p in mine if p.kind == "merge"]
    reduced = sum(p.tasks for p in mine if p.kind == "reduce")
    return reduced + (merges[-1].tasks if merges else mine[0].tasks)


def _commit_phase(
    spec: JobSpec, stack: StackModel, a: Assumptions, phases: Sequence[PhasePrediction]
) -> PhasePrediction:
    """The commit reads the results that carry the run's totals: the last merge level's
    (they hold their groups') or, without merges, the map tasks', and the reducers'. In a
    job with steps it reads them for each step (its totals in ``_SUCCESS``), each once."""
    results = sum(_results_read(phases, step) for step in sorted({p.step for p in phases}))
    # map and merge tasks write an exchange object and a result, reducers a result (their
    # parts go to the output), and each phase has its task manifest
    work_objects = sum((1 if p.kind == "reduce" else 2) * p.tasks for p in phases) + len(phases)
    load = TaskLoad(
        get_requests=results,  # by key: nothing is listed to find them
        put_requests=1 + math.ceil(work_objects / DELETE_BATCH),  # _SUCCESS, DeleteObjects
        # the failure records (aws.handlers checks none is left) and the cleanup's listing
        list_requests=1 + math.ceil(work_objects / LIST_PAGE),
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
