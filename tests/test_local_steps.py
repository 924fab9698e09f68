"""Jobs with ``steps`` on the local engine: the plan's phases per step, the records a later
step's mapper gets, per-step counters, and output equal to a plain-Python computation."""

from __future__ import annotations

import collections
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mrspec.errors import JobFailedError
from mrspec.local.engine import LocalOptions, run_local
from mrspec.plan import plan_job
from mrspec.spec.loader import load_spec

# step 0 counts words into 40 parts, step 1 (map-only, task form) turns each (word, count)
# into (count, word), step 2 gathers the words of each count: 40 map tasks read the 40
# parts, more than the fan-in of a 128 MB reduce (32), so step 2 has a merge level.
THREE = """\
apiVersion: mrspec/v1
name: three-steps
input:
  prefix: input/
steps:
  - map: {entrypoint: job:words, combiner: job:total, memory: 256}
    reduce: {entrypoint: job:total, partitions: 40, memory: 128}
  - map: {entrypoint: job:swap, form: task, memory: 256}
  - map: {entrypoint: job:same, memory: 256}
    reduce: {entrypoint: job:gather, partitions: 2, memory: 128}
output:
  prefix: out/
  format: jsonl
params:
  sep: "+"
"""

# step 0 is map-only: its 2 map tasks' outputs are the 2 parts step 1 reads
TWO = """\
apiVersion: mrspec/v1
name: two-steps
input:
  prefix: input/
  split_size: 64
steps:
  - map: {entrypoint: job:words, memory: 256, bin_size: 256}
  - map: {entrypoint: job:same, memory: 256}
    reduce: {entrypoint: job:total, partitions: 3, memory: 256}
output:
  prefix: out/
"""

CODE = """
from mrspec import api

def words(line):
    for word in line.split():
        yield word, 1

def total(key, values):
    yield key, sum(values)

def swap(pairs):
    for record in pairs:
        assert type(record) is tuple and len(record) == 2, record
        word, count = record
        api.increment("swapped")
        yield str(count), word

def same(record):
    assert type(record) is tuple, record
    yield record

def gather(key, words):
    yield key, api.params()["sep"].join(sorted(words))
"""

LINES = [f"w{i % 7} x{i % 3} y{i % 11} z{i}" for i in range(60)]


def make(tmp_path: Path, spec: str) -> Path:
    (tmp_path / "input").mkdir()
    half = len(LINES) // 2
    (tmp_path / "input" / "a.txt").write_text("\n".join(LINES[:half]) + "\n")
    (tmp_path / "input" / "b.txt").write_text("\n".join(LINES[half:]) + "\n")
    (tmp_path / "job.py").write_text(textwrap.dedent(CODE))
    (tmp_path / "job.yaml").write_text(spec)
    return tmp_path / "job.yaml"


def output(folder: Path) -> list[list[Any]]:
    manifest = json.loads((folder / "_SUCCESS").read_text())
    rows = [json.loads(line) for p in manifest["parts"]
            for line in Path(p["uri"]).read_text().splitlines()]
    return sorted(rows)


def counts() -> collections.Counter[str]:
    return collections.Counter(w for line in LINES for w in line.split())


@pytest.mark.slow  # 80 task processes
def test_three_steps_equal_plain_python(tmp_path: Path) -> None:
    spec = load_spec(make(tmp_path, THREE))
    plan = plan_job(spec)
    assert [len(s.map_tasks) for s in plan.steps] == [1, 40, 40]
    assert [s.phases() for s in plan.steps] == [
        ["map", "reduce"], ["map"], ["map", "merge-1", "reduce"]]
    phases: list[str] = []
    summary = run_local(spec, LocalOptions(workers=2, work_dir=str(tmp_path)),
                        lambda phase, event, done, total: phases.append(phase)
                        if event == "start" else None)
    assert phases == ["plan", "steps[0].map", "steps[0].reduce", "steps[1].map",
                      "steps[2].map", "steps[2].merge-1", "steps[2].reduce", "commit"]
    by_count: dict[str, list[str]] = collections.defaultdict(list)
    for word, n in counts().items():
        by_count[str(n)].append(word)
    assert output(tmp_path / "out") == sorted([k, "+".join(sorted(v))] for k, v in by_count.items())
    # per-step counters, and their totals
    steps = summary["steps"]
    assert steps[0]["counters"]["map_input_records"] == len(LINES)
    assert steps[1]["counters"]["map_input_records"] == len(counts())
    assert steps[1]["user_counters"] == {"swapped": len(counts())} == summary["user_counters"]
    assert steps[2]["counters"]["output_records"] == len(by_count) == summary["records"]["output"]
    assert [s["tasks"] for s in steps] == [{"map": 1, "merge": 0, "reduce": 40},
                                           {"map": 40, "merge": 0, "reduce": 0},
                                           {"map": 40, "merge": 2, "reduce": 2}]
    assert summary["counters"]["map_input_records"] == sum(
        s["counters"]["map_input_records"] for s in steps)
    manifest = json.loads((tmp_path / "out" / "_SUCCESS").read_text())
    assert manifest["steps"] == steps
    # only the last step's parts are in the output; the work folder is gone
    assert len(list((tmp_path / "out").iterdir())) == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("mrspec-")] == []


