"""Resuming a failed local run: the work folder is kept, ``--resume`` re-runs only the
tasks without a result with the job's current (fixed) code, and the output equals a
clean run's; a resume over a changed input or partitioning is refused.

The mapper appends every record it sees to a calls file: that, not the engine's own
accounting, says which tasks ran. One worker makes the order of the map tasks (and so
which of them finished before the failure) deterministic.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from local_jobs import make_job

from mrspec.errors import ExitCode, JobFailedError, RefusedError
from mrspec.local.engine import LocalOptions, run_local
from mrspec.plan import plan_job
from mrspec.spec.model import JobSpec

CODE = """
CALLS = {calls!r}

def mapper(line):
    with open(CALLS, "a") as out:
        out.write(line + "\\n")
    if line == "boom" and {fail}:
        raise ValueError("cannot count 'boom'")
    for word in line.split():
        yield word, 1

def reducer(word, counts):
    yield word, sum(counts)
"""


def _write_input(root: Path, files: int) -> dict[str, list[str]]:
    folder = root / "input"
    folder.mkdir(exist_ok=True)
    lines = {}
    for i in range(files):
        body = [f"w{i} common common common", "boom" if i == 2 else f"v{i} common common common"]
        (folder / f"part-{i:02d}.txt").write_text("\n".join(body) + "\n")
        lines[str(folder / f"part-{i:02d}.txt")] = body
    return lines


def _job(root: Path, calls: Path, fail: bool, **more: Any) -> JobSpec:
    spec = make_job(root, CODE.format(calls=str(calls), fail=fail), split_size=64, bin_size=64, **more)
    return spec


def _fix(spec: JobSpec, calls: Path) -> None:
    """Rewrite the job's module in place: the same entrypoint, now without the bug."""
    module = spec.map.entrypoint.split(":")[0]
    path = spec.code.path / f"{module}.py"
    path.write_text(CODE.format(calls=str(calls), fail=False) + "\n# fixed: boom is a word\n")


def _output(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name.startswith("part-")}


def _options(tmp_path: Path, **more: Any) -> LocalOptions:
    return LocalOptions(workers=1, work_dir=str(tmp_path / "work"), **more)


def test_a_resume_after_fixing_the_mapper_reruns_only_the_unfinished_tasks(tmp_path: Path) -> None:
    lines = _write_input(tmp_path, files=5)
    calls = tmp_path / "calls.txt"
    spec = _job(tmp_path, calls, fail=True)
    (tmp_path / "work").mkdir()
    plan = plan_job(spec)
    files_of = [[s.uri for s in task.splits] for task in plan.map_tasks]
    assert len(files_of) == 5  # one map task per file

    with pytest.raises(JobFailedError) as failed:
        run_local(spec, _options(tmp_path, run_id="r1"))

    base = tmp_path / "work"
    assert f"mrspec apply test-job --local --resume r1 --work-dir {base}" in str(failed.value)
    assert (base / "mrspec-test-job-r1" / "resume.json").is_file()  # kept
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    # one worker, in task order: tasks 0 and 1 finished, task 2 failed, 3 and 4 never ran
    # (the runtime reads a failed record task once more to name the record: set, not list)
    first = set(calls.read_text().splitlines())
    assert first == {*lines[files_of[0][0]], *lines[files_of[1][0]], "w2 common common common", "boom"}

    _fix(spec, calls)
    calls.unlink()
    summary = run_local(spec, _options(tmp_path, resume="r1"))

    rerun = calls.read_text().splitlines()
    expected = [line for task in files_of[2:] for uri in task for line in lines[uri]]
    assert rerun == expected  # only the tasks without a result ran again
    assert summary["tasks"]["map"] == 5 and summary["records"]["input"] == 10
    assert not (base / "mrspec-test-job-r1").exists()  # a successful resume keeps nothing
    clean_out = tmp_path / "clean-out"
    clean = dataclasses.replace(spec, output=dataclasses.replace(spec.output, prefix=str(clean_out)))
    run_local(clean, _options(tmp_path))
    assert _output(tmp_path / "out") == _output(clean_out) != {}
    manifest = json.loads((tmp_path / "out" / "_SUCCESS").read_text())
    assert manifest["records"] == json.loads((clean_out / "_SUCCESS").read_text())["records"]


@pytest.mark.parametrize("change", ["input", "partitioning"])
def test_a_resume_over_a_changed_input_or_partitioning_is_refused(
    tmp_path: Path, change: str
) -> None:
    _write_input(tmp_path, files=3)
    calls = tmp_path / "calls.txt"
    spec = _job(tmp_path, calls, fail=True)
    (tmp_path / "work").mkdir()
    with pytest.raises(JobFailedError):
        run_local(spec, _options(tmp_path, run_id="r2"))
    _fix(spec, calls)
    if change == "input":
        (tmp_path / "input" / "late.txt").write_text("arrived later\n")
    else:
        assert spec.reduce is not None
        spec = dataclasses.replace(spec, reduce=dataclasses.replace(spec.reduce, partitions=5))

    with pytest.raises(RefusedError) as refused:
        run_local(spec, _options(tmp_path, resume="r2"))

    assert refused.value.exit_code == ExitCode.REFUSED
    message = str(refused.value)
    assert f": the {change} " in message and "changed since it ran" in message
    assert (tmp_path / "work" / "mrspec-test-job-r2" / "resume.json").is_file()  # still kept


def test_resuming_an_unknown_run_says_where_it_looked(tmp_path: Path) -> None:
    _write_input(tmp_path, files=1)
    spec = _job(tmp_path, tmp_path / "calls.txt", fail=False)
    (tmp_path / "work").mkdir()
    with pytest.raises(Exception, match="no kept run of job test-job at") as missing:
        run_local(spec, _options(tmp_path, resume="nosuch"))
    assert getattr(missing.value, "exit_code", None) == ExitCode.INVALID


def test_a_map_only_job_resumes_to_the_clean_output(tmp_path: Path) -> None:
    """A map-only job's map tasks write the parts: the failed run removed them, and with
    them those tasks' results, so the resume runs every map task again and the output
    holds every part (none listed by a result whose part is gone)."""
    lines = _write_input(tmp_path, files=4)
    calls = tmp_path / "calls.txt"
    spec = _job(tmp_path, calls, fail=True, reducer=None)
    (tmp_path / "work").mkdir()
    with pytest.raises(JobFailedError):
        run_local(spec, _options(tmp_path, run_id="m1"))
    assert calls.read_text().splitlines()[:2] == lines[sorted(lines)[0]]  # a task finished
    _fix(spec, calls)
    calls.unlink()

    run_local(spec, _options(tmp_path, resume="m1"))

    assert sorted(calls.read_text().splitlines()) == sorted(x for body in lines.values() for x in body)
    clean_out = tmp_path / "clean-out"
    clean = dataclasses.replace(spec, output=dataclasses.replace(spec.output, prefix=str(clean_out)))
    run_local(clean, _options(tmp_path))
    assert _output(tmp_path / "out") == _output(clean_out) != {}
