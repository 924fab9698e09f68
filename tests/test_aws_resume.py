"""Resuming a failed run on emulated AWS (``apply --keep-failed`` / ``--resume``).

A word count over six one-task files with the plan's fan-in forced to 2 (two merge
levels: every kind of phase) fails on a marker: its mapper (or reducer) raises while the
job's module says ``BROKEN = True``. The failed run keeps its stack; the module is fixed
and ``--resume`` deploys the new code and runs only what did not finish. The tasks it
runs are counted from the emulator's own invocation log (one entry per Lambda call),
against what the first run's log says finished, and its output is compared with a clean
run of the fixed job on the local engine. Afterwards moto holds nothing of the job.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
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
from mrspec.cli import main
from mrspec.errors import ExitCode, JobFailedError, MrspecError, RefusedError
from mrspec.plan.planner import plan_job
from mrspec.runtime.dispatch import task_label
from mrspec.spec.loader import load_spec

JOB = """\
apiVersion: mrspec/v1
name: resumable
input: {prefix: input/, format: text, split_size: 1000}
map: {entrypoint: wc:mapper, form: task, memory: 256, timeout: 30, bin_size: 1000}
reduce: {entrypoint: wc:reducer, partitions: 3, memory: 256, timeout: 30}
output: {prefix: out/}
limits: {max_concurrency: 2, max_attempts: 1}
"""

CODE = """\
BROKEN = {broken}

def mapper(lines):
    for line in lines:
        if BROKEN and {map_fails} and "boom" in line:
            raise RuntimeError("the mapper broke on " + line)
        for word in line.split():
            yield word, 1

def reducer(word, counts):
    if BROKEN and not {map_fails} and word == "boom":
        raise RuntimeError("the reducer broke on boom")
    yield word, sum(counts)
"""

WORDS = ["alpha", "beta", "gamma", "delta", "hot", "hot", "hot"]
BOOM_FILE = 3  # the input file holding the marker (one map task reads it)


@pytest.fixture
def small_fan_in(monkeypatch: pytest.MonkeyPatch) -> None:
    import mrspec.plan.planner as planner

    monkeypatch.setattr(planner, "fan_in", lambda memory_mb: 2)


def _job(tmp_path: Path, *, map_fails: bool) -> Path:
    folder = tmp_path / "job"
    (folder / "input").mkdir(parents=True)
    for i in range(6):  # ~600 bytes each: one map task per file
        lines = [" ".join(WORDS[(i * j + k) % len(WORDS)] for k in range(i + 2)) for j in range(30)]
        if i == BOOM_FILE:
            lines.append("boom")
        (folder / "input" / f"part{i}.txt").write_text("\n".join(lines) + "\n")
    _code(folder, broken=True, map_fails=map_fails)
    (folder / "job.yaml").write_text(JOB)
    return folder / "job.yaml"


def _code(folder: Path, *, broken: bool, map_fails: bool) -> None:
    (folder / "wc.py").write_text(CODE.format(broken=broken, map_fails=map_fails))


def _settled(aws: EmulatedAws) -> int:
    """Wait until no Lambda call has started for a while: a stopped execution's children
    may still be running in moto's threads. Returns the number of calls so far."""
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < 1.5:
        now = len(aws.lambdas.invocations)
        if now != seen:
            seen, quiet_since = now, time.monotonic()
        time.sleep(0.1)
    return seen


def _tasks(aws: EmulatedAws, start: int, stop: int | None = None, ok: bool | None = None) -> Counter[tuple[str, int]]:
    """(phase, task id) of the task calls in the invocation log's ``[start:stop]``."""
    out: Counter[tuple[str, int]] = Counter()
    for call in aws.lambdas.invocations[start:stop]:
        event = call.event if isinstance(call.event, dict) else {}
        kind = event.get("phase")
        if kind in ("map", "merge", "reduce") and "task" in event and (ok is None or call.errored != ok):
            out[task_label(kind, call.event["task"])] += 1
    return out


