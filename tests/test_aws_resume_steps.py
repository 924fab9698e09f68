"""Resuming a failed run of a job with steps on emulated AWS (``--keep-failed`` /
``--resume``).

A top-words job in two steps (step 0 counts words into 3 partitions, step 1 keeps the
top 3 in 2 partitions), with the plan's fan-in forced to 2 so both steps have merge
levels, fails on a marker: step 0's mapper raises on the ``boom`` line, or step 1's
reducer raises, while the job's module says ``BROKEN = True``. The failed run is kept;
the module is fixed and ``--resume`` runs what did not finish, by the rule the local
engine follows: a step that finished runs nothing again, and once a phase runs a task
every later phase of every later step runs whole. What ran is counted from the
emulator's invocation log (one entry per Lambda call, with its step and task), and the
output is compared with a clean run of the fixed job on the local engine.
"""

from __future__ import annotations

import collections
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from test_aws_resume import _settled, small_fan_in  # noqa: F401 (the fixture)
from test_driver_lifecycle import assert_nothing_left
from test_emulated_jobs import (
    IN_BUCKET,
    OUT_BUCKET,
    emulated_options,
    local_output,
    s3_output,
    upload_input,
)

from mrspec.aws.driver import run_on_aws
from mrspec.aws.state import StateStore
from mrspec.errors import JobFailedError
from mrspec.plan.model import JobPlan
from mrspec.plan.planner import plan_job
from mrspec.runtime.dispatch import task_label
from mrspec.runtime.layout import step_phase
from mrspec.spec.loader import load_spec
from mrspec.spec.model import JobSpec

JOB = """\
apiVersion: mrspec/v1
name: topresume
input: {prefix: input/, format: text, split_size: 1000}
steps:
  - map: {entrypoint: tw:words, combiner: tw:partial, bin_size: 1000, memory: 256, timeout: 30}
    reduce: {entrypoint: tw:total, partitions: 3, memory: 256, timeout: 30}
  - map: {entrypoint: tw:by_count, combiner: tw:best, memory: 256, timeout: 30}
    reduce: {entrypoint: tw:top, partitions: 2, memory: 256, timeout: 30}
params: {n: 3}
output: {prefix: out/}
limits: {max_attempts: 1, max_concurrency: 2}
"""

CODE = """\
import heapq
from mrspec.api import params

BROKEN = {broken}
WHERE = {where!r}


def _best(candidates):
    n = int(params().get("n", 3))
    return heapq.nsmallest(n, candidates, key=lambda c: (-int(c[0]), str(c[1])))


def words(line):
    if BROKEN and WHERE == "map" and "boom" in line:
        raise RuntimeError("the mapper broke on " + line)
    for word in line.split():
        yield word, 1


def partial(word, counts):
    yield word, sum(counts)


def total(word, counts):
    yield word, sum(counts)


def by_count(pair):
    yield "top", [pair[1], pair[0]]


def best(key, candidates):
    for candidate in _best(candidates):
        yield key, candidate


def top(key, candidates):
    if BROKEN and WHERE == "top":
        raise RuntimeError("the top broke")
    for count, word in _best(candidates):
        yield str(word), int(count)
"""

WORDS = ["alpha", "beta", "gamma", "delta", "hot", "hot", "hot"]
BOOM_FILE = 3
OUTPUT = f"s3://{OUT_BUCKET}/topresume/out/"

Task = tuple[int, str, int]  # (step, phase, task id)


def _job(tmp_path: Path, where: str) -> JobSpec:
    folder = tmp_path / "job"
    (folder / "input").mkdir(parents=True)
    for i in range(6):  # ~600 bytes each: one step-0 map task per file
        lines = [" ".join(WORDS[(i * j + k) % len(WORDS)] for k in range(i + 2)) for j in range(30)]
        if i == BOOM_FILE:
            lines.append("boom")
        (folder / "input" / f"part{i}.txt").write_text("\n".join(lines) + "\n")
    _code(folder, broken=True, where=where)
    (folder / "job.yaml").write_text(JOB)
    return load_spec(folder / "job.yaml")


