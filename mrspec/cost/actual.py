"""The actual cost of a finished run, priced with the same data as the estimate.

The apply driver gathers what AWS measured (each invocation's duration from the task
results or the REPORT lines, the S3 requests the tasks counted, the state transitions
and EXPRESS child durations from the execution history) into a :class:`RunMeasurements`;
:func:`actual_cost` turns it into the same :class:`~mrspec.cost.usage.CostBreakdown` the
estimate has, so the run summary can put the two side by side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mrspec.cost.assumptions import Assumptions, default_assumptions
from mrspec.cost.model import EXPRESS_DURATION_STEP_MS, EXPRESS_MEMORY_STEP_MB
from mrspec.cost.phases import LIST_PAGE, objects_put_requests, split_get_requests
from mrspec.cost.pricing import PriceBook
from mrspec.cost.stack import StackFacts
from mrspec.cost.usage import CostBreakdown, LambdaUsage, S3Requests, Usage, price_usage
from mrspec.plan.model import JobPlan
from mrspec.runtime.reducetask import read_window


@dataclass(frozen=True)
class RunMeasurements:
    # logical function name -> each invocation's duration in ms (retries included)
    invocation_ms: Mapping[str, Sequence[float]]
    # logical function name -> each INIT phase's duration in ms (cold starts)
    init_ms: Mapping[str, Sequence[float]] = field(default_factory=dict)
    # S3 requests by kind: (tier "put" | "get", count)
    s3_requests: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    sfn_transitions: int = 0  # STANDARD: parent + STANDARD children
    express_child_ms: Sequence[float] = ()  # each EXPRESS child's duration
    express_child_memory_mb: float = 64
    shuffle_byte_seconds: float = 0.0  # bytes held in S3 x seconds held
    log_bytes: float = 0.0
    hours_per_month: float = 730


def actual_usage(m: RunMeasurements, facts: StackFacts) -> Usage:
    lambdas = []
    for fn in facts.functions:
        runs = m.invocation_ms.get(fn.logical_name, ())
        inits = m.init_ms.get(fn.logical_name, ())
        if not runs and not inits:
            continue
        lambdas.append(
            LambdaUsage(
                function=fn.logical_name,
                architecture=fn.architecture,
                memory_mb=fn.memory_mb,
                ephemeral_storage_mb=fn.ephemeral_storage_mb,
                requests=len(runs),
                billed_ms=sum(math.ceil(ms) for ms in (*runs, *inits)),
            )
        )
    memory = max(
        EXPRESS_MEMORY_STEP_MB,
        math.ceil(m.express_child_memory_mb / EXPRESS_MEMORY_STEP_MB) * EXPRESS_MEMORY_STEP_MB,
    )
    step = EXPRESS_DURATION_STEP_MS
    express_ms = sum(math.ceil(ms / step) * step for ms in m.express_child_ms)
    tiers = {"put", "get"}
    requests = []
    for kind, (tier, count) in m.s3_requests.items():
        if tier not in tiers:
            raise ValueError(f"S3 request tier must be 'put' or 'get', not {tier!r}")
        requests.append(S3Requests(kind, "put" if tier == "put" else "get", count))
    return Usage(
        lambdas=tuple(lambdas),
        sfn_transitions=m.sfn_transitions,
        sfn_express_requests=len(m.express_child_ms),
        sfn_express_gb_s=express_ms / 1000 * memory / 1024,
        s3_requests=tuple(requests),
        s3_storage_gb_month=m.shuffle_byte_seconds / 1024**3 / 3600 / m.hours_per_month,
        log_bytes=m.log_bytes,
    )


def actual_cost(
    m: RunMeasurements, facts: StackFacts, book: PriceBook, monthly_gb_s_before: float = 0.0
) -> CostBreakdown:
    """The run's cost from measurements, with the estimate's price data and rules."""
    return price_usage(
        actual_usage(m, facts), book.region(facts.region), book.free_tier, monthly_gb_s_before
    )


def _attempt_ms(results: Sequence[Mapping[str, Any]]) -> list[float]:
    """Each invocation's ms from task results; earlier failed attempts of a task are
    counted at the duration of its final attempt (their own durations are not kept)."""
    out: list[float] = []
    for r in results:
        out += [float(r.get("seconds", 0.0)) * 1000] * max(1, int(r.get("attempt", 1)))
    return out


def measurements_from_results(
    plan: JobPlan,
    facts: StackFacts,
    map_results: Sequence[Mapping[str, Any]],
    reduce_results: Sequence[Mapping[str, Any]] = (),
    *,
    commit_ms: float,
    run_seconds: float,
    init_ms: Mapping[str, Sequence[float]] | None = None,
    sfn_transitions: int | None = None,
    express_child_ms: Sequence[float] | None = None,
    log_bytes: float | None = None,
    assumptions: Assumptions | None = None,
) -> RunMeasurements:
    """Measurements of a finished run from the runtime's task results.

    Durations come from each result's ``seconds``; S3 requests are counted with the
    estimate's rules over the real sizes (shuffle index segments, output parts);
    transitions, EXPRESS durations and log bytes follow the estimate's rules unless the
    caller measured them (``GetExecutionHistory``, CloudWatch REPORT lines).
    """
    a = assumptions or default_assumptions()
    map_ms, reduce_ms = _attempt_ms(map_results), _attempt_ms(reduce_results)
    invocations = {"map": map_ms, "reduce": reduce_ms, "commit": [commit_ms]}
    phases = [p for p in facts.phases if p.name == "map" or reduce_results]
    # Shuffle: one object per map task; segments from each result's partition index.
    segments = [
        int(length)
        for r in map_results
        for _offset, length in (r.get("shuffle") or {}).get("index", [])
    ]
    shuffle_sizes = [
        sum(int(length) for _o, length in (r.get("shuffle") or {}).get("index", []))
        for r in map_results if r.get("shuffle")
    ]
    outputs = [int(o.get("size", 0)) for r in (reduce_results or map_results)
               for o in r.get("outputs", [])]
    n_map, n_reduce = len(map_results), len(reduce_results)
    window = 0
    if reduce_results and facts.phase("reduce") is not None:
        window = read_window(facts.function("reduce").memory_mb, n_map)
    readahead = sum(1 for s in plan.splits if s.end < s.object_size and not s.compressed)
    n_tasks = n_map + n_reduce
    s3 = {
        "task manifest PUT": ("put", len(phases)),
        "shuffle PUT (one object per map task)":
            ("put", sum(objects_put_requests(x, a) for x in shuffle_sizes)),
        "output PUT": ("put", sum(objects_put_requests(x, a) for x in outputs)),
        "task result PUT": ("put", n_tasks),
        "ResultWriter PUT": ("put", int(a["result_writer_objects"]) * len(phases)),
        "commit manifest PUT (_SUCCESS)": ("put", 1),
        "result LIST (reduce tasks, commit)": (
            "put", n_reduce * math.ceil(n_map / LIST_PAGE)
            + len(phases) * math.ceil(n_tasks / LIST_PAGE)),
        "output LIST (preflight, commit check)": ("put", 2),
        "input GET (ranged, + read-ahead)": (
            "get", sum(split_get_requests(s.start, s.end, s.compressed) for s in plan.splits)
            + int(a["readahead_gets_per_split"]) * readahead),
        "task manifest GET (ItemReader)": ("get", len(phases)),
        "shuffle ranged GET (map tasks x partitions)": (
            "get", sum(math.ceil(x / window) for x in segments if x) if window else 0),
        "map result GET (reduce tasks)": ("get", n_map * n_reduce),
        "task result GET (commit)": ("get", n_tasks),
    }
    if sfn_transitions is None:
        sfn_transitions = facts.parent_transitions
        for phase, ms in (("map", map_ms), ("reduce", reduce_ms)):
            facts_phase = facts.phase(phase)
            if facts_phase is None or not ms:
                continue
            tasks = n_map if phase == "map" else n_reduce
            sfn_transitions += tasks
            if facts_phase.execution_type == "STANDARD":
                sfn_transitions += tasks * facts_phase.child_transitions + (len(ms) - tasks)
    if express_child_ms is None:
        express_child_ms = [
            ms for phase, runs in (("map", map_ms), ("reduce", reduce_ms))
            if (p := facts.phase(phase)) is not None and p.execution_type == "EXPRESS"
            for ms in runs
        ]
    total_invocations = len(map_ms) + len(reduce_ms) + 1
    return RunMeasurements(
        invocation_ms=invocations,
        init_ms=init_ms or {},
        s3_requests=s3,
        sfn_transitions=sfn_transitions,
        express_child_ms=express_child_ms,
        express_child_memory_mb=a["express_child_memory_mb"],
        shuffle_byte_seconds=sum(shuffle_sizes) * run_seconds,
        log_bytes=(total_invocations * a["log_bytes_per_invocation"]
                   if log_bytes is None else log_bytes),
        hours_per_month=a["hours_per_month"],
    )
