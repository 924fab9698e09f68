"""The cost and time model: pure functions from a ``JobPlan``, the stack's facts and the
named assumptions to billable :class:`~mrspec.cost.usage.Usage` and a :class:`Timing`.

Pipeline: ``task times -> phase timings -> usage (Lambda, Step Functions, S3, logs)``.
docs/plan.md states every formula; the unit tests recompute them by hand.

Conventions: MiB = 2**20 bytes for throughputs, GB = 2**30 bytes for S3 and logs,
Lambda GB-s = memory MB / 1024 x billed seconds, each invocation rounded up to 1 ms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mrspec.cost.assumptions import Assumptions
from mrspec.cost.stack import PhaseFacts, StackFacts
from mrspec.cost.usage import GIB, LambdaUsage, S3Requests, Usage
from mrspec.plan.model import JobPlan
from mrspec.runtime.readers import S3_CHUNK
from mrspec.runtime.reducetask import read_window

MIB = 1024**2
ONE_VCPU_MB = 1769  # Lambda memory that gives one full vCPU
EXPRESS_MEMORY_STEP_MB = 64
EXPRESS_DURATION_STEP_MS = 100
LIST_PAGE = 1000  # keys per ListObjectsV2 page


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


def map_task_seconds(input_bytes: float, memory_mb: int, a: Assumptions, map_only: bool) -> float:
    """Duration of one map invocation (INIT excluded)."""
    mib = input_bytes / MIB
    written = input_bytes * (a["output_ratio"] if map_only else a["shuffle_ratio"]) / MIB
    compute = mib * a["map_cpu_s_per_mib"] / cpu_share(memory_mb)
    io = mib / a["s3_read_mib_s"] + written / a["s3_write_mib_s"]
    return a["task_overhead_s"] + compute + io


def reduce_task_seconds(
    shuffle_bytes: float, output_bytes: float, memory_mb: int, a: Assumptions
) -> float:
    """Duration of one reduce invocation over one partition (INIT excluded)."""
    mib = shuffle_bytes / MIB
    compute = mib * a["reduce_cpu_s_per_mib"] / cpu_share(memory_mb)
    io = mib / a["s3_read_mib_s"] + output_bytes / MIB / a["s3_write_mib_s"]
    return a["task_overhead_s"] + compute + io


def split_get_requests(start: int, end: int, compressed: bool) -> int:
    """Ranged GETs the runtime makes to read a split: windows of ``S3_CHUNK`` bytes from
    ``start - 1`` (to see whether a record starts at ``start``), or one streaming GET
    for a compressed object. The read-ahead past ``end`` is counted apart."""
    if compressed:
        return 1
    first = start - 1 if start > 0 else 0
    return math.ceil((end - first) / S3_CHUNK)


def billed_ms(seconds: float) -> int:
    """Lambda bills each invocation in 1 ms increments."""
    return math.ceil(round(seconds * 1000, 6))


@dataclass(frozen=True)
class PhaseTiming:
    name: str  # "map" | "reduce"
    tasks: int
    concurrency: int  # effective: min(MaxConcurrency, account Lambda concurrency)
    waves: int
    task_seconds: tuple[float, ...]  # each task's invocation duration, in task order
    longest_task_s: float
    phase_s: float

    @property
    def mean_task_s(self) -> float:
        return sum(self.task_seconds) / len(self.task_seconds) if self.task_seconds else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "tasks": self.tasks,
            "concurrency": self.concurrency,
            "waves": self.waves,
            "mean_task_s": round(self.mean_task_s, 3),
            "longest_task_s": round(self.longest_task_s, 3),
            "phase_s": round(self.phase_s, 3),
        }


@dataclass(frozen=True)
class Timing:
    map: PhaseTiming
    reduce: PhaseTiming | None
    commit_s: float  # cold start + commit
    driver_s: float

    @property
    def total_s(self) -> float:
        reduce_s = self.reduce.phase_s if self.reduce else 0.0
        return self.driver_s + self.map.phase_s + reduce_s + self.commit_s

    def to_json(self) -> dict[str, object]:
        return {
            "total_s": round(self.total_s, 3),
            "driver_s": round(self.driver_s, 3),
            "map": self.map.to_json(),
            "reduce": self.reduce.to_json() if self.reduce else None,
            "commit_s": round(self.commit_s, 3),
        }


def _phase_timing(
    name: str, phase: PhaseFacts, task_seconds: Sequence[float], a: Assumptions
) -> PhaseTiming:
    """Waves of ``concurrency`` tasks; each wave lasts as long as the longest task."""
    tasks = len(task_seconds)
    concurrency = max(1, int(min(phase.max_concurrency, a["account_lambda_concurrency"])))
    waves = math.ceil(tasks / concurrency)
    longest = max(task_seconds, default=0.0)
    phase_s = a["phase_overhead_s"] + (
        a["cold_start_s"] + waves * (a["child_start_s"] + longest) if tasks else 0.0
    )
    return PhaseTiming(name, tasks, concurrency, waves, tuple(task_seconds), longest, phase_s)


def estimate_timing(plan: JobPlan, facts: StackFacts, a: Assumptions) -> Timing:
    map_fn = facts.function("map")
    map_phase = facts.phase("map")
    assert map_phase is not None, "every stack has a map phase"
    map_seconds = [
        map_task_seconds(t.input_bytes, map_fn.memory_mb, a, plan.map_only) for t in plan.map_tasks
    ]
    map_timing = _phase_timing("map", map_phase, map_seconds, a)
    reduce_timing = None
    reduce_phase = facts.phase("reduce")
    if not plan.map_only and reduce_phase is not None:
        reduce_fn = facts.function(reduce_phase.function)
        partitions = plan.partitions
        mean_shuffle = plan.input_bytes * a["shuffle_ratio"] / partitions
        mean_output = plan.input_bytes * a["output_ratio"] / partitions
        mean_s = reduce_task_seconds(mean_shuffle, mean_output, reduce_fn.memory_mb, a)
        hot_s = reduce_task_seconds(
            mean_shuffle * a["partition_skew"], mean_output * a["partition_skew"],
            reduce_fn.memory_mb, a,
        )
        reduce_timing = _phase_timing("reduce", reduce_phase, [mean_s] * partitions, a)
        if hot_s > reduce_timing.longest_task_s:
            # The hot partition sets the length of its wave; cost still uses the mean.
            waves = reduce_timing.waves
            reduce_timing = PhaseTiming(
                "reduce", partitions, reduce_timing.concurrency, waves, reduce_timing.task_seconds,
                hot_s,
                a["phase_overhead_s"] + a["cold_start_s"] + waves * a["child_start_s"]
                + (waves - 1) * mean_s + hot_s,
            )
    return Timing(
        map=map_timing,
        reduce=reduce_timing,
        commit_s=a["cold_start_s"] + a["commit_s"],
        driver_s=a["driver_s"],
    )


def _lambda_usage(
    facts: StackFacts, function: str, timing: PhaseTiming, a: Assumptions
) -> LambdaUsage:
    fn = facts.function(function)
    retry = 1 + a["retry_rate"]
    environments = min(timing.tasks, timing.concurrency)
    init_ms = environments * billed_ms(a["cold_start_s"])
    return LambdaUsage(
        function=fn.logical_name,
        architecture=fn.architecture,
        memory_mb=fn.memory_mb,
        ephemeral_storage_mb=fn.ephemeral_storage_mb,
        requests=timing.tasks * retry,
        billed_ms=sum(billed_ms(s) for s in timing.task_seconds) * retry + init_ms,
    )


def _express_gb_s(timing: PhaseTiming, a: Assumptions) -> float:
    """EXPRESS children: memory rounded up to 64 MB, each duration up to 100 ms."""
    memory = max(
        EXPRESS_MEMORY_STEP_MB,
        math.ceil(a["express_child_memory_mb"] / EXPRESS_MEMORY_STEP_MB) * EXPRESS_MEMORY_STEP_MB,
    )
    step = EXPRESS_DURATION_STEP_MS
    total_ms = sum(math.ceil(billed_ms(s) / step) * step for s in timing.task_seconds)
    return total_ms * (1 + a["retry_rate"]) / 1000 * memory / 1024


def count_list_requests(plan: JobPlan, input_prefixes: Sequence[str]) -> int:
    """ListObjectsV2 pages to list the input: at least one per prefix, 1,000 keys a page."""
    calls = 0
    for prefix in input_prefixes:
        under = sum(1 for o in plan.objects if o.uri.startswith(prefix))
        calls += max(1, math.ceil(under / LIST_PAGE))
    return calls


def estimate_usage(
    plan: JobPlan,
    facts: StackFacts,
    a: Assumptions,
    timing: Timing,
    input_prefixes: Sequence[str],
) -> Usage:
    retry = 1 + a["retry_rate"]
    map_only = plan.map_only or timing.reduce is None
    lambdas = [_lambda_usage(facts, facts.phase("map").function, timing.map, a)]  # type: ignore[union-attr]
    if timing.reduce is not None:
        lambdas.append(_lambda_usage(facts, facts.phase("reduce").function, timing.reduce, a))  # type: ignore[union-attr]
    commit = facts.function("commit")
    lambdas.append(
        LambdaUsage(
            function="commit",
            architecture=commit.architecture,
            memory_mb=commit.memory_mb,
            ephemeral_storage_mb=commit.ephemeral_storage_mb,
            requests=1,
            billed_ms=billed_ms(a["commit_s"]) + billed_ms(a["cold_start_s"]),
        )
    )

    # Step Functions: the parent's own transitions, one transition per child started (the
    # Distributed Map rule), the transitions of STANDARD children (a retry is one more),
    # and requests + GB-s of EXPRESS children.
    phase_timings = [(facts.phase("map"), timing.map)]
    if timing.reduce is not None:
        phase_timings.append((facts.phase("reduce"), timing.reduce))
    transitions = float(facts.parent_transitions)
    express_requests = 0.0
    express_gb_s = 0.0
    for phase, pt in phase_timings:
        assert phase is not None
        transitions += pt.tasks
        if phase.execution_type == "STANDARD":
            transitions += pt.tasks * phase.child_transitions + pt.tasks * a["retry_rate"]
        else:
            express_requests += pt.tasks
            express_gb_s += _express_gb_s(pt, a)

    # S3 requests, every kind.
    n_map, partitions = len(plan.map_tasks), plan.partitions
    phases = len(phase_timings)
    shuffle_sizes = [] if map_only else [t.input_bytes * a["shuffle_ratio"] for t in plan.map_tasks]
    if map_only:
        output_sizes = [t.input_bytes * a["output_ratio"] for t in plan.map_tasks]
    else:
        output_sizes = [plan.input_bytes * a["output_ratio"] / partitions] * partitions
    readahead = sum(1 for s in plan.splits if s.end < s.object_size and not s.compressed)
    input_gets = sum(split_get_requests(s.start, s.end, s.compressed) for s in plan.splits)
    shuffle_gets = 0
    if not map_only:
        reduce_fn = facts.function(facts.phase("reduce").function)  # type: ignore[union-attr]
        window = read_window(reduce_fn.memory_mb, n_map)
        shuffle_gets = sum(math.ceil(s / partitions / window) for s in shuffle_sizes) * partitions
    shuffle_puts = sum(objects_put_requests(s, a) for s in shuffle_sizes) * retry
    output_puts = sum(objects_put_requests(s, a) for s in output_sizes) * retry
    result_objects = a["result_writer_objects"] * phases
    n_tasks = n_map + (0 if map_only else partitions)
    reads_results = 0 if map_only else a["reduce_reads_map_results"]
    work_objects = phases + len(shuffle_sizes) + n_tasks + result_objects
    requests = [
        S3Requests("input LIST (planning)", "put", count_list_requests(plan, input_prefixes)),
        S3Requests("task manifest PUT", "put", phases),
        S3Requests("shuffle PUT (one object per map task)", "put", shuffle_puts),
        S3Requests("output PUT", "put", output_puts),
        S3Requests("task result PUT", "put", n_tasks * retry),
        S3Requests("ResultWriter PUT", "put", result_objects),
        S3Requests("commit manifest PUT (_SUCCESS)", "put", 1),
        S3Requests("result LIST (reduce tasks, commit)", "put",
                   partitions * reads_results * math.ceil(n_map / LIST_PAGE)
                   + phases * math.ceil(n_tasks / LIST_PAGE)),
        S3Requests("output LIST (preflight, commit check)", "put", 2),
        S3Requests("cleanup LIST", "put", math.ceil(work_objects / LIST_PAGE)),
        S3Requests("input GET (ranged, + read-ahead)",
                   "get", (input_gets + a["readahead_gets_per_split"] * readahead) * retry),
        S3Requests("task manifest GET (ItemReader)", "get", phases),
        S3Requests("shuffle ranged GET (map tasks x partitions)", "get", shuffle_gets * retry),
        S3Requests("map result GET (reduce tasks)", "get",
                   n_map * partitions * reads_results * retry),
        S3Requests("task result GET (commit)", "get", n_tasks),
    ]

    # Shuffle storage: held from mid-map until the commit has finished and cleaned up.
    held_s = timing.map.phase_s / 2 + (timing.reduce.phase_s if timing.reduce else 0.0)
    held_s += timing.commit_s
    storage = sum(shuffle_sizes) / GIB * (held_s / 3600) / a["hours_per_month"]

    invocations = sum(fn.requests for fn in lambdas)
    return Usage(
        lambdas=tuple(lambdas),
        sfn_transitions=transitions,
        sfn_express_requests=express_requests,
        sfn_express_gb_s=express_gb_s,
        s3_requests=tuple(requests),
        s3_storage_gb_month=storage,
        log_bytes=invocations * a["log_bytes_per_invocation"],
    )