def _fail_then_fix(
    aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str], *, map_fails: bool
) -> tuple[Any, Any, int]:
    """Run the broken job (kept on failure), fix its module; return (spec, options,
    invocations before the resume)."""
    spec = load_spec(_job(tmp_path, map_fails=map_fails))
    inputs = upload_input(aws, spec)
    aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    options = emulated_options(
        tmp_path,
        input_prefixes=inputs,
        output_prefix=f"s3://{OUT_BUCKET}/resumable/out/",
        run_id="rs1",
        keep_failed_s=3600,
    )
    with pytest.raises(JobFailedError) as failed:
        run_on_aws(spec, options)
    summary = json.loads(capsys.readouterr().out)
    state = str(tmp_path / "state")
    command = f"mrspec apply {spec.source} --resume rs1 --state-dir {state} --provisioner boto3"
    assert command in str(failed.value)  # the failure says how to go on
    assert summary["resume_command"] == command and summary["teardown"].startswith("kept")
    assert summary["kept_usd_per_day"] >= 0
    record = StateStore(tmp_path / "state").find("rs1")
    assert record.status == "resumable" and record.expires_at > time.time() + 3000
    assert aws.client("lambda").list_functions()["Functions"]  # the stack is kept
    # no manifest names anything uncommitted (the failure removed this run's parts; a task
    # still running when the execution stopped may write one later: the resume removes it)
    assert "_SUCCESS" not in s3_output(aws, f"s3://{OUT_BUCKET}/resumable/out/")
    _code(spec.source.parent, broken=False, map_fails=map_fails)
    return load_spec(spec.source), replace(options, resume="rs1", run_id=None), _settled(aws)


def _same_as_clean_local_run(aws: EmulatedAws, spec: Any, tmp_path: Path) -> None:
    cloud = s3_output(aws, f"s3://{OUT_BUCKET}/resumable/out/")
    local = local_output(spec, tmp_path / "local-out")
    parts = sorted(n for n in local if n.startswith("part-"))
    assert parts and sorted(n for n in cloud if n.startswith("part-")) == parts
    assert [cloud[n] for n in parts] == [local[n] for n in parts]
    assert b"boom" in b"".join(cloud[n] for n in parts)  # the marker's record made it


@pytest.mark.slow  # three emulated runs
def test_a_resume_after_a_failed_map_task_runs_only_what_did_not_finish(
    emulated_aws: EmulatedAws, tmp_path: Path, small_fan_in: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec, options, before = _fail_then_fix(emulated_aws, tmp_path, capsys, map_fails=True)
    plan = plan_job(spec)
    finished = {task for task in _tasks(emulated_aws, 0, before, ok=True) if task[0] == "map"}
    failed = {task for task in _tasks(emulated_aws, 0, before, ok=False) if task[0] == "map"}
    # the marker's task failed (a child stopped with the execution may have too)
    assert failed and not failed & finished
    everything = {("map", t.task_id) for t in plan.map_tasks}
    everything |= {(m.phase, t.task_id) for m in plan.merge_levels for t in m.tasks}
    everything |= {("reduce", t.partition) for t in plan.reduce_tasks}

    assert run_on_aws(spec, options) == 0

    summary = json.loads(capsys.readouterr().out)
    assert summary["outcome"] == "succeeded" and summary["teardown"] == "destroyed"
    assert [p["phase"] for p in summary["phases"]] == ["map", "merge-1", "merge-2", "reduce"]
    ran = _tasks(emulated_aws, before)
    assert set(ran.values()) == {1}  # each task once
    # every map task that had not finished, and only those; the later phases whole
    assert set(ran) == everything - finished
    assert {(p, i) for p, ids in summary["resumed_tasks"].items() for i in ids} == set(ran)
    _same_as_clean_local_run(emulated_aws, spec, tmp_path)
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})
    assert list(StateStore(tmp_path / "state").runs()) == []


@pytest.mark.slow  # three emulated runs
def test_a_resume_after_a_failed_reducer_runs_only_the_reduce_phase(
    emulated_aws: EmulatedAws, tmp_path: Path, small_fan_in: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec, options, _ = _fail_then_fix(emulated_aws, tmp_path, capsys, map_fails=False)
    partitions = spec.reduce.partitions
    store = StateStore(tmp_path / "state")
    kept_until = store.find("rs1").expires_at
    # a resume that fails again (the fix was not right) is kept again, for a new period
    _code(spec.source.parent, broken=True, map_fails=False)
    with pytest.raises(JobFailedError, match="the reducer broke on boom"):
        run_on_aws(load_spec(spec.source), options)
    assert json.loads(capsys.readouterr().out)["teardown"].startswith("kept")
    assert store.find("rs1").status == "resumable" and store.find("rs1").expires_at > kept_until
    _code(spec.source.parent, broken=False, map_fails=False)
    before = _settled(emulated_aws)
    # what a reducer still running when the execution stopped leaves after the cleanup
    emulated_aws.client("s3").put_object(
        Bucket=OUT_BUCKET, Key="resumable/out/part-00001", Body=b"late\t1\n"
    )

    assert run_on_aws(load_spec(spec.source), options) == 0

    assert json.loads(capsys.readouterr().out)["outcome"] == "succeeded"
    ran = _tasks(emulated_aws, before)
    # the failed run removed the parts of the reducers that finished, and their results:
    # every reducer runs again, no map or merge task does (their phases get no items)
    assert ran == Counter({("reduce", p): 1 for p in range(partitions)})
    _same_as_clean_local_run(emulated_aws, spec, tmp_path)
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})


