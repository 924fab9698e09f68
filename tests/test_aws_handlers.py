"""The Lambda handlers over the runtime, on local storage (the same code paths as S3):
a whole job through map/reduce/commit events, failure records, and the commit's checks."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aws_specs import REPO, make_spec

from mrspec.aws import handlers
from mrspec.plan.planner import plan_job
from mrspec.runtime import RunShape, TaskConfig
from mrspec.runtime.errors import TaskFailedError
from mrspec.runtime.layout import failure_uri, manifest_key
from mrspec.spec.model import CodeSpec, JobSpec, MapSpec

TEXT = ["the cat sat on the mat", "The Dog, the cat", "", "a b c a b a"]


def setup_job(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    code: Path | None = None,
    map_spec: MapSpec | None = None,
    max_bad_records: int = 0,
) -> tuple[JobSpec, str]:
    data = tmp_path / "input"
    data.mkdir()
    for i in range(3):
        (data / f"f{i}.txt").write_text("\n".join(TEXT * (i + 1)) + "\n")
    spec = make_spec(inputs=(str(data),), output=str(tmp_path / "out"))
    spec = dataclasses.replace(
        spec,
        code=CodeSpec(path=code or REPO / "specs" / "wordcount"),
        input=dataclasses.replace(spec.input, split_size=40),
        map=map_spec or dataclasses.replace(spec.map, bin_size=80),
        limits=dataclasses.replace(spec.limits, max_bad_records=max_bad_records),
    )
    config = TaskConfig.from_spec(spec)
    (tmp_path / "config.json").write_text(config.to_json())
    monkeypatch.setenv(handlers.TASK_CONFIG_ENV, str(tmp_path / "config.json"))
    monkeypatch.setenv(handlers.SCRATCH_ENV, str(tmp_path))
    work = str(tmp_path / "work" / "runs" / "r1")
    plan = plan_job(spec)
    for phase, tasks in (("map", plan.map_tasks), ("reduce", plan.reduce_tasks)):
        manifest = Path(work) / manifest_key("", phase)
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps([t.to_json() for t in tasks]))
    return spec, work


def run_input(spec: JobSpec) -> dict[str, Any]:
    """The execution input's part the commit reads: the run's shape."""
    return {"exchange": RunShape.of_plan(plan_job(spec)).to_json()}


def map_events(spec: JobSpec, work: str) -> list[dict[str, Any]]:
    tasks = json.loads((Path(work) / "manifests" / "map.json").read_text())
    assert len(tasks) > 1
    return [{"phase": "map", "task": t, "work": work, "attempt": 0, "run": {}} for t in tasks]


@pytest.mark.parametrize("runs", [2])
def test_a_whole_job_through_the_handlers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: int
) -> None:
    # Twice in one process, like a warm Lambda container serving two runs.
    for n in range(runs):
        (tmp_path / f"run{n}").mkdir()
        run_whole_job(tmp_path / f"run{n}", monkeypatch)


def run_whole_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, work = setup_job(tmp_path, monkeypatch)
    for event in map_events(spec, work):
        result = handlers.map_handler(event, None)
        assert result["kind"] == "map" and result["task_id"] == event["task"]["task_id"]
        json.dumps(result)
    reduces = json.loads((Path(work) / manifest_key("", "reduce")).read_text())
    for p, task in enumerate(reduces):
        event = {"phase": "reduce", "task": task, "work": work, "attempt": 0}
        assert handlers.reduce_handler(event, None)["task_id"] == p
    summary = handlers.commit_handler(
        {
            "action": "commit",
            "work": work,
            "started": "2026-01-02T03:04:05.500Z",
            "run": run_input(spec),
        }
    )
    expected = Counter(
        w.strip("'")
        for i in range(3)
        for line in TEXT * (i + 1)
        for w in re.findall(r"[\w']+", line.lower())
    )
    got: dict[str, int] = {}
    for part in sorted((tmp_path / "out").glob("part-*")):
        for line in part.read_text().splitlines():
            key, value = line.split("\t")
            got[key] = int(value)
    assert got == dict(expected)
    assert summary["parts"] == spec.partitions
    assert summary["records"] == len(expected)
    assert summary["timings"]["started"] == 1767323045.5
    assert summary["manifest"].endswith("/_SUCCESS")
    assert (tmp_path / "out" / "_SUCCESS").is_file()


FLAKY = """
import os

