"""The scale harness on a tiny configuration: real task code over the observed store."""

from __future__ import annotations

import pytest

from mrspec.bench import scale
from mrspec.plan.exchange import fan_in
from mrspec.storage.memory import MemoryStorage


def test_tiny_configuration_counts_requests_per_task(capsys: pytest.CaptureFixture[str]) -> None:
    meter = scale.Meter()
    result = scale.run(70, 5, reduce_memory=128, reduce_sample=1, meter=meter, seed=1)
    assert result["correct"]  # the output equals a plain Counter over the inputs
    plan = result["plan"]
    fan = fan_in(128)
    assert [len(m.tasks) for m in plan.merge_levels] == [-(-70 // fan)]
    figures = result["figures"]
    assert len(figures["map"]) == 70 and len(figures["reduce"]) == 5
    merge_inputs = [m.inputs.count for m in plan.merge_levels[0].tasks]
    for task, inputs in zip(figures["merge-1"], merge_inputs, strict=True):
        # one GET per input head (these objects are smaller than the first read)
        assert task.requests["GET"] == inputs and task.requests["PUT"] == 2
    last = len(plan.merge_levels[-1].tasks)
    for task in figures["reduce"]:
        assert task.requests["GET"] == last and task.requests["PUT"] == 2
    (commit,) = figures["commit"]
    # the last level's results and the reducers' results, by key: never M x R
    assert commit.requests["GET"] == last + 5
    assert all(t.peak_bytes > 0 and t.cpu_s >= 0 for t in figures["map"])
    lines = scale.table(result, meter)
    assert "matches the reference" in lines[0]
    phases = [line.split()[0] for line in lines[2:] if not line.startswith("  predicted")]
    assert phases == ["map", "merge-1", "reduce", "commit"]


@pytest.mark.parametrize(("maps", "partitions", "memory"), [(70, 5, 128), (40, 9, 128), (12, 4, 1769)])
def test_plan_predicts_the_requests_the_harness_counts(maps: int, partitions: int, memory: int) -> None:
    # What `mrspec plan` predicts for the largest task of each phase (cost.phases, given
    # the ratios the run measured) against the requests the store counted, per phase.
    meter = scale.Meter()
    result = scale.run(maps, partitions, reduce_memory=memory, reduce_sample=1, meter=meter, seed=2)
    predicted = scale.predictions(result["spec"], result["plan"], result["manifest"], result["merged"])
    assert set(predicted) == {*result["figures"]} - {"unsampled"}
    for phase, tasks in result["figures"].items():
        if phase == "unsampled":
            continue
        counted = {
            "get_requests": max(t.requests["GET"] for t in tasks),
            "put_requests": max(t.requests["PUT"] + t.requests["DELETE"] for t in tasks),
            "list_requests": max(t.requests["LIST"] for t in tasks),
        }
        assert {k: predicted[phase][k] for k in counted} == counted, phase


def test_main_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert scale.main(["--maps", "20", "--partitions", "3", "--reduce-memory", "128"]) == 0
    out = capsys.readouterr().out
    assert "M=20 R=3" in out and "merge levels none" in out


def test_throttling_beyond_a_prefix_budget_is_counted() -> None:
    meter = scale.Meter(slowdown=5)
    for _ in range(8):
        meter("GET", f"{scale.WORK}/ab/shuffle/L0-00001")
    assert meter.throttled[""] >= 3
    assert meter.per_prefix[""]["work/ab"] == 8
    MemoryStorage.reset_shared()
