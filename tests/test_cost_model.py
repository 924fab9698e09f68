"""The cost and time model against figures computed by hand.

Each fixture writes out its arithmetic from the published prices (us-east-1, see
mrspec/cost/pricing.json) and the default assumptions (docs/plan.md), without calling
the model's functions; the model must agree line by line and to the cent in total.

Default assumptions used below: map 0.1 vCPU-s/MiB, reduce 0.05 vCPU-s/MiB, shuffle
ratio 0.3, output ratio 0.1, S3 read 80 MiB/s and write 50 MiB/s, 0.3 s overhead per
task, 1 s cold start (billed), commit 2 s, no retries, account concurrency 1,000, child
start 0.1 s per wave, 2 s per phase, driver 5 s, 1,024 log bytes per invocation,
EXPRESS children billed at 64 MB, 16 MiB multipart parts, one read-ahead GET per split
that ends inside its object, 2 ResultWriter objects per phase, reduce tasks read every
map result object, 730 hours a month. The fixtures set the per-request latency
(``s3_request_latency_s``) to 0, so their arithmetic is the bandwidth and CPU terms;
tests/test_cost_phases.py checks the latency term and the per-phase figures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

import pytest

from mrspec.aws.model import StackModel
from mrspec.cost.assumptions import default_assumptions
from mrspec.cost.estimate import Estimate, estimate
from mrspec.cost.pricing import load_pricing
from mrspec.cost.stack import resource_lines, review_model
from mrspec.plan.model import JobPlan
from mrspec.plan.planner import make_plan
from mrspec.spec.model import (
    AwsSpec,
    CodeSpec,
    InputSpec,
    JobSpec,
    Limits,
    MapSpec,
    OutputSpec,
    ReduceSpec,
)
from mrspec.storage import ObjectInfo

MIB = 1024**2
GIB = 1024**3

# us-east-1 prices, per unit
LAMBDA_REQUEST = 0.20 / 1e6
X86_GB_S = 0.0000166667
ARM_GB_S = 0.0000133334
EPHEMERAL_GB_S = 0.0000000309
TRANSITION = 0.025 / 1000
EXPRESS_REQUEST = 1.00 / 1e6
EXPRESS_GB_S = 0.00001667
S3_PUT = 0.005 / 1000
S3_GET = 0.0004 / 1000
S3_GB_MONTH = 0.023
LOGS_GB = 0.50


def make_spec(
    *,
    arch: str,
    split: int,
    bin_size: int,
    map_memory: int,
    map_timeout: int,
    partitions: int | None,
    reduce_memory: int = 1769,
    reduce_timeout: int = 300,
    concurrency: int = 100,
    attempts: int = 3,
) -> JobSpec:
    return JobSpec(
        name="fixture",
        input=InputSpec(prefixes=("s3://in-bucket/data/",), split_size=split),
        map=MapSpec(entrypoint="job:mapper", memory_mb=map_memory, timeout_s=map_timeout,
                    bin_size=bin_size),
        reduce=(ReduceSpec("job:reducer", partitions=partitions, memory_mb=reduce_memory,
                           timeout_s=reduce_timeout) if partitions else None),
        output=OutputSpec(prefix="s3://out-bucket/result/"),
        code=CodeSpec(path=Path("/nonexistent")),
        limits=Limits(max_concurrency=concurrency, max_attempts=attempts),
        aws=AwsSpec(region="us-east-1", architecture=arch),  # type: ignore[arg-type]
    )


class FunctionFacts(NamedTuple):
    logical_name: str
    memory_mb: int
    timeout_s: int
    architecture: str
    ephemeral_storage_mb: int = 512


class PhaseFacts(NamedTuple):
    name: str
    function: str
    execution_type: str
    max_concurrency: int
    child_transitions: int


class StackFacts(NamedTuple):
    """What a fixture's arithmetic assumes of the stack; ``lowered`` checks that
    mrspec.aws.lower builds exactly that, and the estimate reads the lowered StackModel."""

    region: str
    architecture: str
    functions: tuple[FunctionFacts, ...]
    phases: tuple[PhaseFacts, ...]
    parent_transitions: int


def lowered(spec: JobSpec, plan: JobPlan, stack: StackFacts) -> StackModel:
    model = review_model(spec, plan)
    assert model.state_machine.parent_transitions == stack.parent_transitions
    for f in stack.functions:
        got = model.function(f.logical_name)
        assert (got.memory_mb, got.architecture, got.ephemeral_storage_mb) == (
            f.memory_mb, f.architecture, f.ephemeral_storage_mb)
        assert not f.timeout_s or got.timeout_s == f.timeout_s
    assert [(p.name, p.execution_type, p.max_concurrency, p.child_transitions)
            for p in model.phases] == [
        (p.name, p.execution_type, p.max_concurrency, p.child_transitions) for p in stack.phases
    ]
    return model


def facts(
    arch: str,
    *,
    map_memory: int,
    map_eph: int,
    child: str,
    concurrency: int,
    partitions: int | None,
    reduce_memory: int = 1769,
    merge_levels: tuple[int, ...] = (),
) -> StackFacts:
    """The stack as mrspec.aws.lower builds it (checked in test_facts_match_lowering).

    ``merge_levels``: tasks per merge level; merge tasks get the reduce section's sizes."""
    functions = [FunctionFacts("map", map_memory, 0, arch, map_eph)]
    phases = [PhaseFacts("map", "map", child, concurrency, 1)]  # type: ignore[arg-type]
    if merge_levels:
        functions.append(FunctionFacts("merge", reduce_memory, 0, arch, 10240))
    for level, tasks in enumerate(merge_levels, start=1):
        phases.append(PhaseFacts(f"merge-{level}", "merge", child, min(concurrency, tasks), 1))  # type: ignore[arg-type]
    if partitions:
        functions.append(FunctionFacts("reduce", reduce_memory, 0, arch, 10240))
        phases.append(PhaseFacts("reduce", "reduce", child, min(concurrency, partitions), 1))  # type: ignore[arg-type]
    functions.append(FunctionFacts("commit", 512, 300, arch, 512))
    return StackFacts("us-east-1", arch, tuple(functions), tuple(phases),
                      parent_transitions=len(phases) + 1)


