"""Resuming a failed local run of a job with steps (a top-words job like specs/topwords):
a step that finished runs no task again, the failed step runs only its tasks without a
result, and the output equals a clean run's.

Every function the test counts appends a line to a calls file (``words <line>`` per
record of step 0's mapper, ``total <word>`` per step 0 reduce key, ``by_count <word>``
per record of step 1's mapper, ``top`` per step 1 reduce key): that, not the engine's
accounting, says what ran. One worker makes the order of the map tasks deterministic.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mrspec.errors import JobFailedError, RefusedError
from mrspec.local.engine import LocalOptions, run_local
from mrspec.plan import plan_job
from mrspec.spec.loader import load_spec
from mrspec.spec.model import JobSpec
from mrspec.spec.params import with_overrides

JOB = """\
apiVersion: mrspec/v1
name: topsteps
input: {prefix: input/, format: text, split_size: 64}
steps:
  - map: {entrypoint: tw:words, combiner: tw:partial, bin_size: 64}
    reduce: {entrypoint: tw:total, partitions: 3}
  - map: {entrypoint: tw:by_count, combiner: tw:best}
    reduce: {entrypoint: tw:top, partitions: 1}
params: {n: 3}
output: {prefix: out/}
limits: {max_attempts: 1}
"""

CODE = """\
import heapq
from mrspec.api import params

CALLS = {calls!r}
BROKEN = {broken}
WHERE = {where!r}


def _log(what):
    with open(CALLS, "a") as out:
        out.write(what + "\\n")


def _best(candidates):
    n = int(params().get("n", 3))
    return heapq.nsmallest(n, candidates, key=lambda c: (-int(c[0]), str(c[1])))


def words(line):
    _log("words " + line)
    if BROKEN and WHERE == "map" and line == "boom":
        raise ValueError("cannot count boom")
    for word in line.split():
        yield word, 1


def partial(word, counts):
    yield word, sum(counts)


def total(word, counts):
    _log("total " + word)
    yield word, sum(counts)


def by_count(pair):
    _log("by_count " + pair[0])
    yield "top", [pair[1], pair[0]]


def best(key, candidates):
    for candidate in _best(candidates):
        yield key, candidate


def top(key, candidates):
    _log("top")
    if BROKEN and WHERE == "top":
        raise ValueError("the top broke")
    for count, word in _best(candidates):
        yield str(word), int(count)
"""


def _job(root: Path, calls: Path, where: str) -> JobSpec:
    (root / "input").mkdir(parents=True)
    for i in range(5):  # one map task per file in step 0
        body = [f"w{i} common common x{i % 2}", "boom" if i == 2 else f"v{i} common x{i % 2}"]
        (root / "input" / f"part-{i:02d}.txt").write_text("\n".join(body) + "\n")
    _code(root, calls, broken=True, where=where)
    (root / "job.yaml").write_text(JOB)
    return load_spec(root / "job.yaml")


def _code(root: Path, calls: Path, *, broken: bool, where: str) -> None:
    (root / "tw.py").write_text(CODE.format(calls=str(calls), broken=broken, where=where))


def _options(tmp_path: Path, **more: object) -> LocalOptions:
    return LocalOptions(workers=1, work_dir=str(tmp_path / "work"), **more)  # type: ignore[arg-type]


def _calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _fail_fix_resume(tmp_path: Path, where: str) -> tuple[JobSpec, list[str], list[str]]:
    """(spec, the failed run's calls, the resume's calls)."""
    calls = tmp_path / "calls.txt"
    spec = _job(tmp_path / "job", calls, where)
    (tmp_path / "work").mkdir()
    with pytest.raises(JobFailedError) as failed:
        run_local(spec, _options(tmp_path, run_id="s1"))
    assert "--resume s1" in str(failed.value)
    first = _calls(calls)
    calls.unlink()
    _code(tmp_path / "job", calls, broken=False, where=where)
    run_local(spec, _options(tmp_path, resume="s1"))
    assert not (tmp_path / "work" / "mrspec-topsteps-s1").exists()  # nothing kept now
    return spec, first, _calls(calls)


def _same_as_a_clean_run(spec: JobSpec, tmp_path: Path) -> None:
    clean_out = tmp_path / "clean-out"
    clean = dataclasses.replace(spec, output=dataclasses.replace(spec.output, prefix=str(clean_out)))
    run_local(clean, _options(tmp_path))
    resumed = Path(spec.output.prefix)
    parts = {p.name: p.read_bytes() for p in resumed.iterdir() if p.name.startswith("part-")}
    assert parts == {p.name: p.read_bytes() for p in clean_out.iterdir() if p.name.startswith("part-")}
    assert b"common" in b"".join(parts.values())


def test_a_failed_step_0_map_task_resumes_from_that_task(tmp_path: Path) -> None:
    spec, first, again = _fail_fix_resume(tmp_path, "map")

    files = sorted((tmp_path / "job" / "input").iterdir())
    tasks = [[s.uri for s in t.splits] for t in plan_job(spec).map_tasks]
    failed = next(i for i, uris in enumerate(tasks) if any(u.endswith("part-02.txt") for u in uris))
    assert 0 < failed < len(tasks) - 1  # finished tasks before it, unstarted ones after

    def lines_of(task_ids: range) -> list[str]:
        return [f"words {line}" for i in task_ids for uri in tasks[i]
                for line in Path(uri).read_text().splitlines()]

    # one worker in task order: the tasks before the failed one finished, none after ran
    assert [c for c in first if c.startswith("words")][: len(lines_of(range(failed)))] == lines_of(
        range(failed)
    )
    assert not [c for c in first if not c.startswith("words")]  # no later phase ran
    # the resume: step 0's map tasks from the failed one on, then the later phases whole
    assert [c for c in again if c.startswith("words")] == lines_of(range(failed, len(tasks)))
    counted = {w for f in files for w in f.read_text().split()}  # every word, once
    assert sorted(c for c in again if c.startswith("total")) == sorted(f"total {w}" for w in counted)
    assert sorted(c for c in again if c.startswith("by_count")) == sorted(f"by_count {w}" for w in counted)
    assert again.count("top") == 1
    _same_as_a_clean_run(spec, tmp_path)


def test_a_failed_last_step_resumes_without_running_a_finished_step_again(tmp_path: Path) -> None:
    spec, first, again = _fail_fix_resume(tmp_path, "top")

    assert first.count("top") == 1 and any(c.startswith("by_count") for c in first)
    # step 0 finished and step 1's map tasks left their results: only the reducer runs
    assert again == ["top"]
    _same_as_a_clean_run(spec, tmp_path)


def test_a_resume_over_a_changed_later_step_is_refused(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    spec = _job(tmp_path / "job", calls, "top")
    (tmp_path / "work").mkdir()
    with pytest.raises(JobFailedError):
        run_local(spec, _options(tmp_path, run_id="s2"))
    yaml = (tmp_path / "job" / "job.yaml").read_text().replace("tw:top, partitions: 1", "tw:top, partitions: 2")
    (tmp_path / "job" / "job.yaml").write_text(yaml)
    changed = with_overrides(load_spec(tmp_path / "job" / "job.yaml"), ())
    assert len(plan_job(changed).steps[1].reduce_tasks) == 2

    with pytest.raises(RefusedError, match="the partitioning and the task manifests changed"):
        run_local(changed, _options(tmp_path, resume="s2"))
