"""``plan`` of a job with steps: each step's phases derived by hand from the one-step
formulas (docs/plan.md), one commit reading every step's results, and the estimate's
time, cost lines, limit checks and renderings per step.

Default assumptions as in tests/test_cost_phases.py (map 0.1 and reduce 0.05 vCPU-s/MiB,
shuffle ratio 0.3, output ratio 0.1, S3 80 MiB/s read and 50 MiB/s write, 20 ms per
request with 8 GETs in flight, 0.3 s per task, commit 2 s, 100 MB of runtime memory).
"""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
from test_cost_phases import MIB, estimate_of, three_objects

from mrspec.cost.assumptions import default_assumptions
from mrspec.cost.phases import predict_phases
from mrspec.cost.render import render_markdown
from mrspec.cost.stack import review_model
from mrspec.plan.planner import make_plan
from mrspec.spec.model import JobSpec, MapSpec, ReduceSpec, StepSpec
from mrspec.storage import ObjectInfo

# step 1 reads step 0's 2 parts: each a map task of its own, into 3 partitions at 1,024 MB
STEP_1 = StepSpec(MapSpec(entrypoint="job:again", memory_mb=1769, timeout_s=120),
                  ReduceSpec("job:reducer2", partitions=3, memory_mb=1024, timeout_s=200))


def two_steps() -> tuple[JobSpec, list[ObjectInfo]]:
    spec, objects = three_objects()
    return dataclasses.replace(spec, later_steps=(STEP_1,)), objects


def test_each_step_is_predicted_by_the_one_step_formulas() -> None:
    spec, objects = two_steps()
    plan = make_plan(spec, objects)
    model = review_model(spec, plan)
    phases = {p.name: p for p in predict_phases(spec, plan, model, default_assumptions())}
    assert list(phases) == ["steps[0].map", "steps[0].reduce", "steps[1].map",
                            "steps[1].reduce", "commit"]
    assert [phases[n].function for n in list(phases)[:4]] == ["map", "reduce", "map1", "reduce1"]

    # Step 0 is the one-step job of tests/test_cost_phases.py, figure for figure.
    alone, _ = three_objects()
    one = {p.name: p for p in predict_phases(alone, make_plan(alone, objects),
                                             review_model(alone, make_plan(alone, objects)),
                                             default_assumptions())}
    assert phases["steps[0].map"].per_task == one["map"].per_task
    assert phases["steps[0].reduce"].per_task == one["reduce"].per_task

    # Step 1's map tasks read step 0's output: 288 MiB x 0.1 = 28.8 MiB in 2 parts of
    # 14.4 MiB: 2 GETs of 8 MiB each (a whole object: no read-ahead); a shuffle of
    # 14.4 x 0.3 = 4.32 MiB in 1 PUT, + the result.
    part = int(28.8 * MIB / 2) / MIB
    m = phases["steps[1].map"]
    assert (m.tasks, m.timeout_s, m.memory_mb) == (2, 120, 1769)
    assert (m.per_task.get_requests, m.per_task.put_requests, m.per_task.list_requests) == (2, 2, 0)
    assert m.per_task.seconds == pytest.approx(
        0.3 + part * 0.1 + part / 80 + part * 0.3 / 50 + 0.02 * (math.ceil(2 / 8) + 2))
    # Runtime 100 MB + buffer min(1,769 / 3, 14.4) + read windows min(8 x 8, 14.4) MiB.
    assert m.per_task.peak_memory_mb == pytest.approx(100 + 2 * part)

    # Step 1's reducers at 1,024 MB read their segment (4.32 / 3 = 1.44 MiB) of 2 objects:
    # a head GET and one window GET each; output 28.8 x 0.1 / 3 = 0.96 MiB in 1 PUT.
    r = phases["steps[1].reduce"]
    assert (r.tasks, r.timeout_s, r.memory_mb) == (3, 200, 1024)
    assert (r.per_task.get_requests, r.per_task.put_requests) == (4, 2)
    read = 2 * part * 0.3 / 3
    written = 2 * part * 0.1 / 3
    assert r.per_task.seconds == pytest.approx(
        0.3 + read * 0.05 * 1769 / 1024 + read / 80 + written / 50
        + 0.02 * (math.ceil(4 / 8) + 2))

    # One commit: each step's totals, each result read once (step 0: 5 map + 2 reduce
    # results, step 1: 2 + 3; the last step's also make the output's manifest): 12 GETs.
    # Work objects: 2 x 5 + 2 + 2 x 2 + 3 + 4 manifests = 23: one DeleteObjects, one LIST.
    c = phases["commit"]
    assert (c.per_task.get_requests, c.per_task.put_requests, c.per_task.list_requests) == (12, 2, 2)
    assert c.per_task.seconds == pytest.approx(2 + 0.02 * (math.ceil(12 / 8) + 2 + 2))