def with_timeouts(spec: JobSpec, stack: StackFacts) -> StackFacts:
    """The stack with the spec's timeouts (the warnings use them)."""
    timeouts = {"map": spec.map.timeout_s,
                "merge": spec.reduce.timeout_s if spec.reduce else 0,
                "reduce": spec.reduce.timeout_s if spec.reduce else 0}
    fixed = tuple(
        FunctionFacts(f.logical_name, f.memory_mb, timeouts.get(f.logical_name, f.timeout_s),
                      f.architecture, f.ephemeral_storage_mb)
        for f in stack.functions
    )
    return StackFacts(stack.region, stack.architecture, fixed, stack.phases,
                      stack.parent_transitions)


NO_LATENCY = {"s3_request_latency_s": 0.0}


def run(spec: JobSpec, objects: list[ObjectInfo], stack: StackFacts) -> Estimate:
    plan = make_plan(spec, objects)
    assumptions = default_assumptions().with_values(NO_LATENCY, "override")
    return estimate(spec, plan, lowered(spec, plan, with_timeouts(spec, stack)), load_pricing(),
                    assumptions)


def line(e: Estimate, item: str) -> float:
    matches = [ln for ln in e.cost.lines if ln.item == item]
    assert len(matches) == 1, item
    return matches[0].usd


def qty(e: Estimate, item: str) -> float:
    return next(ln.quantity for ln in e.cost.lines if ln.item == item)


def service(e: Estimate, name: str) -> float:
    return e.cost.by_service()[name]


# --------------------------------------------------------------------- fixture 1: x86