def _code(folder: Path, *, broken: bool, where: str) -> None:
    (folder / "tw.py").write_text(CODE.format(broken=broken, where=where))


def _tasks(aws: EmulatedAws, start: int, stop: int | None = None,
           ok: bool | None = None) -> collections.Counter[Task]:
    """(step, phase, task id) of the task calls in the invocation log's ``[start:stop]``."""
    out: collections.Counter[Task] = collections.Counter()
    for call in aws.lambdas.invocations[start:stop]:
        event = call.event if isinstance(call.event, dict) else {}
        kind = event.get("phase")
        if kind in ("map", "merge", "reduce") and "task" in event and (ok is None or call.errored != ok):
            phase, task_id = task_label(kind, event["task"])
            out[(int(event.get("step") or 0), phase, task_id)] += 1
    return out


def _every_task(plan: JobPlan) -> list[Task]:
    """Every task of every step, in the order the execution runs the phases."""
    out: list[Task] = []
    for step in plan.steps:
        out += [(step.step, "map", t.task_id) for t in step.map_tasks]
        out += [(step.step, m.phase, t.task_id) for m in step.merge_levels for t in m.tasks]
        out += [(step.step, "reduce", t.partition) for t in step.reduce_tasks]
    return out


def _work_keys(aws: EmulatedAws) -> list[str]:
    """The keys in the run's working bucket (the one bucket that is neither input nor output)."""
    s3 = aws.client("s3")
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"] not in (IN_BUCKET, OUT_BUCKET)]
    assert len(buckets) == 1
    listed = s3.get_paginator("list_objects_v2").paginate(Bucket=buckets[0])
    return [o["Key"] for page in listed for o in page.get("Contents", [])]


