"""Per-phase predictions (``mrspec.cost.phases``) against arithmetic written out by hand.

Default assumptions used: map 0.1, merge 0.03 and reduce 0.05 vCPU-s/MiB, shuffle ratio
0.3, output ratio 0.1, S3 80 MiB/s read and 50 MiB/s write, 20 ms per request with 8 GETs
in flight, 0.3 s per task, commit 2 s, 16 MiB multipart parts, one read-ahead GET per
split ending inside its object, 100 MB of runtime memory, 32 KiB per parsed result.
The exchange: fan-in = memory MB / 4 (MiB) between 16 and 512 (docs/plan.md).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from mrspec.cost.assumptions import default_assumptions
from mrspec.cost.estimate import Estimate, estimate
from mrspec.cost.phases import PhasePrediction, predict_phases
from mrspec.cost.pricing import load_pricing
from mrspec.cost.stack import review_model
from mrspec.plan.model import JobPlan
from mrspec.plan.planner import make_plan
from mrspec.spec.model import (
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


def make_spec(
    *, split: int, bin_size: int, partitions: int, reduce_memory: int = 1024,
    map_memory: int = 1769, concurrency: int = 100, reduce_timeout: int = 300,
) -> JobSpec:
    return JobSpec(
        name="phases",
        input=InputSpec(prefixes=("s3://in-bucket/data/",), split_size=split),
        map=MapSpec(entrypoint="job:mapper", memory_mb=map_memory, timeout_s=180,
                    bin_size=bin_size),
        reduce=ReduceSpec("job:reducer", partitions=partitions, memory_mb=reduce_memory,
                          timeout_s=reduce_timeout),
        output=OutputSpec(prefix="s3://out-bucket/result/"),
        code=CodeSpec(path=Path("/nonexistent")),
        limits=Limits(max_concurrency=concurrency),
    )


def phases_of(spec: JobSpec, objects: list[ObjectInfo], **kwargs: int) -> dict[str, PhasePrediction]:
    plan = make_plan(spec, objects)
    facts = review_model(spec, plan)
    return {p.name: p for p in predict_phases(spec, plan, facts, default_assumptions(), **kwargs)}


def three_objects() -> tuple[JobSpec, list[ObjectInfo]]:
    spec = make_spec(split=32 * MIB, bin_size=64 * MIB, partitions=2)
    return spec, [ObjectInfo(f"s3://in-bucket/data/o{i}", 96 * MIB) for i in range(3)]


def test_map_reduce_and_commit_of_a_job_without_merges() -> None:
    spec, objects = three_objects()
    phases = phases_of(spec, objects)
    assert list(phases) == ["map", "reduce", "commit"]  # 5 map outputs <= fan-in 256

    # 9 splits of 32 MiB in bins of 64 MiB: 4 bins of 2 splits, 1 of 1. Bin 0 holds
    # o0 [0, 32) and [32, 64): 4 GETs of 8 MiB, then 5 from 32 MiB - 1, + 2 read-aheads.
    m = phases["map"]
    assert m.tasks == 5 and (m.timeout_s, m.memory_mb) == (180, 1769)
    assert m.per_task.get_requests == 11
    # Shuffle 64 * 0.3 = 19.2 MiB: a multipart upload of 2 parts (+ 2), + the result.
    assert (m.per_task.put_requests, m.per_task.list_requests) == (5, 0)
    # 0.3 + 6.4 CPU + 0.8 read + 0.384 write + 0.02 x (ceil(11 / 8) + 5 PUTs)
    assert m.per_task.seconds == pytest.approx(0.3 + 6.4 + 0.8 + 0.384 + 0.02 * 7)
    # Runtime 100 MB + buffer min(1,769 / 3, 64) + read windows min(8 x 8, 64) MiB.
    assert m.per_task.peak_memory_mb == pytest.approx(100 + 64 + 64)

    # Reduce at 1,024 MB: window min(8 MiB, 256 MiB / 5) = 8 MiB. Segments of partition
    # 0: four of 9.6 MiB (2 GETs each) and one of 4.8 MiB (1), + 5 head GETs; no LIST
    # (the plan names the objects).
    r = phases["reduce"]
    assert (r.tasks, r.memory_mb, r.timeout_s) == (2, 1024, 300)
    assert (r.per_task.get_requests, r.per_task.list_requests) == (14, 0)
    # Output 288 * 0.1 / 2 = 14.4 MiB: 1 PUT, + the result.
    assert r.per_task.put_requests == 2
    shuffle = 288 * 0.3 / 2  # MiB read by one reducer
    cpu = shuffle * 0.05 * 1769 / 1024  # 1,024 MB is 1,024 / 1,769 of a vCPU
    latency = 0.02 * (math.ceil(14 / 8) + 2)  # GETs 8 at a time, 2 PUTs, no LIST
    assert r.per_task.seconds == pytest.approx(0.3 + cpu + shuffle / 80 + 14.4 / 50 + latency)
    # each open input holds its 64 KiB head, and at most two windows of its segment,
    # never more than the segment: 5 x 1/16 + 4 x 9.6 + 4.8 MiB
    assert r.per_task.peak_memory_mb == pytest.approx(100 + 5 / 16 + 4 * 9.6 + 4.8 + 14.4)

    # Commit: 5 map + 2 reduce results, by key; LISTs: the failure records and the
    # cleanup (fewer than 1,000 work objects); PUTs: _SUCCESS and one DeleteObjects.
    c = phases["commit"]
    assert (c.per_task.get_requests, c.per_task.put_requests, c.per_task.list_requests) == (7, 2, 2)
    assert c.per_task.seconds == pytest.approx(2 + 0.02 * (1 + 2 + 2))
    assert (c.timeout_s, c.memory_mb) == (300, 512)
    assert c.per_task.peak_memory_mb == pytest.approx(100 + 7 * 32 / 1024)


def test_payload_is_the_map_item_as_the_child_gets_it() -> None:
    spec, objects = three_objects()
    plan = make_plan(spec, objects)
    phases = phases_of(spec, objects)
    largest_item = max(len(json.dumps(t.to_json(), separators=(",", ":"))) for t in plan.map_tasks)
    # The item plus the ItemSelector's run input and the invoke's phase/work/attempt.
    payload = phases["map"].per_task.payload_bytes
    assert largest_item < payload < largest_item + 600
    assert phases["reduce"].per_task.payload_bytes < 600


def hundred_small_map_tasks(reduce_memory: int = 128) -> tuple[JobSpec, list[ObjectInfo]]:
    spec = make_spec(split=MIB, bin_size=MIB, partitions=4, reduce_memory=reduce_memory)
    return spec, [ObjectInfo(f"s3://in-bucket/data/o{i:03d}", MIB) for i in range(100)]


def test_a_merge_level_when_map_outputs_pass_the_fan_in() -> None:
    spec, objects = hundred_small_map_tasks()
    phases = phases_of(spec, objects)
    # Fan-in at 128 MB: max(16, 128 / 4) = 32 < 100 map outputs: ceil(100 / 32) = 4 merge
    # tasks of 25 outputs of 0.3 MiB each; the reducers then read 4 objects.
    assert list(phases) == ["map", "merge-1", "reduce", "commit"]
    g = phases["merge-1"]
    assert (g.tasks, g.memory_mb, g.timeout_s) == (4, 128, 300)
    # Window 128 MiB / 4 / 25 = 1,342,177 bytes: one GET per output, + its result GET.
    assert g.per_task.get_requests == 25 * 2
    assert g.per_task.put_requests == 2  # 7.5 MiB in one PUT, + the result
    cpu = 7.5 * 0.03 * 1769 / 128
    latency = 0.02 * (math.ceil(50 / 8) + 2)
    assert g.per_task.seconds == pytest.approx(0.3 + cpu + 7.5 / 80 + 7.5 / 50 + latency)
    # each input holds its 64 KiB head and its 0.3 MiB (less than two windows), and the
    # 7.5 MiB being written
    assert g.per_task.peak_memory_mb == pytest.approx(100 + 25 / 16 + 25 * 0.3 + 7.5)

    r = phases["reduce"]
    assert r.per_task.get_requests == 4 * 2  # 1.875 MiB segment in one window + result
    # The commit reads the merge tasks' results (they carry their groups') and the reducers'.
    assert phases["commit"].per_task.get_requests == 4 + 4


def test_without_merges_every_reducer_reads_every_map_output() -> None:
    spec, objects = hundred_small_map_tasks()
    phases = phases_of(spec, objects, fan_in=100)
    assert list(phases) == ["map", "reduce", "commit"]
    # 100 segments of 0.075 MiB in windows of max(64 KiB, 32 MiB / 100): 1 GET + 1 result.
    assert phases["reduce"].per_task.get_requests == 200
    assert phases["commit"].per_task.get_requests == 100 + 4


def estimate_of(spec: JobSpec, plan: JobPlan, **values: float) -> Estimate:
    model = review_model(spec, plan)
    a = default_assumptions().with_values(values, "override")
    return estimate(spec, plan, model, load_pricing(), a)


def test_json_phases_time_and_cost_include_the_merge_level() -> None:
    spec, objects = hundred_small_map_tasks()
    plan = make_plan(spec, objects)
    e = estimate_of(spec, plan)
    doc = e.to_json()
    assert [p["name"] for p in doc["phases"]] == ["map", "merge-1", "reduce", "commit"]
    merge = doc["phases"][1]
    assert merge["tasks"] == 4 and merge["per_task"]["get_requests"] == 50
    assert set(merge["per_task"]) == {"get_requests", "put_requests", "list_requests",
                                      "seconds", "peak_memory_mb", "payload_bytes"}
    assert [m["tasks"] for m in doc["time"]["merge"]] == [4]
    lambdas = {ln["item"]: ln["quantity"] for ln in doc["cost"]["lines"]
               if ln["service"] == "Lambda"}
    assert lambdas["merge requests"] == 4
    s3 = {ln["item"]: ln["quantity"] for ln in doc["cost"]["lines"] if ln["service"] == "S3"}
    assert s3["exchange GET (merge tasks: heads and windows)"] == 4 * 50
    assert s3["merged object PUT (merge tasks)"] == 4
    # Reducers read 4 merged objects: 1 segment GET + 1 result GET each, 4 partitions.
    assert s3["segment GET (reduce tasks)"] == 4 * 4
    assert s3["exchange head GET (reduce tasks)"] == 4 * 4
    assert doc["time"]["total_s"] == pytest.approx(
        e.timing.driver_s + e.timing.map.phase_s + e.timing.merge[0].phase_s
        + e.timing.reduce.phase_s + e.timing.commit_s,  # type: ignore[union-attr]
        abs=1e-3,  # the JSON rounds to ms
    )


def test_latency_and_reads_in_flight_change_the_task_time_by_hand() -> None:
    spec, objects = three_objects()
    plan = make_plan(spec, objects)
    slow = estimate_of(spec, plan, s3_request_latency_s=0.1, s3_reads_in_flight=1)
    none = estimate_of(spec, plan, s3_request_latency_s=0.0)
    # Map task 0: 11 GETs one at a time + 5 PUTs at 100 ms each.
    gap = slow.predictions[0].per_task.seconds - none.predictions[0].per_task.seconds
    assert gap == pytest.approx(0.1 * (11 + 5))


def test_a_comparison_shows_merge_tasks_and_failed_limit_checks() -> None:
    from mrspec.cost.compare import compare

    spec, objects = hundred_small_map_tasks(reduce_memory=1769)  # fan-in 442: no merges
    small_spec, _ = hundred_small_map_tasks(reduce_memory=128)  # fan-in 32: 4 merge tasks
    tight = dataclasses.replace(small_spec, reduce=dataclasses.replace(
        small_spec.reduce, timeout_s=1))  # type: ignore[arg-type]
    old = estimate_of(spec, make_plan(spec, objects))
    new = estimate_of(tight, make_plan(tight, objects))
    deltas = {d.what: d for d in compare(old, new, "old", "new").deltas}
    assert (deltas["merge tasks"].old, deltas["merge tasks"].new) == (0, 4)
    failed = deltas["AWS limit checks failed"]
    assert failed.old == 0 and failed.new == len(new.failed_limits) >= 2  # merge, reduce time