def fixture_x86() -> tuple[JobSpec, list[ObjectInfo], StackFacts]:
    spec = make_spec(arch="x86_64", split=64 * MIB, bin_size=128 * MIB, map_memory=1769,
                     map_timeout=180, partitions=16, reduce_memory=3538)
    objects = [ObjectInfo(f"s3://in-bucket/data/part-{i}", GIB) for i in range(10)]
    stack = facts("x86_64", map_memory=1769, map_eph=768, child="STANDARD", concurrency=100,
                  partitions=16, reduce_memory=3538)
    return spec, objects, stack


def test_x86_standard_children_with_reduce() -> None:
    e = run(*fixture_x86())
    # Work: 10 x 1 GiB = 10,240 MiB; 16 splits of 64 MiB per object; bins of 2 splits.
    assert (e.input_bytes, e.splits, e.map_tasks, e.reduce_tasks) == (10 * GIB, 160, 80, 16)
    # Map task (128 MiB at 1,769 MB = one vCPU):
    #   0.3 + 128*0.1 + 128/80 + (128*0.3)/50 = 0.3 + 12.8 + 1.6 + 0.768 = 15.468 s
    map_ms = 15468
    map_billed_ms = 80 * map_ms + 80 * 1000  # 80 cold starts (concurrency 100 >= 80 tasks)
    map_gb_s = map_billed_ms / 1000 * 1769 / 1024
    map_eph_gb_s = map_billed_ms / 1000 * (768 - 512) / 1024
    # Reduce task: 10,240*0.3/16 = 192 MiB shuffle, 64 MiB output, 3,538 MB (CPU capped at 1)
    #   0.3 + 192*0.05 + 192/80 + 64/50 = 0.3 + 9.6 + 2.4 + 1.28 = 13.58 s
    reduce_billed_ms = 16 * 13580 + 16 * 1000
    reduce_gb_s = reduce_billed_ms / 1000 * 3538 / 1024
    reduce_eph_gb_s = reduce_billed_ms / 1000 * (10240 - 512) / 1024
    commit_gb_s = (2000 + 1000) / 1000 * 512 / 1024
    assert qty(e, "map duration (1769 MB, x86_64)") == pytest.approx(map_gb_s)
    assert line(e, "map duration (1769 MB, x86_64)") == pytest.approx(map_gb_s * X86_GB_S)
    assert line(e, "reduce ephemeral storage above 512 MB") == pytest.approx(
        reduce_eph_gb_s * EPHEMERAL_GB_S
    )
    lambda_usd = (
        97 * LAMBDA_REQUEST
        + (map_gb_s + reduce_gb_s + commit_gb_s) * X86_GB_S
        + (map_eph_gb_s + reduce_eph_gb_s) * EPHEMERAL_GB_S
    )
    assert service(e, "Lambda") == pytest.approx(lambda_usd)
    # Step Functions: parent 3 + one per child started (96) + one per STANDARD child (96)
    assert qty(e, "STANDARD state transitions") == 195
    assert service(e, "Step Functions") == pytest.approx(195 * TRANSITION)
    # S3 PUT class: LIST 1, manifests 2, shuffle 80 x (38.4 MiB -> 3 parts + 2) = 400,
    # output 16 x (64 MiB -> 4 parts + 2) = 96, task results 96, ResultWriter 4, _SUCCESS 1,
    # the commit's LIST of failure records 1 (nobody lists results: the plan names every
    # object and result), output LISTs 2, cleanup LIST 1.
    puts = 1 + 2 + 400 + 96 + 96 + 4 + 1 + 1 + 2 + 1
    # GET class: input in 8 MiB ranged reads: per object the first split 8 GETs, the 15
    # others read from start - 1, so 64 MiB + 1 byte = 9 GETs: 10 x (8 + 135) = 1,430,
    # + 150 read-aheads; manifests 2; shuffle 80 x 16 segments of 2.4 MiB, each one GET
    # (window min(8 MiB, 3,538 MB / 4 / 80 runs) = 8 MiB); the heads of the map outputs read by
    # reducers 80 x 16; results read by the commit 96.
    gets = 1430 + 150 + 2 + 1280 + 1280 + 96
    assert qty(e, "shuffle PUT (one object per map task)") == 400
    assert qty(e, "input GET (ranged, + read-ahead)") == 1580
    # Time: map 2 + 1 + (0.1 + 15.468); reduce 2 + 1 + (0.1 + 13.58); commit 3; driver 5.
    map_phase, reduce_phase = 18.568, 16.68
    assert e.timing.total_s == pytest.approx(5 + map_phase + reduce_phase + 3)
    # Shuffle storage: 80 x 38.4 MiB = 3 GiB held for map/2 + reduce + commit.
    storage = 3 * (map_phase / 2 + reduce_phase + 3) / 3600 / 730
    s3_usd = puts * S3_PUT + gets * S3_GET + storage * S3_GB_MONTH
    assert service(e, "S3") == pytest.approx(s3_usd)
    logs_usd = 97 * 1024 / GIB * LOGS_GB
    total = lambda_usd + 195 * TRANSITION + s3_usd + logs_usd
    assert abs(e.cost.total_usd - total) < 0.005
    # By hand: Lambda 3,083.4 GB-s x $0.0000166667 = $0.0514; transitions $0.0049;
    # S3 621 PUTs $0.0031 + 4,238 GETs $0.0017 -> about six cents.
    assert round(e.cost.total_usd, 2) == round(total, 2) == 0.06
    assert e.to_json()["cost"]["total_usd"] == pytest.approx(total, abs=1e-6)