def mapper(records):
    if os.path.exists(os.environ["FLAKY_MARKER"]):
        raise RuntimeError("disk on fire")
    for line in records:
        for word in line.split():
            yield word, 1

def badmapper(line):
    raise ValueError("cannot parse " + line[:5])

"""


def flaky_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str, form: str
) -> tuple[JobSpec, str, Path]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "flaky.py").write_text(FLAKY)
    marker = tmp_path / "marker"
    marker.write_text("")
    monkeypatch.setenv("FLAKY_MARKER", str(marker))
    map_spec = MapSpec(entrypoint=entry, form=form, bin_size=80)  # type: ignore[arg-type]
    spec, work = setup_job(tmp_path, monkeypatch, code=code, map_spec=map_spec)
    return spec, work, marker


def test_failure_is_recorded_reported_under_its_name_and_cleared_by_a_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, work, marker = flaky_job(tmp_path, monkeypatch, "flaky:mapper", "task")
    event = map_events(spec, work)[1]
    with pytest.raises(Exception, match="disk on fire") as info:
        handlers.map_handler(event, None)
    assert type(info.value).__name__ == "UserCodeError"  # retryable: keeps its own name
    record_path = Path(failure_uri(work, "map", event["task"]["task_id"]))
    record = json.loads(record_path.read_text())
    assert record["error"] == "UserCodeError" and record["attempt"] == 1
    assert "disk on fire" in record["traceback"]

    # The phase failed: the report raises the task's own error type, naming the task.
    with pytest.raises(Exception) as reported:
        handlers.commit_handler(
            {
                "action": "report_failure",
                "phase": "map",
                "work": work,
                "error": "States.ExceedToleratedFailureThreshold",
                "cause": "...",
            }
        )
    assert type(reported.value).__name__ == "UserCodeError"
    assert f"map task {event['task']['task_id']} failed (attempt 1)" in str(reported.value)
    # The commit refuses too (engines that let a failed Distributed Map succeed).
    with pytest.raises(Exception, match="disk on fire"):
        handlers.commit_handler({"action": "commit", "work": work})

    # A successful retry removes the record.
    marker.unlink()
    handlers.map_handler({**event, "attempt": 1}, None)
    assert not record_path.exists()


def test_non_retryable_errors_carry_the_retriers_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, work, _ = flaky_job(tmp_path, monkeypatch, "flaky:badmapper", "record")
    event = map_events(spec, work)[0]
    with pytest.raises(TaskFailedError) as info:
        handlers.map_handler(event, None)
    assert type(info.value).__name__ == "TaskFailedError"  # what the state machine matches
    assert str(info.value).startswith("BadRecordLimitError: ")
    record = json.loads(Path(failure_uri(work, "map", 0)).read_text())
    assert record["error"] == "BadRecordLimitError"


def test_phase_failure_without_a_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, work = setup_job(tmp_path, monkeypatch)
    with pytest.raises(handlers.PhaseFailedError, match=r"Sandbox\.Timedout"):
        handlers.commit_handler(
            {
                "action": "report_failure",
                "phase": "reduce",
                "work": work,
                "error": "Sandbox.Timedout",
                "cause": "Task timed out after 300.00 seconds",
            }
        )


def test_commit_refuses_missing_map_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, work = setup_job(tmp_path, monkeypatch)
    events = map_events(spec, work)
    handlers.map_handler(events[0], None)
    with pytest.raises(TaskFailedError, match=f"1 of {len(events)} map task results"):
        handlers.commit_handler({"action": "commit", "work": work, "run": run_input(spec)})
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def test_unknown_action_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown commit action"):
        handlers.commit_handler({"action": "explode", "work": "/nowhere"})