def _mrspec(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(args)
    return int(exited.value.code or 0)


@pytest.mark.slow  # one emulated run
def test_a_resume_over_a_changed_input_is_refused_and_an_expired_kept_run_is_destroyed(
    emulated_aws: EmulatedAws, tmp_path: Path, small_fan_in: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec, options, _ = _fail_then_fix(emulated_aws, tmp_path, capsys, map_fails=True)
    state = str(tmp_path / "state")
    assert _mrspec(["runs", "--state-dir", state]) == 0
    listed = capsys.readouterr().out
    assert "resumable" in listed and "--resume rs1" in listed and "until" in listed
    emulated_aws.client("s3").put_object(
        Bucket=IN_BUCKET, Key="resumable/input/part9.txt", Body=b"a new file\n"
    )

    with pytest.raises(RefusedError) as refused:
        run_on_aws(spec, options)

    assert refused.value.exit_code == ExitCode.REFUSED
    assert "cannot resume run rs1" in str(refused.value) and ": the input " in str(refused.value)
    assert StateStore(tmp_path / "state").find("rs1").status == "resumable"  # still kept
    assert _mrspec(["attach", "--run", "rs1", "--state-dir", state]) == ExitCode.INVALID
    assert "kept for a resume" in capsys.readouterr().err
    store = StateStore(tmp_path / "state")
    assert _mrspec(["destroy", "--expired", "--state-dir", state]) == 0  # not expired yet
    capsys.readouterr()
    record = store.find("rs1")
    assert record is not None and not record.expired
    store.save(replace(record, expires_at=time.time() - 1))  # its --keep-failed time passes
    assert _mrspec(["runs", "--state-dir", state]) == 0
    listed = capsys.readouterr().out
    assert "EXPIRED" in listed and "mrspec destroy --expired" in listed
    assert _mrspec(["runs", "--state-dir", state, "--json"]) == 0
    assert [r["expired"] for r in json.loads(capsys.readouterr().out)["runs"]] == [True]
    # every apply says so until it is removed (this one is then refused: no such input)
    with pytest.raises(MrspecError):
        run_on_aws(spec, replace(options, resume=None, run_id="rs2",
                                 input_prefixes=(f"s3://{IN_BUCKET}/nothing-here/",)))
    assert "1 failed run(s) kept past their --keep-failed time (resumable rs1)" in capsys.readouterr().err

    assert _mrspec(["destroy", "--expired", "--state-dir", state]) == 0

    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})
    assert list(store.runs()) == []


def test_keep_failed_reaches_the_driver_and_is_bounded_by_the_lifecycle_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import mrspec.aws.driver as driver

    seen: list[Any] = []
    monkeypatch.setattr(driver, "run_on_aws", lambda spec, options: seen.append(options) or 0)
    job = _job(tmp_path, map_fails=True)
    base = ["apply", str(job), "--input", "s3://in-bucket/x/", "--output", "s3://out-bucket/y/"]

    assert _mrspec(base) == 0
    assert _mrspec([*base, "--keep-failed", "0"]) == 0
    assert _mrspec([*base, "--keep-failed", "7d", "--resume", "abc"]) == 0

    assert [(o.keep_failed_s, o.resume) for o in seen] == [
        (24 * 3600, None), (0, None), (7 * 86400, "abc")
    ]
    assert _mrspec([*base, "--keep-failed", "8d"]) == ExitCode.INVALID
    assert "longer than 7d" in capsys.readouterr().err
    assert len(seen) == 3  # refused before running anything


@pytest.mark.slow  # one emulated run
def test_a_failed_run_that_cannot_be_prepared_for_a_resume_is_torn_down(
    emulated_aws: EmulatedAws, tmp_path: Path, small_fan_in: None,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import mrspec.aws.keep as keep

    def cannot(*args: Any) -> None:
        raise OSError("the output's bucket refused the delete")

    monkeypatch.setattr(keep, "discard", cannot)
    spec = load_spec(_job(tmp_path, map_fails=True))
    inputs = upload_input(emulated_aws, spec)
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    options = emulated_options(
        tmp_path, input_prefixes=inputs, output_prefix=f"s3://{OUT_BUCKET}/resumable/out/",
        run_id="rs3", keep_failed_s=3600,
    )

    with pytest.raises(JobFailedError) as failed:
        run_on_aws(spec, options)

    assert "--resume" not in str(failed.value)
    # (the warning saying why goes to stderr, which moto's handler threads may hold)
    summary = json.loads(capsys.readouterr().out)
    assert summary["teardown"] == "destroyed" and summary["resume_command"] == ""
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})
    assert list(StateStore(tmp_path / "state").runs()) == []