# ------------------------------------------------------------ fixture 2: arm64, EXPRESS


def fixture_arm_express() -> tuple[JobSpec, list[ObjectInfo], StackFacts]:
    spec = make_spec(arch="arm64", split=32 * MIB, bin_size=64 * MIB, map_memory=1024,
                     map_timeout=40, partitions=4, reduce_timeout=40, attempts=2)
    objects = [ObjectInfo(f"s3://in-bucket/data/f{i:02d}", 128 * MIB) for i in range(8)]
    stack = facts("arm64", map_memory=1024, map_eph=640, child="EXPRESS", concurrency=100,
                  partitions=4)
    return spec, objects, stack


def test_arm64_express_children() -> None:
    e = run(*fixture_arm_express())
    assert (e.splits, e.map_tasks, e.reduce_tasks) == (32, 16, 4)
    # Map task: 64 MiB at 1,024 MB = 1024/1769 of a vCPU:
    #   0.3 + 64*0.1*1769/1024 + 64/80 + 19.2/50 = 0.3 + 11.05625 + 0.8 + 0.384 = 12.54025 s
    map_ms = math.ceil(12540.25)  # 12,541 ms billed (1 ms increments)
    map_billed = 16 * map_ms + 16 * 1000
    map_gb_s = map_billed / 1000 * 1024 / 1024
    map_eph = map_billed / 1000 * 128 / 1024
    # Reduce: 1,024*0.3/4 = 76.8 MiB shuffle, 25.6 MiB output:
    #   0.3 + 3.84 + 0.96 + 0.512 = 5.612 s
    reduce_billed = 4 * 5612 + 4 * 1000
    reduce_gb_s = reduce_billed / 1000 * 1769 / 1024
    reduce_eph = reduce_billed / 1000 * 9728 / 1024
    commit_gb_s = 3.0 * 0.5
    lambda_usd = (21 * LAMBDA_REQUEST + (map_gb_s + reduce_gb_s + commit_gb_s) * ARM_GB_S
                  + (map_eph + reduce_eph) * EPHEMERAL_GB_S)
    assert service(e, "Lambda") == pytest.approx(lambda_usd)
    # Step Functions: parent 3 + 20 children started; EXPRESS children: 20 requests and
    # durations rounded up to 100 ms at 64 MB: 16 x 12,600 ms + 4 x 5,700 ms = 224.4 s.
    express_gb_s = 224.4 * 64 / 1024
    assert qty(e, "STANDARD state transitions") == 23
    assert qty(e, "EXPRESS child duration") == pytest.approx(express_gb_s)
    sfn_usd = 23 * TRANSITION + 20 * EXPRESS_REQUEST + express_gb_s * EXPRESS_GB_S
    assert service(e, "Step Functions") == pytest.approx(sfn_usd)
    # S3: shuffle 19.2 MiB -> 2 parts + 2 = 4 PUTs x 16; output 25.6 MiB -> 4 PUTs x 4;
    # the commit's LIST of failure records 1 (nobody lists results).
    puts = 1 + 2 + 64 + 16 + 20 + 4 + 1 + 1 + 2 + 1
    # Input: per 128 MiB object 4 + 3 x 5 = 19 ranged GETs (8 MiB windows) + 3 read-aheads.
    gets = (8 * 19 + 24) + 2 + 64 + 64 + 20
    map_phase, reduce_phase = 2 + 1 + 0.1 + 12.54025, 2 + 1 + 0.1 + 5.612
    storage = 0.3 * (map_phase / 2 + reduce_phase + 3) / 3600 / 730  # 307.2 MiB = 0.3 GiB
    s3_usd = puts * S3_PUT + gets * S3_GET + storage * S3_GB_MONTH
    assert service(e, "S3") == pytest.approx(s3_usd)
    total = lambda_usd + sfn_usd + s3_usd + 21 * 1024 / GIB * LOGS_GB
    assert abs(e.cost.total_usd - total) < 0.005
    assert e.timing.total_s == pytest.approx(5 + map_phase + reduce_phase + 3)


