"""The bounded fan-in exchange: merge levels between map and reduce, on the local engine
and in process, each checked against a plain reference."""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from local_jobs import (
    HOT_KEY,
    WORDCOUNT,
    make_job,
    output_lines,
    reference_counts,
    run_in_process,
    tsv_counts,
    with_fan_in,
    write_words,
)

from mrspec.errors import JobFailedError
from mrspec.local.engine import LocalOptions, run_local
from mrspec.plan import JobPlan, plan_job
from mrspec.plan.exchange import fan_in
from mrspec.runtime import (
    RunShape,
    TaskConfig,
    TaskFailedError,
    commit,
    run_map_task,
    run_merge_task,
    run_reduce_task,
)
from mrspec.runtime.exchange import ExchangeReader
from mrspec.runtime.layout import result_uri, shuffle_uri
from mrspec.spec.model import JobSpec
from mrspec.storage.local import LocalStorage

FLAKY_MERGE = WORDCOUNT + '''
import os
from mrspec import api

def flaky_combiner(word, counts):
    # in a merge task no input object is current: fail the first merge attempt only
    marker = os.environ["MRSPEC_TEST_MARKER"]
    if api.input_uri() is None and not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("flaky merge")
    yield word, sum(counts)
'''


def tiny_job(root: Path, code: str, **kwargs: object) -> JobSpec:
    """One map task per input file."""
    return make_job(root, code, bin_size=1, **kwargs)  # type: ignore[arg-type]


def tiny_files(folder: Path, files: int, seed: int = 3) -> None:
    write_words(folder, files=files, lines=4, seed=seed, words=60)