def test_the_estimate_shows_every_steps_time_cost_and_limits() -> None:
    spec, objects = two_steps()
    plan = make_plan(spec, objects)
    e = estimate_of(spec, plan)
    doc = e.to_json()
    assert [p["name"] for p in doc["phases"]] == ["steps[0].map", "steps[0].reduce",
                                                  "steps[1].map", "steps[1].reduce", "commit"]
    later = doc["time"]["steps"]
    assert [(s["map"]["name"], s["map"]["tasks"], s["reduce"]["tasks"]) for s in later] == [
        ("steps[1].map", 2, 3)]
    # the run's time: driver, each step's phases in turn, one commit
    t = e.timing
    step1 = t.later[0]
    assert doc["time"]["total_s"] == pytest.approx(
        t.driver_s + t.map.phase_s + t.reduce.phase_s  # type: ignore[union-attr]
        + step1.map.phase_s + step1.reduce.phase_s + t.commit_s, abs=1e-3)  # type: ignore[union-attr]
    # Lambda: each step's functions billed apart, one commit invocation
    requests = {ln["item"]: ln["quantity"] for ln in doc["cost"]["lines"]
                if ln["service"] == "Lambda" and ln["item"].endswith("requests")}
    assert requests == {"map requests": 5, "reduce requests": 2, "map1 requests": 2,
                        "reduce1 requests": 3, "commit requests": 1}
    # the manifests of 4 Distributed Maps; one _SUCCESS
    s3 = {ln["item"]: ln["quantity"] for ln in doc["cost"]["lines"] if ln["service"] == "S3"}
    assert s3["task manifest PUT"] == 4
    assert s3["commit manifest PUT (_SUCCESS)"] == 1
    # limit checks per step's phases, against that step's timeouts
    checks = {c["name"]: c for c in doc["limits"]}
    assert checks["steps[1].map task time"]["limit"] == 120
    assert checks["steps[1].reduce task time"]["limit"] == 200
    markdown = render_markdown(e)
    for name in ("steps[0].map", "steps[1].reduce", "steps[1].map waves"):
        assert f"| {name}" in markdown


@pytest.mark.parametrize("width", [80, 120])
def test_the_terminal_plan_shows_each_phase_label_whole(width: int) -> None:
    # rich fits a table to the terminal by wrapping and cutting cells: the phase labels
    # ("steps[1].reduce") are how a reader finds a row, so they must survive 80 columns
    import io

    from rich.console import Console

    from mrspec.cost.render import render_terminal

    spec, objects = two_steps()
    e = estimate_of(spec, make_plan(spec, objects))
    out = io.StringIO()
    render_terminal(e, Console(file=out, width=width, color_system=None))
    text = out.getvalue()
    table = text[text.index("Phases (the largest task of each)"):text.index("Resources")]
    for phase in ("steps[0].map", "steps[0].reduce", "steps[1].map", "steps[1].reduce"):
        assert re.search(rf"^\s*{re.escape(phase)}\s", table, re.MULTILINE), (phase, table)


