"""The per-phase predictions against an emulated run's measured S3 requests.

The run is tests/test_emulated_s3_requests.py's word count (4 map tasks, fewer than the
fan-in, so no merge phase: the exchange is the same today and after the merge phases
land). Every S3 call is tagged with the invocation that made it; the largest task of
each phase must make the requests ``predict_phases`` says, within the empty segments
the runtime skips.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from test_emulated_s3_requests import MAP_TASKS, PUT_OPERATIONS, _job, _measure

from mrspec.cost.assumptions import default_assumptions
from mrspec.cost.phases import predict_phases
from mrspec.cost.stack import review_model
from mrspec.plan.planner import plan_job
from mrspec.spec.loader import load_spec

LISTS = {"ListObjectsV2", "ListObjects"}


@pytest.mark.slow
def test_predicted_requests_per_task_match_the_emulated_run(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measured = _measure(emulated_aws, tmp_path, partitions=2)
    spec = load_spec(_job(tmp_path / "plan", 2))
    plan = plan_job(spec)
    predicted = {p.name: p.per_task for p in predict_phases(
        spec, plan, review_model(spec, plan), default_assumptions())}
    assert list(predicted) == ["map", "reduce", "commit"] and len(plan.map_tasks) == MAP_TASKS

    def largest(phase: str, ops: set[str]) -> int:
        return max(sum(c[op] for op in ops) for c in measured[phase])

    with capsys.disabled():
        for phase in ("map", "reduce", "commit"):
            p = predicted[phase]
            print(f"\n{phase}: GET {p.get_requests} predicted, {largest(phase, {'GetObject'})} "
                  f"measured; PUT {p.put_requests} / {largest(phase, PUT_OPERATIONS - LISTS)}; "
                  f"LIST {p.list_requests} / {largest(phase, LISTS)}")
    # Map: its split's ranged GETs (+ read-ahead), the shuffle object and its result.
    assert predicted["map"].put_requests == largest("map", PUT_OPERATIONS - LISTS)
    assert predicted["map"].get_requests >= largest("map", {"GetObject"}) >= 1
    # Reduce: one GET per map output, its head (these objects are smaller than the first
    # read, so the head brings the segment along); nothing is listed.
    assert largest("reduce", {"GetObject"}) == predicted["reduce"].get_requests == MAP_TASKS
    assert predicted["reduce"].put_requests == largest("reduce", PUT_OPERATIONS - LISTS)
    assert predicted["reduce"].list_requests == largest("reduce", LISTS)
    # Commit: every map and reduce result by key, and one listing for the cleanup.
    assert predicted["commit"].get_requests == largest("commit", {"GetObject"})
    assert predicted["commit"].list_requests == largest("commit", LISTS)