def _fail_then_fix(
    aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> tuple[JobSpec, Any, int]:
    """Run the broken job (kept on failure), fix its module; return (spec, the resume's
    options, invocations before the resume)."""
    spec = _job(tmp_path, where)
    inputs = upload_input(aws, spec)
    aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    options = emulated_options(tmp_path, input_prefixes=inputs, output_prefix=OUTPUT,
                               run_id="st1", keep_failed_s=3600)
    with pytest.raises(JobFailedError) as failed:
        run_on_aws(spec, options)
    summary = json.loads(capsys.readouterr().out)
    assert "--resume st1" in str(failed.value) and summary["teardown"].startswith("kept")
    assert summary["kept_usd_per_day"] is not None and summary["kept_usd_per_day"] >= 0
    assert StateStore(tmp_path / "state").find("st1").status == "resumable"
    assert "_SUCCESS" not in s3_output(aws, OUTPUT)
    _code(spec.source.parent, broken=False, where=where)
    return load_spec(spec.source), replace(options, resume="st1", run_id=None), _settled(aws)


def _resume_and_check(aws: EmulatedAws, tmp_path: Path, spec: JobSpec, options: Any,
                      capsys: pytest.CaptureFixture[str], before: int) -> collections.Counter[Task]:
    """Resume; check the summary, the output against a clean local run and that nothing
    is left; return the tasks the resume ran."""
    assert run_on_aws(spec, options) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["outcome"] == "succeeded" and summary["teardown"] == "destroyed"
    ran = _tasks(aws, before)
    assert set(ran.values()) == {1}  # each task once
    resumed = summary["resumed_tasks"]
    labels = {step_phase(s, 2, p): (s, p) for s, p, _ in _every_task(plan_job(spec))}
    assert {(*labels[k], i) for k, ids in resumed.items() for i in ids} == set(ran)
    cloud = s3_output(aws, OUTPUT)
    local = local_output(spec, tmp_path / "local-out")
    parts = sorted(n for n in local if n.startswith("part-"))
    assert parts == sorted(n for n in cloud if n.startswith("part-"))
    assert [cloud[n] for n in parts] == [local[n] for n in parts]
    assert b"hot\t" in b"".join(cloud[n] for n in parts)  # the most frequent word
    assert_nothing_left(aws, {IN_BUCKET, OUT_BUCKET})
    assert list(StateStore(tmp_path / "state").runs()) == []
    return ran


@pytest.mark.slow  # two emulated runs of two steps, and a local run
def test_a_failed_last_step_reducer_resumes_without_running_step_0_again(
    emulated_aws: EmulatedAws, tmp_path: Path, small_fan_in: None,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec, options, before = _fail_then_fix(emulated_aws, tmp_path, capsys, "top")
    plan = plan_job(spec)
    assert plan.steps[0].merge_levels and plan.steps[1].merge_levels  # every kind of phase
    first = _tasks(emulated_aws, 0, before, ok=True)
    # every phase before step 1's reduce finished in the failed run
    assert {t for t in _every_task(plan) if t[:2] != (1, "reduce")} <= set(first)
    keys = _work_keys(emulated_aws)
    # kept: every step's finished results and step 0's intermediate parts (step 1 reads
    # them); gone: the results of step 1's reducers, which wrote the output's parts
    assert not [k for k in keys if re.search(r"/step-1/[0-9a-f]{2}/results/reduce-", k)]
    assert len([k for k in keys if re.search(r"/runs/[^/]+/[0-9a-f]{2}/output/part-", "/" + k)]) == 3
    assert len([k for k in keys if re.search(r"/step-1/[0-9a-f]{2}/results/map-", k)]) == 3

    ran = _resume_and_check(emulated_aws, tmp_path, spec, options, capsys, before)

    # no step-0 task and no step-1 map or merge task runs again: only step 1's reducers
    assert ran == collections.Counter({(1, "reduce", p): 1 for p in range(2)})


@pytest.mark.slow  # two emulated runs of two steps, and a local run
def test_a_failed_step_0_map_task_resumes_from_it_and_runs_everything_after(
    emulated_aws: EmulatedAws, tmp_path: Path, small_fan_in: None,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec, options, before = _fail_then_fix(emulated_aws, tmp_path, capsys, "map")
    plan = plan_job(spec)
    finished = {t for t in _tasks(emulated_aws, 0, before, ok=True) if t[:2] == (0, "map")}
    failed = {t for t in _tasks(emulated_aws, 0, before, ok=False) if t[:2] == (0, "map")}
    assert failed and finished and not failed & finished
    assert not [t for t in _tasks(emulated_aws, 0, before) if t[:2] != (0, "map")]

    ran = _resume_and_check(emulated_aws, tmp_path, spec, options, capsys, before)

    # step 0's unfinished map tasks, then every later phase of both steps whole
    assert set(ran) == set(_every_task(plan)) - finished


@pytest.mark.slow  # one emulated run of two steps
def test_a_resume_over_a_changed_later_step_is_refused_and_the_kept_run_destroyed(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_aws_resume import _mrspec

    from mrspec.errors import ExitCode, RefusedError

    spec, options, _ = _fail_then_fix(emulated_aws, tmp_path, capsys, "top")
    job = spec.source
    job.write_text(job.read_text().replace("tw:top, partitions: 2", "tw:top, partitions: 3"))

    with pytest.raises(RefusedError) as refused:
        run_on_aws(load_spec(job), options)

    assert refused.value.exit_code == ExitCode.REFUSED
    assert "cannot resume run st1" in str(refused.value) and "partitioning" in str(refused.value)
    store = StateStore(tmp_path / "state")
    assert store.find("st1").status == "resumable"  # still kept
    state = str(tmp_path / "state")
    assert _mrspec(["destroy", str(job), "--run", "st1", "--state-dir", state]) == 0
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})
    assert list(store.runs()) == []


def test_the_resume_line_names_only_the_phases_that_run_again() -> None:
    # in a job with steps most phases of a resume have finished: listing them as "0 ..."
    # buried the one that runs
    from mrspec.aws.report import resumed_text

    resumed = {"steps[0].map": [], "steps[0].reduce": [], "steps[1].map": [],
               "steps[1].reduce": [0, 1]}
    assert resumed_text(resumed) == "2 steps[1].reduce task(s) run again"
    assert resumed_text({"map": [3], "reduce": [0, 1, 2]}) == "1 map, 3 reduce task(s) run again"
    assert resumed_text({"map": [], "reduce": []}) == "no task to run again"