# ---------------------------------------------------------------- fixture 3: map-only


def test_map_only_job() -> None:
    spec = make_spec(arch="x86_64", split=64 * MIB, bin_size=128 * MIB, map_memory=1769,
                     map_timeout=180, partitions=None)
    objects = [ObjectInfo("s3://in-bucket/data/a", 100 * MIB),
               ObjectInfo("s3://in-bucket/data/b", 50 * MIB),
               ObjectInfo("s3://in-bucket/data/c", 10 * MIB)]
    stack = facts("x86_64", map_memory=1769, map_eph=768, child="STANDARD", concurrency=100,
                  partitions=None)
    e = run(spec, objects, stack)
    # Splits a[0,64) a[64,100) b c; next-fit bins of 128 MiB: (a: 100 MiB), (b+c: 60 MiB)
    assert (e.splits, e.map_tasks, e.reduce_tasks, e.partitions) == (4, 2, 0, 0)
    # Map-only tasks write output (ratio 0.1) instead of shuffle:
    #   100 MiB: 0.3 + 10 + 1.25 + 10/50 = 11.75 s;  60 MiB: 0.3 + 6 + 0.75 + 6/50 = 7.17 s
    billed = 11750 + 7170 + 2 * 1000
    lambda_usd = (3 * LAMBDA_REQUEST + (billed / 1000 * 1769 / 1024 + 1.5) * X86_GB_S
                  + billed / 1000 * 256 / 1024 * EPHEMERAL_GB_S)
    assert service(e, "Lambda") == pytest.approx(lambda_usd)
    # Transitions: parent 2 (map + commit) + 2 children started + 2 STANDARD children.
    assert qty(e, "STANDARD state transitions") == 6
    # PUTs: LIST 1, manifest 1, outputs 2 (10 MiB and 6 MiB), results 2, ResultWriter 2,
    # _SUCCESS 1, failure records LIST 1 (commit), output LISTs 2, cleanup LIST 1. GETs: input
    # a[0,64) 8 + a[64,100) from byte 64 MiB - 1: 5 + b 7 + c 2, 1 read-ahead (a's first
    # split); manifest 1; results read by the commit 2.
    puts, gets = 1 + 1 + 2 + 2 + 2 + 1 + 1 + 2 + 1, (8 + 5 + 7 + 2 + 1) + 1 + 2
    assert qty(e, "shuffle PUT (one object per map task)") == 0
    assert qty(e, "segment GET (reduce tasks)") == 0
    assert qty(e, "shuffle storage (prorated)") == 0
    s3_usd = puts * S3_PUT + gets * S3_GET
    assert service(e, "S3") == pytest.approx(s3_usd)
    total = lambda_usd + 6 * TRANSITION + s3_usd + 3 * 1024 / GIB * LOGS_GB
    assert abs(e.cost.total_usd - total) < 0.005
    assert e.timing.reduce is None
    assert e.timing.total_s == pytest.approx(5 + (2 + 1 + 0.1 + 11.75) + 3)