def test_a_map_only_first_step(tmp_path: Path) -> None:
    spec = load_spec(make(tmp_path, TWO))
    plan = plan_job(spec)
    assert [len(s.map_tasks) for s in plan.steps] == [len(plan.map_tasks), len(plan.map_tasks)]
    assert len(plan.map_tasks) > 1
    summary = run_local(spec, LocalOptions(workers=2, work_dir=str(tmp_path)))
    got = {}
    for part in sorted((tmp_path / "out").glob("part-*")):
        for line in part.read_text().splitlines():
            key, value = line.split("\t")
            got[key] = int(value)
    assert got == dict(counts())
    assert summary["steps"][1]["counters"]["map_input_records"] == sum(counts().values())


@pytest.mark.parametrize(
    "spec",
    [pytest.param(THREE, marks=pytest.mark.slow, id="three"),
     pytest.param(TWO, id="two")],
)
def test_a_failing_later_step_leaves_no_output(tmp_path: Path, spec: str) -> None:
    job = make(tmp_path, spec)
    (tmp_path / "job.py").write_text(textwrap.dedent(CODE).replace(
        "def same(record):\n", "def same(record):\n    raise ValueError('no')\n"))
    from mrspec.errors import MrspecError

    with pytest.raises(MrspecError, match="no") as failed:
        run_local(load_spec(job), LocalOptions(workers=2, work_dir=str(tmp_path)))
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    # the work folder is kept for --resume (tests/test_local_resume_steps.py), nothing else
    (kept,) = [p for p in tmp_path.iterdir() if p.name.startswith("mrspec-")]
    assert (kept / "resume.json").is_file() and "--resume" in str(failed.value)


def test_a_bad_record_in_a_later_step_is_located_by_its_index(tmp_path: Path) -> None:
    job = make(tmp_path, TWO)
    (tmp_path / "job.py").write_text(textwrap.dedent(CODE).replace(
        "def same(record):\n",
        "def same(record):\n    if record[0] == 'z7':\n        raise ValueError('bad z7')\n"))
    from mrspec.errors import MrspecError

    with pytest.raises(MrspecError) as caught:
        run_local(load_spec(job), LocalOptions(workers=2, work_dir=str(tmp_path)))
    message = str(caught.value)
    assert "bad record in" in message and "/output/part-" in message
    # z7 is on line 8 of a.txt: its 4th word, the 32nd pair of map task 0's part
    assert " at record 31: ValueError: bad z7" in message, message


HOARD = """\
apiVersion: mrspec/v1
name: hoard-steps
input:
  prefix: input/
steps:
  - map: {entrypoint: job:words, memory: 256}
    reduce: {entrypoint: job:total, partitions: 2, memory: 256}
  - map: {entrypoint: job:%s, memory: 160}
    reduce: {entrypoint: job:%s, partitions: 2, memory: 160}
output:
  prefix: out/
limits:
  max_attempts: 1
"""

HOARDERS = """

def hoard_map(record):
    held = [bytearray(1024 * 1024) for _ in range(400)]  # 400 MB, over a 160 MB cap
    yield record[0], len(held)

def hoard_reduce(key, values):
    held = [bytearray(1024 * 1024) for _ in range(400)]
    yield key, len(held)
"""


@pytest.mark.parametrize(("mapper", "reducer", "phase"), [
    ("hoard_map", "total", "map"), ("same", "hoard_reduce", "reduce")])
def test_a_later_steps_task_over_its_memory_cap_names_that_steps_setting(
    tmp_path: Path, mapper: str, reducer: str, phase: str
) -> None:
    path = make(tmp_path, HOARD % (mapper, reducer))
    (tmp_path / "job.py").write_text(textwrap.dedent(CODE) + HOARDERS)
    with pytest.raises(JobFailedError) as caught:
        run_local(load_spec(path), LocalOptions(workers=1, work_dir=str(tmp_path)))
    message = str(caught.value)  # the message and its hint
    assert "exceeded its memory cap of 160 MB" in message
    # the setting the user edits is step 1's, where the spec has it; a map task of step 1
    # reads one of step 0's 2 parts, so more of them is the other way to shrink it
    assert f"raise steps[1].{phase}.memory in the spec" in message
    if phase == "map":
        assert "raise steps[0].reduce.partitions or add a combiner" in message
    assert f" {phase}.memory" not in message.replace(f"steps[1].{phase}.memory", "")