def test_many_map_tasks_get_a_merge_level_on_the_local_engine(tmp_path: Path) -> None:
    tiny_files(tmp_path / "input", files=70)
    spec = tiny_job(tmp_path, WORDCOUNT, combiner="combiner", reduce_memory=128, partitions=4)
    plan = plan_job(spec)
    fan = fan_in(128)
    assert len(plan.map_tasks) == 70 > fan
    assert [len(m.tasks) for m in plan.merge_levels] == [-(-70 // fan)]
    summary = run_local(spec, LocalOptions(workers=2))
    assert summary["tasks"]["merge"] == len(plan.merge_levels[0].tasks)
    assert tsv_counts(spec.output.prefix) == reference_counts(tmp_path / "input")
    manifest = json.loads(Path(spec.output.prefix, "_SUCCESS").read_text())
    assert manifest["tasks"] == {"map": 70, "merge": [3], "reduce": 4}
    words = sum(reference_counts(tmp_path / "input").values())
    assert manifest["counters"]["map_output_records"] == words


@pytest.mark.parametrize("fan", [2, 3, 100])
def test_output_is_the_same_whatever_the_merge_levels(tmp_path: Path, fan: int) -> None:
    tiny_files(tmp_path / "input", files=9)
    spec = tiny_job(tmp_path, WORDCOUNT, combiner="combiner", partitions=5)
    manifest = run_in_process(spec, tmp_path / "work", fan=fan)
    plan = manifest["_plan"]
    expected_levels = {2: 3, 3: 1, 100: 0}[fan]  # 9 -> 5 -> 3 -> 2 objects; 9 -> 3
    assert len(plan.merge_levels) == expected_levels
    assert tsv_counts(spec.output.prefix) == reference_counts(tmp_path / "input")
    lines = sum(len(f.read_text().splitlines()) for f in (tmp_path / "input").iterdir())
    assert manifest["counters"]["map_input_records"] == lines
    assert manifest["tasks"]["map"] == 9


@pytest.mark.parametrize(("fan", "budget"), [(3, 1), (2, 200), (3, 150)])
def test_merge_tasks_cut_into_partition_ranges(tmp_path: Path, fan: int, budget: int) -> None:
    # A byte budget far below a group's input cuts each level's groups into partition
    # ranges (budget 1: one partition per task); the output and the counters (each map
    # task's totals counted once, however many range tasks read its object) match the
    # run without merges and the plain reference.
    tiny_files(tmp_path / "input", files=9)
    spec = tiny_job(tmp_path, WORDCOUNT, combiner="combiner", partitions=7)
    manifest = run_in_process(spec, tmp_path / "work", fan=fan, budget=budget)
    plan = manifest["_plan"]
    assert plan.merge_levels and plan.merge_levels[0].ranges > 1
    for level in plan.merge_levels:
        assert len(level.tasks) == level.groups * level.ranges
        assert all(t.inputs.count <= fan for t in level.tasks)
        spans = [t.partitions or (0, 7) for t in level.tasks[: level.ranges]]
        assert [p for first, stop in spans for p in range(first, stop)] == list(range(7))
    assert all(t.inputs.count <= fan for t in plan.reduce_tasks)
    assert tsv_counts(spec.output.prefix) == reference_counts(tmp_path / "input")
    plain = run_in_process(
        tiny_job(tmp_path / "plain", WORDCOUNT, inputs=str(tmp_path / "input"),
                 combiner="combiner", partitions=7),
        tmp_path / "plain-work",
    )
    for name in ("map_input_records", "map_input_bytes", "map_output_records", "output_records", "reduce_input_groups"):
        assert manifest["counters"][name] == plain["counters"][name], name
    lines = sum(len(f.read_text().splitlines()) for f in (tmp_path / "input").iterdir())
    assert manifest["counters"]["map_input_records"] == lines


def test_merged_objects_are_sorted_partitions_of_every_input(tmp_path: Path) -> None:
    tiny_files(tmp_path / "input", files=6)
    spec = tiny_job(tmp_path, WORDCOUNT, partitions=3)  # no combiner: every 1 travels
    work = tmp_path / "work"
    manifest = run_in_process(spec, work, fan=2, compress_shuffle=False)
    plan = manifest["_plan"]
    # keep the work objects: read the last level before the commit removed them
    assert not any((work / "work").rglob("L*-*"))
    spec2 = tiny_job(tmp_path / "again", WORDCOUNT, inputs=str(tmp_path / "input"), partitions=3)
    config = TaskConfig.from_spec(spec2)
    prefix = str(tmp_path / "keep")
    run_tasks(config, plan, prefix, str(tmp_path / "s"))
    last = plan.merge_levels[-1]
    seen: Counter[str] = Counter()
    for task in last.tasks:
        uri = shuffle_uri(prefix, last.level, task.task_id)
        reader = ExchangeReader(LocalStorage(), uri)
        for partition in range(3):
            keys = [k for block in reader.segment_blocks(partition, 4096) for k, vs in block for _ in vs]
            assert keys == sorted(keys)
            assert all(zlib.crc32(k.encode()) % 3 == partition for k in keys)
            seen.update(keys)
    covered = sum(
        ExchangeReader(LocalStorage(), shuffle_uri(prefix, last.level, t.task_id)).header.totals.tasks
        for t in last.tasks
    )
    assert covered == len(plan.map_tasks)
    assert dict(seen) == reference_counts(tmp_path / "input")


def test_a_hot_key_across_merge_levels(tmp_path: Path) -> None:
    folder = tmp_path / "input"
    folder.mkdir()
    sizes = [3000, 5, 0, 7000, 1, 20000, 2, 3]
    for i, n in enumerate(sizes):
        (folder / f"f{i}.txt").write_text(f"{n}\n")
    spec = tiny_job(tmp_path, HOT_KEY, partitions=2)
    run_in_process(spec, tmp_path / "work", fan=2)
    got = {line.split("\t")[0]: json.loads(line.split("\t")[1]) for line in output_lines(spec.output.prefix)}
    total = sum(sizes)
    assert got["hot"] == [total, sum(n * (n - 1) // 2 for n in sizes)]
    assert got["cold"] == [len(sizes), len(sizes)]


def test_empty_partitions_survive_merges(tmp_path: Path) -> None:
    folder = tmp_path / "input"
    folder.mkdir()
    for i in range(5):
        (folder / f"f{i}.txt").write_text("alpha beta\n")
    spec = tiny_job(tmp_path, WORDCOUNT, partitions=16)
    manifest = run_in_process(spec, tmp_path / "work", fan=2)
    assert tsv_counts(spec.output.prefix) == {"alpha": 5, "beta": 5}
    assert len(manifest["parts"]) == 16
    assert sum(1 for p in manifest["parts"] if p["records"] == 0) == 14


def test_a_failed_merge_task_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRSPEC_TEST_MARKER", str(tmp_path / "failed-once"))
    tiny_files(tmp_path / "input", files=40)
    spec = tiny_job(
        tmp_path, FLAKY_MERGE, combiner="flaky_combiner", reduce_memory=128, max_attempts=2
    )
    assert plan_job(spec).merge_levels
    summary = run_local(spec, LocalOptions(workers=2))
    assert (tmp_path / "failed-once").exists()
    assert summary["tasks"]["retried_attempts"] == 1
    assert tsv_counts(spec.output.prefix) == reference_counts(tmp_path / "input")


def test_commit_over_many_tasks_adds_up(tmp_path: Path) -> None:
    tiny_files(tmp_path / "input", files=64)
    spec = tiny_job(tmp_path, WORDCOUNT, combiner="combiner", partitions=20)
    manifest = run_in_process(spec, tmp_path / "work", fan=4)
    maps = manifest["_map_results"]
    direct: Counter[str] = Counter()
    for r in maps:
        direct.update(r.counters)
    for r in manifest["_reduce_results"]:
        direct.update(r.counters)
    for name in ("map_input_records", "map_output_records", "reduce_input_records", "output_records"):
        assert manifest["counters"][name] == direct[name], name
    assert manifest["records"] == len(reference_counts(tmp_path / "input"))
    assert manifest["tasks"] == {"map": 64, "merge": [16, 4], "reduce": 20}


@pytest.mark.parametrize("missing", ["map", "merge-1", "reduce"])
def test_commit_refuses_when_a_result_is_missing(tmp_path: Path, missing: str) -> None:
    tiny_files(tmp_path / "input", files=6)
    spec = tiny_job(tmp_path, WORDCOUNT, partitions=2)
    config = TaskConfig.from_spec(spec)
    plan = plan_job(spec)
    prefix = str(tmp_path / "w")
    plan = with_fan_in(plan, 100 if missing == "map" else 3)
    run_tasks(config, plan, prefix, str(tmp_path / "s"))
    Path(result_uri(prefix, missing, 1)).unlink()
    with pytest.raises(TaskFailedError, match=r"refusing to write a manifest"):
        commit(config, work_prefix=prefix, shape=RunShape.of_plan(plan), started=0.0)
    assert not Path(spec.output.prefix, "_SUCCESS").exists()


def test_commit_refuses_a_merge_level_that_misses_map_tasks(tmp_path: Path) -> None:
    tiny_files(tmp_path / "input", files=6)
    spec = tiny_job(tmp_path, WORDCOUNT, partitions=2)
    config = TaskConfig.from_spec(spec)
    plan = with_fan_in(plan_job(spec), 3)
    prefix = str(tmp_path / "w")
    run_tasks(config, plan, prefix, str(tmp_path / "s"))
    with pytest.raises(TaskFailedError, match=r"covers 6 of 7 map tasks"):
        commit(config, work_prefix=prefix, shape=RunShape(7, (2,)), started=0.0)
    assert not Path(spec.output.prefix, "_SUCCESS").exists()


def run_tasks(config: TaskConfig, plan: JobPlan, prefix: str, scratch: str) -> None:
    """Every task of the plan, in process, leaving the work objects for the test."""
    for task in plan.map_tasks:
        run_map_task(config, task, work_prefix=prefix, scratch_dir=scratch)
    for level in plan.merge_levels:
        for merge in level.tasks:
            run_merge_task(config, merge, work_prefix=prefix, scratch_dir=scratch)
    for t in plan.reduce_tasks:
        run_reduce_task(config, t.partition, work_prefix=prefix, scratch_dir=scratch, inputs=t.inputs)


def test_local_engine_refuses_to_commit_without_every_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delete a reduce result as the engine hands it to the commit: the engine's own
    commit must refuse (the check is not only the task pool's)."""
    import mrspec.local.engine as engine

    tiny_files(tmp_path / "input", files=4)
    spec = tiny_job(tmp_path, WORDCOUNT, partitions=3)
    real = engine._Phases.step

    def lossy(*args: Any, **kwargs: Any) -> Any:
        run = real(*args, **kwargs)
        return dataclasses.replace(run, reduce_results=run.reduce_results[1:])

    monkeypatch.setattr(engine._Phases, "step", lossy)
    with pytest.raises(JobFailedError, match=r"2 of 3 reduce task results"):
        run_local(spec, LocalOptions(workers=1))
    assert not Path(spec.output.prefix, "_SUCCESS").exists()