# ------------------------------------------------------ fixture 4: large, many waves


def test_large_input_many_waves() -> None:
    spec = make_spec(arch="x86_64", split=64 * MIB, bin_size=128 * MIB, map_memory=1769,
                     map_timeout=180, partitions=100, concurrency=2000)
    objects = [ObjectInfo(f"s3://in-bucket/data/o{i:05d}", 100 * MIB) for i in range(10_000)]
    stack = facts("x86_64", map_memory=1769, map_eph=768, child="STANDARD", concurrency=2000,
                  partitions=100, merge_levels=(506,))
    e = run(spec, objects, stack)
    # Each object: splits of 64 + 36 MiB, one bin of 100 MiB -> 10,000 map tasks.
    assert (e.splits, e.map_tasks) == (20_000, 10_000)
    # Concurrency min(2,000, account 1,000) -> 10 waves; 1,000 cold starts.
    assert e.timing.map.waves == 10 and e.timing.map.concurrency == 1000
    # Map task: 0.3 + 10 + 1.25 + 30/50 = 12.15 s
    map_billed = 10_000 * 12150 + 1000 * 1000
    # Fan-in at 1,769 MB: 1,769 MiB / 4 / 1 MiB = 442 objects; 10,000 map outputs > 442 ->
    # one merge level of ceil(10,000 / 442) = 23 groups: 18 of 435 and 5 of 434 map
    # outputs of 30 MiB. A group covers 435 x 100 MiB of input, over the 2 GiB a merge
    # task may cover: its partitions are cut into ceil(43,500 / 2,048) = 22 ranges, 12 of
    # 5 partitions and 10 of 4, one task per (group, range): 506 tasks. A task of n
    # inputs and w partitions reads and writes n x 30 MiB x w / 100:
    #   0.3 + MiB x (0.03 + 1/80 + 1/50) s, all in one wave (506 cold starts).
    groups = [435] * 18 + [434] * 5
    widths = [5] * 12 + [4] * 10
    merges = [(n, w, 0.3 * n * w) for n in groups for w in widths]
    assert [m.tasks for m in e.timing.merge] == [len(merges)] == [506]
    merge_s = [0.3 + mib * (0.03 + 1 / 80 + 1 / 50) for _, _, mib in merges]
    merge_billed = sum(math.ceil(round(t * 1000, 6)) for t in merge_s) + 506 * 1000
    # Reduce: reads its partition's segment of the 23 objects of its range (one per group),
    # 3,000 MiB in all as before: 0.3 + 150 + 37.5 + 20 = 207.8 s; one wave.
    reduce_billed = 100 * 207800 + 100 * 1000
    gb_s = (map_billed + merge_billed + reduce_billed) / 1000 * 1769 / 1024 + 1.5
    eph = map_billed / 1000 * 256 / 1024 + (merge_billed + reduce_billed) / 1000 * 9728 / 1024
    invocations = 10_000 + 506 + 100 + 1
    lambda_usd = invocations * LAMBDA_REQUEST + gb_s * X86_GB_S + eph * EPHEMERAL_GB_S
    assert service(e, "Lambda") == pytest.approx(lambda_usd)
    # Parent: 3 + one Map state for the merge level; one transition per child + 1 each.
    transitions = 4 + 2 * (10_000 + 506 + 100)
    # PUTs: LIST 10, manifests 3, shuffle 10,000 x (30 MiB -> 2 parts + 2 = 4), merged
    # objects (MiB / 16 parts + 2 each), output 100 x (1,000 MiB -> 63 parts + 2 = 65),
    # results 10,606, ResultWriter 6, _SUCCESS 1, the commit's failure-records LIST 1,
    # output LISTs 2, cleanup ceil((3 + 10,000 + 506 + 10,606 + 6) / 1,000) = 22.
    merged_puts = sum(math.ceil(mib / 16) + 2 for _, _, mib in merges)
    puts = 10 + 3 + 40_000 + merged_puts + 6_500 + 10_606 + 6 + 1 + 1 + 2 + 22
    # GETs: input per object 8 + 5 ranged GETs + 1 read-ahead = 14 x 10,000; manifests 3;
    # merge: per input 1 head GET + its range's share (30 MiB x w / 100) in windows, each
    # run holding two: 1,769 MiB / 4 / n / 2 bytes; reduce: segment 435 (or 434) x 0.3
    # MiB in 8 MiB windows -> 17 x 23 objects x 100 reducers, + 23 head GETs each;
    # commit 506 merge + 100 reduce results.
    merge_gets = sum(
        n * (1 + math.ceil(30 * MIB * w / 100 / (1769 * MIB // 4 // n // 2))) for n, w, _ in merges
    )
    gets = 140_000 + 3 + merge_gets + 17 * 23 * 100 + 2_300 + 606
    map_phase = 2 + 1 + 10 * (0.1 + 12.15)
    merge_phase = 2 + 1 + 0.1 + max(merge_s)
    reduce_phase = 2 + 1 + 0.1 + 207.8
    # Two copies of the shuffle (map outputs, merged objects), held as long.
    storage = 2 * 300_000 / 1024 * (map_phase / 2 + merge_phase + reduce_phase + 3) / 3600 / 730
    s3_usd = puts * S3_PUT + gets * S3_GET + storage * S3_GB_MONTH
    assert service(e, "S3") == pytest.approx(s3_usd)
    total = lambda_usd + transitions * TRANSITION + s3_usd + invocations * 1024 / GIB * LOGS_GB
    assert abs(e.cost.total_usd - total) < 0.005
    assert round(e.cost.total_usd, 2) == round(total, 2)
    assert e.timing.total_s == pytest.approx(5 + map_phase + merge_phase + reduce_phase + 3)
    assert any("account's Lambda concurrency" in w for w in e.warnings)
    # The partition ranges keep every merge task (41 s at most) within its 300 s timeout.
    assert max(merge_s) < 42 and not any(w.startswith("merge-1 task time") for w in e.warnings)


# ------------------------------------------------------------------ tie to lowering


@pytest.mark.parametrize("fixture", [fixture_x86, fixture_arm_express])
def test_facts_match_lowering(fixture: object) -> None:
    """The hand-built stacks above are what mrspec.aws.lower produces for the specs."""
    spec, objects, manual = fixture()  # type: ignore[operator]
    model = lowered(spec, make_plan(spec, objects), manual)  # asserts they match
    assert {r.kind for r in resource_lines(model)} == {
        "bucket", "log_group", "role", "function", "state_machine"}


def test_free_tier_is_listed_apart_and_never_subtracted() -> None:
    e = run(*fixture_x86())
    free = {ln.item: ln for ln in e.cost.free_tier}
    assert free["free requests (1M/month)"].quantity == 97
    assert free["free state transitions"].quantity == 195
    # The total is the sum of the cost lines; the free tier is not taken off.
    assert e.cost.total_usd == pytest.approx(sum(ln.usd for ln in e.cost.lines))
    assert e.to_json()["free_tier"]["could_cover_usd"] > 0


def test_retries_add_invocations_and_transitions() -> None:
    spec, objects, stack = fixture_x86()
    plan = make_plan(spec, objects)
    a = default_assumptions().with_values({"retry_rate": 0.5}, "override")
    e = estimate(spec, plan, lowered(spec, plan, stack), load_pricing(), a)
    assert qty(e, "map requests") == 120  # 80 x 1.5
    # 3 + 96 started + 96 child transitions + 48 retry transitions
    assert qty(e, "STANDARD state transitions") == 3 + 96 + 96 + 48
    assert next(x for x in e.assumptions if x.name == "retry_rate").source == "override"


def test_warnings_for_timeouts_memory_and_payloads() -> None:
    spec, objects, stack = fixture_x86()  # map tasks of 15.468 s, map timeout 180 s
    stack = with_timeouts(spec, stack)
    plan = make_plan(spec, objects)
    slow = default_assumptions().with_values(
        {"map_cpu_s_per_mib": 1.5, "map_peak_memory_mb": 1700}, "override")
    # 0.3 + 128 * 1.5 + 1.6 + 0.768 = 194.668 s > 180 s
    e = estimate(spec, plan, lowered(spec, plan, stack), load_pricing(), slow)
    assert any("would run about 195 s, past its timeout of 180 s" in w for w in e.warnings)
    assert any("peaked at 1700 MB" in w and "near the 1769 MB cap" in w for w in e.warnings)
    # Near the timeout: 0.3 + 128 * 1.2 + 2.368 = 156.268 s > 0.8 * 180
    near = default_assumptions().with_values({"map_cpu_s_per_mib": 1.2}, "override")
    e = estimate(spec, plan, lowered(spec, plan, stack), load_pricing(), near)
    assert any("near its timeout of 180 s" in w for w in e.warnings)
    # A bin of 3,000 tiny splits: its full JSON passes the 256 KiB state payload limit, so
    # its item is a reference to a manifest shard, and nothing is near the limit.
    tiny = make_spec(arch="x86_64", split=10, bin_size=30_000, map_memory=1769,
                     map_timeout=180, partitions=None)
    objects = [ObjectInfo(f"s3://in-bucket/data/a-rather-long-object-name-{i:05d}", 10)
               for i in range(3000)]
    tiny_plan = make_plan(tiny, objects)
    assert len(json.dumps(tiny_plan.map_tasks[0].to_json())) > 262_144
    e = estimate(tiny, tiny_plan, review_model(tiny, tiny_plan), load_pricing(),
                 default_assumptions())
    assert not any("payload limit" in w for w in e.warnings)


def test_express_children_that_would_pass_five_minutes_are_flagged() -> None:
    spec, objects, stack = fixture_arm_express()
    stack = with_timeouts(spec, stack)
    slow = default_assumptions().with_values({"map_cpu_s_per_mib": 3.0}, "override")
    # 0.3 + 64 * 3.0 * 1769/1024 + 0.8 + 0.384 = 333.17 s
    plan = make_plan(spec, objects)
    e = estimate(spec, plan, lowered(spec, plan, stack), load_pricing(), slow)
    assert any("EXPRESS workflows (at most 300 s)" in w and "333 s" in w for w in e.warnings)


def test_partition_skew_lengthens_the_reduce_wave_not_the_cost() -> None:
    spec, objects, stack = fixture_x86()
    plan = make_plan(spec, objects)
    base = default_assumptions().with_values(NO_LATENCY, "override")
    model = lowered(spec, plan, stack)
    even = estimate(spec, plan, model, load_pricing(), base)
    skewed = estimate(spec, plan, model, load_pricing(),
                      base.with_values({"partition_skew": 3.0}, "override"))
    # Hot partition: 576 MiB shuffle, 192 MiB output: 0.3 + 28.8 + 7.2 + 3.84 = 40.14 s
    assert skewed.timing.reduce is not None and even.timing.reduce is not None
    assert skewed.timing.reduce.longest_task_s == pytest.approx(40.14)
    assert skewed.timing.reduce.phase_s == pytest.approx(2 + 1 + 0.1 + 40.14)
    assert skewed.cost.total_usd == pytest.approx(even.cost.total_usd, rel=1e-3)
