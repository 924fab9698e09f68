"""The cost and time model: pure functions from a ``JobPlan``, the stack's stack and the
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
from typing import TYPE_CHECKING

from mrspec.cost.assumptions import Assumptions
from mrspec.cost.phases import (
    LIST_PAGE,
    PhasePrediction,
    objects_put_requests,
    split_get_requests,
)
from mrspec.cost.stack import phase_of
from mrspec.cost.usage import (
    CLEANUP_LIST,
    COMMIT_RESULT_GET,
    FAILURE_LIST,
    GIB,
    INPUT_GET,
    INPUT_LIST,
    MANIFEST_GET,
    MANIFEST_PUT,
    MAP_RESULT_GET,
    MERGE_GET,
    MERGE_PUT,
    OUTPUT_LIST,
    OUTPUT_PUT,
    RESULT_PUT,
    RESULT_WRITER_PUT,
    SHUFFLE_GET,
    SHUFFLE_PUT,
    SUCCESS_PUT,
    LambdaUsage,
    S3Requests,
    Usage,
    s3_request,
)
from mrspec.plan.model import JobPlan

if TYPE_CHECKING:
    from mrspec.aws.model import Phase, StackModel

MIB = 1024**2
EXPRESS_MEMORY_STEP_MB = 64
EXPRESS_DURATION_STEP_MS = 100


def billed_ms(seconds: float) -> int:
    """Lambda bills each invocation in 1 ms increments."""
    return math.ceil(round(seconds * 1000, 6))


@dataclass(frozen=True)
class PhaseTiming:
    name: str  # "map" | "merge-<n>" | "reduce"; "steps[1].map" ... in a job with steps
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
    merge: tuple[PhaseTiming, ...] = ()  # one per merge level, between map and reduce
    # steps 1.. of a job with steps (their driver_s and commit_s are 0: one run, one commit)
    later: tuple[Timing, ...] = ()

    @property
    def total_s(self) -> float:
        reduce_s = self.reduce.phase_s if self.reduce else 0.0
        merge_s = sum(m.phase_s for m in self.merge)
        own = self.driver_s + self.map.phase_s + merge_s + reduce_s + self.commit_s
        return own + sum(step.total_s for step in self.later)

    def steps(self) -> tuple[Timing, ...]:
        """Each step's timing in order (this one is step 0)."""
        return (self, *self.later)

    def phase_timings(self) -> list[PhaseTiming]:
        """Every Distributed Map phase of every step, in run order."""
        return [pt for step in self.steps()
                for pt in (step.map, *step.merge, step.reduce) if pt is not None]

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "total_s": round(self.total_s, 3),
            "driver_s": round(self.driver_s, 3),
            "map": self.map.to_json(),
            "merge": [{"name": m.name, **m.to_json()} for m in self.merge],
            "reduce": self.reduce.to_json() if self.reduce else None,
            "commit_s": round(self.commit_s, 3),
        }
        if self.later:  # a job with steps: step 0 above, each later step's phases here
            out["steps"] = [
                {"map": {"name": t.map.name, **t.map.to_json()},
                 "merge": [{"name": m.name, **m.to_json()} for m in t.merge],
                 "reduce": {"name": t.reduce.name, **t.reduce.to_json()} if t.reduce else None}
                for t in self.later
            ]
        return out


