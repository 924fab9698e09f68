"""The whole plan as JSON (what ``mrspec attach`` restores) and its resume digests."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from local_jobs import WORDCOUNT, make_job, with_fan_in

from mrspec.plan import JobPlan, plan_job
from mrspec.plan.codec import plan_digest, plan_document, plan_from_document, resume_digests


def _plan(tmp_path: Path, files: int = 6) -> JobPlan:
    (tmp_path / "input").mkdir()
    for i in range(files):
        (tmp_path / "input" / f"{i}.txt").write_text(f"word{i} " * (20 + i) + "\n")
    spec = make_job(tmp_path, WORDCOUNT, split_size=64, bin_size=64, partitions=4)
    return with_fan_in(plan_job(spec), fan=2, budget=100)  # merge levels in partition ranges


def test_a_plan_with_merge_levels_survives_its_json_form(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert plan.merge_levels and any(m.ranges > 1 for m in plan.merge_levels)

    again = plan_from_document(json.loads(json.dumps(plan_document(plan))))

    assert again == plan
    assert again.listing_seconds == plan.listing_seconds
    assert plan_digest(again) == plan_digest(plan)


def test_the_resume_digests_name_what_changed(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    base = resume_digests(plan)
    fewer = dataclasses.replace(plan, reduce_tasks=plan.reduce_tasks[:2])
    moved = dataclasses.replace(plan, objects=plan.objects[1:])

    assert [k for k, v in resume_digests(fewer).items() if base[k] != v] == [
        "partitioning",
        "task manifests",
    ]
    assert [k for k, v in resume_digests(moved).items() if base[k] != v] == ["input"]


def test_a_plan_with_steps_survives_its_json_form(tmp_path: Path) -> None:
    """``attach`` of a job with steps restores every step's tasks (a later merge level
    included), and a one-step plan's document has no trace of steps."""
    from test_local_steps import THREE, make

    from mrspec.spec.loader import load_spec

    plan = plan_job(load_spec(make(tmp_path, THREE)))
    assert len(plan.steps) == 3 and plan.steps[2].merge_levels

    again = plan_from_document(json.loads(json.dumps(plan_document(plan))))

    assert again == plan and again.steps == plan.steps
    assert plan_digest(again) == plan_digest(plan)
    one_step = dataclasses.replace(plan, later_steps=())
    assert "later_steps" not in plan_document(one_step)
    assert plan_digest(one_step) != plan_digest(plan)