def test_limit_checks_of_a_later_step_name_that_steps_settings() -> None:
    # step 1 at 128 MB and 1 s, with 200 MB of runtime in every task: its map and reduce
    # pass both their memory and their timeout, and every hint must name the YAML path
    # the user edits (steps[1]...), not the top-level map/reduce a job with steps lacks
    spec, objects = two_steps()
    tight = StepSpec(MapSpec(entrypoint="job:again", memory_mb=128, timeout_s=1),
                     ReduceSpec("job:reducer2", partitions=3, memory_mb=128, timeout_s=1))
    spec = dataclasses.replace(spec, later_steps=(tight,))
    e = estimate_of(spec, make_plan(spec, objects), runtime_memory_mb=200)
    failed = {c.name: c.setting for c in e.limits if not c.ok}
    assert failed["steps[1].reduce task memory"] == (
        "raise steps[1].reduce.memory or steps[1].reduce.partitions")
    assert failed["steps[1].reduce task time"] == (
        "raise steps[1].reduce.partitions, steps[1].reduce.memory or steps[1].reduce.timeout")
    # a later step's map task i reads part i of the step before: fewer bytes per task
    # come from more partitions there, not from map.bin_size (step 0's splits)
    assert failed["steps[1].map task memory"] == (
        "raise steps[1].map.memory or raise steps[0].reduce.partitions")
    assert failed["steps[1].map task time"] == (
        "raise steps[0].reduce.partitions, or raise steps[1].map.timeout or steps[1].map.memory")
    # step 0 (1,769 / 1,024 MB, 180 / 300 s) passes; its hints too are located in steps[0]
    ok = {c.name: c.setting for c in e.limits if c.ok}
    assert ok["steps[0].map task memory"] == (
        "raise steps[0].map.memory or lower steps[0].map.bin_size")
    assert not any(s.startswith(("raise map.", "raise reduce.", "lower map."))
                   or " map.memory" in s or " reduce.memory" in s
                   for s in [*failed.values(), *ok.values()])
    # plan's warnings say the same
    warnings = [w for w in e.to_json()["warnings"] if "past its timeout" in w]
    assert [w.split(": ", 1)[1] for w in warnings] == [
        "raise steps[0].reduce.partitions or raise steps[1].map.memory",
        "raise steps[1].reduce.partitions or steps[1].reduce.memory"]


def test_a_later_step_after_map_only_steps_names_the_nearest_reduce_or_bin_size() -> None:
    spec, _ = two_steps()
    map_only = StepSpec(MapSpec(entrypoint="job:again"))
    three = dataclasses.replace(spec, later_steps=(map_only, map_only))
    assert three.smaller_map_input(2) == "raise steps[0].reduce.partitions"
    first_map_only = dataclasses.replace(three, reduce=None)
    assert first_map_only.smaller_map_input(2) == "lower steps[0].map.bin_size"
    one_step, _ = three_objects()
    assert one_step.setting(0, "map.memory") == "map.memory"
    assert three.setting(2, "map.memory") == "steps[2].map.memory"


def test_keeping_a_failed_run_with_steps_costs_every_steps_shuffle_and_intermediate_parts() -> None:
    """The working bucket of a failed two-step run holds at most step 0's shuffle
    (288 MiB x 0.3), step 0's output parts, which step 1 reads (2 parts of 28.8 / 2 MiB,
    whole bytes), and step 1's shuffle (those parts x 0.3); step 1's own parts leave the
    output. Priced at pricing.json's S3 Standard price, a day being 24 of 730 hours."""
    import json
    from pathlib import Path

    from mrspec.cost import pricing

    spec, objects = two_steps()
    part = int(28.8 * MIB / 2)
    by_hand = {
        "reduces": 288 * MIB * 0.3 + 2 * part + 2 * part * 0.3,
        # a map-only last step writes no shuffle, and its parts are the output's
        "map-only": 288 * MIB * 0.3 + 2 * part,
    }
    last = {"reduces": STEP_1, "map-only": dataclasses.replace(STEP_1, reduce=None)}
    prices = json.loads(Path(pricing.__file__).with_name("pricing.json").read_text())
    for shape, held in by_hand.items():
        this = dataclasses.replace(spec, later_steps=(last[shape],))
        doc = estimate_of(this, make_plan(this, objects)).to_json()
        per_gb_month = prices["regions"][doc["region"]]["s3"]["storage_per_gb_month"]

        kept = doc["keep_failed"]

        assert kept["bytes"] == round(held), shape
        assert kept["usd_per_day"] == pytest.approx(held / 1024**3 * per_gb_month * 24 / 730,
                                                    rel=1e-5)
        assert kept["s3_storage_per_gb_month"] == per_gb_month