def _phase_timing(
    name: str, phase: Phase, task_seconds: Sequence[float], a: Assumptions
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


def _dm(p: PhasePrediction) -> Phase:
    assert p.phase is not None, f"{p.name} is a Distributed Map phase"
    return p.phase


def estimate_timing(phases: Sequence[PhasePrediction], a: Assumptions) -> Timing:
    """Phase times from the per-phase predictions (``mrspec.cost.phases``): each step's
    phases in turn, then the one commit."""
    commit = next(p for p in phases if p.kind == "commit")
    steps = sorted({p.step for p in phases if p.kind != "commit"})
    timings = [_step_timing([p for p in phases if p.step == s and p.kind != "commit"], a)
               for s in steps]
    return Timing(
        map=timings[0].map,
        reduce=timings[0].reduce,
        commit_s=a["cold_start_s"] + commit.per_task.seconds,
        driver_s=a["driver_s"],
        merge=timings[0].merge,
        later=tuple(timings[1:]),
    )


def _step_timing(phases: Sequence[PhasePrediction], a: Assumptions) -> Timing:
    """One step's phase times (no driver, no commit)."""
    by_kind = {p.kind: p for p in phases}
    map_p = by_kind["map"]
    map_timing = _phase_timing(map_p.name, _dm(map_p), map_p.task_seconds, a)
    merges = tuple(
        _phase_timing(p.name, _dm(p), p.task_seconds, a) for p in phases if p.kind == "merge"
    )
    reduce_timing = None
    reduce_p = by_kind.get("reduce")
    if reduce_p is not None:
        mean_s, hot_s = reduce_p.task_seconds[0], reduce_p.per_task.seconds
        reduce_timing = _phase_timing(reduce_p.name, _dm(reduce_p), reduce_p.task_seconds, a)
        if hot_s > reduce_timing.longest_task_s:
            # The hot partition sets the length of its wave; cost still uses the mean.
            waves = reduce_timing.waves
            reduce_timing = PhaseTiming(
                reduce_p.name, reduce_p.tasks, reduce_timing.concurrency, waves,
                reduce_timing.task_seconds, hot_s,
                a["phase_overhead_s"] + a["cold_start_s"] + waves * a["child_start_s"]
                + (waves - 1) * mean_s + hot_s,
            )
    return Timing(map=map_timing, reduce=reduce_timing, commit_s=0.0, driver_s=0.0,
                  merge=merges)


def _lambda_usage(
    stack: StackModel, function: str, timings: Sequence[PhaseTiming], a: Assumptions,
    label: str = "",
) -> LambdaUsage:
    """Invocations and billed ms of one function over its phases (merge levels share one)."""
    fn = stack.function(function)
    retry = 1 + a["retry_rate"]
    environments = sum(min(t.tasks, t.concurrency) for t in timings)
    init_ms = environments * billed_ms(a["cold_start_s"])
    return LambdaUsage(
        function=label or fn.logical_name,
        architecture=fn.architecture,
        memory_mb=fn.memory_mb,
        ephemeral_storage_mb=fn.ephemeral_storage_mb,
        requests=sum(t.tasks for t in timings) * retry,
        billed_ms=sum(billed_ms(s) for t in timings for s in t.task_seconds) * retry + init_ms,
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


def _lambdas(
    stack: StackModel, phases: Sequence[PhasePrediction], timing: Timing, a: Assumptions
) -> list[LambdaUsage]:
    lambdas = []
    for step, st in enumerate(timing.steps()):
        by_kind = {p.kind: p for p in phases if p.step == step}
        lambdas.append(_lambda_usage(stack, by_kind["map"].function, [st.map], a))
        if st.merge:
            merge_fn = next(p.function for p in phases if p.kind == "merge" and p.step == step)
            # merge tasks run on the reduce section's sizes; their line is "merge" ("merge1")
            label = "merge" if step == 0 else f"merge{step}"
            lambdas.append(_lambda_usage(stack, merge_fn, st.merge, a, label=label))
        if st.reduce is not None:
            lambdas.append(_lambda_usage(stack, by_kind["reduce"].function, [st.reduce], a))
    by_kind = {p.kind: p for p in phases}
    commit = stack.function("commit")
    lambdas.append(
        LambdaUsage(
            function="commit",
            architecture=commit.architecture,
            memory_mb=commit.memory_mb,
            ephemeral_storage_mb=commit.ephemeral_storage_mb,
            requests=1,
            billed_ms=billed_ms(by_kind["commit"].per_task.seconds) + billed_ms(a["cold_start_s"]),
        )
    )
    return lambdas


def _step_functions(
    stack: StackModel, phases: Sequence[PhasePrediction], timing: Timing, a: Assumptions
) -> tuple[float, float, float]:
    """The parent's own transitions, one transition per child started (the Distributed
    Map rule), the transitions of STANDARD children (a retry is one more), and requests +
    GB-s of EXPRESS children."""
    timings = {pt.name: pt for pt in timing.phase_timings()}
    # A merge level is one more Map state (and its manifest) in the parent before
    # exchange's stack lists it; once it does, its transitions are in parent_transitions.
    merges_unlisted = sum(1 for p in phases if p.kind == "merge" and phase_of(stack, p.name) is None)
    transitions = float(stack.state_machine.parent_transitions + merges_unlisted)
    express_requests = express_gb_s = 0.0
    for p in phases:
        pt = timings.get(p.name)
        if pt is None or p.phase is None:
            continue
        transitions += pt.tasks
        if p.phase.execution_type == "STANDARD":
            transitions += pt.tasks * p.phase.child_transitions + pt.tasks * a["retry_rate"]
        else:
            express_requests += pt.tasks
            express_gb_s += _express_gb_s(pt, a)
    return transitions, express_requests, express_gb_s


def estimate_usage(
    plan: JobPlan,
    stack: StackModel,
    a: Assumptions,
    timing: Timing,
    input_prefixes: Sequence[str],
    phases: Sequence[PhasePrediction],
) -> Usage:
    from mrspec.cost.steps import step_plans

    lambdas = _lambdas(stack, phases, timing, a)
    transitions, express_requests, express_gb_s = _step_functions(stack, phases, timing, a)
    per_step: list[list[S3Requests]] = []
    storage = 0.0
    # each step as a one-step job (mrspec.cost.steps); the run's own requests once
    for step, (step_plan, st) in enumerate(zip(step_plans(plan, a), timing.steps(), strict=True)):
        map_only = step_plan.map_only or st.reduce is None
        mine = [p for p in phases if p.step == step or p.kind == "commit"]
        prefixes = input_prefixes if step == 0 else ()
        per_step.append(_s3_requests(step_plan, a, mine, prefixes, map_only))
        storage += _shuffle_storage(step_plan, st, timing.commit_s, a, map_only)
    requests = _combined(per_step)

    invocations = sum(fn.requests for fn in lambdas)
    return Usage(
        lambdas=tuple(lambdas),
        sfn_transitions=transitions,
        sfn_express_requests=express_requests,
        sfn_express_gb_s=express_gb_s,
        s3_requests=tuple(r for r in requests if r.count or not r.optional),
        s3_storage_gb_month=storage,
        log_bytes=invocations * a["log_bytes_per_invocation"],
    )


@dataclass(frozen=True)
class KeptFailed:
    """What keeping a failed run's resources costs while it waits for a resume
    (``apply --keep-failed``): only the working bucket's storage. Idle Lambda functions,
    roles and a state machine cost nothing; the bucket holds at most every exchange
    level's shuffle objects of every step and, in a job with steps, the intermediate
    parts of the steps before the last (the finished tasks' share, plus small results)."""

    bytes: float
    price_gb_month: float  # S3 Standard, the region's (pricing.json)
    hours_per_month: float

    @property
    def usd_per_day(self) -> float:
        return self.bytes / GIB * self.price_gb_month * 24 / self.hours_per_month

    def to_json(self) -> dict[str, float]:
        return {
            "bytes": round(self.bytes),
            "usd_per_day": float(f"{self.usd_per_day:.6g}"),
            "s3_storage_per_gb_month": self.price_gb_month,
        }


def kept_failed(plan: JobPlan, a: Assumptions, price_gb_month: float) -> KeptFailed:
    """The most a failed run keeps in its working bucket: each step's shuffle, written
    once by its map tasks and once more per merge level (a map-only step writes none),
    and the intermediate parts of every step before the last (the next step's input, as
    ``cost.steps.step_plans`` predicts it). The last step's parts leave the output when
    the run fails. A job without steps is the one-step case: its shuffle alone."""
    from mrspec.cost.steps import step_plans

    plans = step_plans(plan, a)
    held = 0.0
    for step, this in enumerate(plans):
        shuffle = 0.0 if this.map_only else this.input_bytes * a["shuffle_ratio"]
        held += shuffle * (1 + len(this.merge_levels))
        if step + 1 < len(plans):
            held += plans[step + 1].input_bytes
    return KeptFailed(held, price_gb_month, a["hours_per_month"])


def _shuffle_storage(plan: JobPlan, step: Timing, commit_s: float, a: Assumptions,
                     map_only: bool) -> float:
    """GB-months of a step's shuffle: held from mid-map until the commit has finished and
    cleaned up; every merge level writes the shuffle once more, held as long
    (conservative)."""
    shuffle_bytes = 0.0 if map_only else plan.input_bytes * a["shuffle_ratio"]
    copies = 1 + len(step.merge)
    held_s = step.map.phase_s / 2 + sum(m.phase_s for m in step.merge)
    held_s += (step.reduce.phase_s if step.reduce else 0.0) + commit_s
    return copies * shuffle_bytes / GIB * (held_s / 3600) / a["hours_per_month"]


# Requests a run makes once, whatever its steps: the last step's figure stands for them.
_ONCE_PER_RUN = (SUCCESS_PUT, FAILURE_LIST, OUTPUT_LIST, COMMIT_RESULT_GET)


def _combined(per_step: Sequence[list[S3Requests]]) -> list[S3Requests]:
    """Each kind's count over the steps (in the first step's order)."""
    if len(per_step) == 1:
        return per_step[0]
    out = []
    for first in per_step[0]:
        same = [r for step in per_step for r in step if r.kind == first.kind]
        count = same[-1].count if first.kind in _ONCE_PER_RUN else sum(r.count for r in same)
        out.append(S3Requests(first.kind, first.tier, count, first.optional))
    return out


def _s3_requests(
    plan: JobPlan, a: Assumptions, phases: Sequence[PhasePrediction],
    input_prefixes: Sequence[str], map_only: bool,
) -> list[S3Requests]:
    """Every kind of S3 request of a run (labels: ``mrspec.cost.usage.S3_REQUESTS``)."""
    retry = 1 + a["retry_rate"]
    merges = [p for p in phases if p.kind == "merge"]
    reduce_p = next((p for p in phases if p.kind == "reduce"), None)
    commit_p = next(p for p in phases if p.kind == "commit")
    n_map, partitions = len(plan.map_tasks), plan.partitions
    n_phases = 1 + len(merges) + (0 if reduce_p is None else 1)  # Distributed Map phases
    shuffle_sizes = [] if map_only else [t.input_bytes * a["shuffle_ratio"] for t in plan.map_tasks]
    if map_only:
        output_sizes = [t.input_bytes * a["output_ratio"] for t in plan.map_tasks]
    else:
        output_sizes = [plan.input_bytes * a["output_ratio"] / partitions] * partitions
    readahead = sum(1 for s in plan.splits if s.end < s.object_size and not s.compressed)
    input_gets = sum(split_get_requests(s.start, s.end, s.compressed) for s in plan.splits)
    reads_results = 0 if map_only else int(a["reduce_reads_map_results"])
    reduce_inputs = reduce_p.inputs if reduce_p is not None else 0  # objects each reducer reads
    shuffle_gets = 0.0
    if reduce_p is not None:
        mean = reduce_p.loads[0]
        shuffle_gets = (mean.get_requests - reads_results * reduce_inputs) * partitions
    shuffle_puts = sum(objects_put_requests(s, a) for s in shuffle_sizes) * retry
    output_puts = sum(objects_put_requests(s, a) for s in output_sizes) * retry
    merge_tasks = sum(p.tasks for p in merges)
    result_objects = a["result_writer_objects"] * n_phases
    n_tasks = n_map + merge_tasks + (0 if map_only else partitions)
    work_objects = n_phases + len(shuffle_sizes) + merge_tasks + n_tasks + result_objects
    return [
        s3_request(INPUT_LIST, count_list_requests(plan, input_prefixes)),
        s3_request(MANIFEST_PUT, n_phases),
        s3_request(SHUFFLE_PUT, shuffle_puts),
        s3_request(MERGE_PUT, sum(p.total("put_requests") - p.tasks for p in merges) * retry, True),
        s3_request(OUTPUT_PUT, output_puts),
        s3_request(RESULT_PUT, n_tasks * retry),
        s3_request(RESULT_WRITER_PUT, result_objects),
        s3_request(SUCCESS_PUT, 1),
        # nobody lists results (the plan names every object and result); the commit lists
        # the failure records, to refuse a run with one left
        s3_request(FAILURE_LIST, 1),
        s3_request(OUTPUT_LIST, 2),
        s3_request(CLEANUP_LIST, math.ceil(work_objects / LIST_PAGE)),
        s3_request(INPUT_GET, (input_gets + a["readahead_gets_per_split"] * readahead) * retry),
        s3_request(MANIFEST_GET, n_phases),
        s3_request(MERGE_GET, sum(p.total("get_requests") for p in merges) * retry, True),
        s3_request(SHUFFLE_GET, shuffle_gets * retry),
        s3_request(MAP_RESULT_GET, reduce_inputs * partitions * reads_results * retry),
        s3_request(COMMIT_RESULT_GET, commit_p.per_task.get_requests),
    ]
