"""The typed task contracts: results, the manifest, worker outcomes and failure records
are built from real task runs and survive their JSON form (the form that crosses a
process or Lambda boundary and is stored under the work prefix) unchanged."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from local_jobs import WORDCOUNT, make_job, with_fan_in

from mrspec.local.outcome import Outcome
from mrspec.plan import plan_job
from mrspec.runtime import (
    Manifest,
    MapResult,
    MergeResult,
    ReduceResult,
    RunShape,
    TaskConfig,
    commit,
    load_results,
    prepare_output,
    result_from_json,
    run_map_task,
    run_merge_task,
    run_reduce_task,
)
from mrspec.runtime.exchange import Totals
from mrspec.runtime.failures import FailureRecord

BAD_LINES = WORDCOUNT + '''
def strict_mapper(line):
    if line.startswith("bad"):
        raise ValueError("a bad line")
    yield from mapper(line)
'''


def _wire(data: object) -> object:
    return json.loads(json.dumps(data))  # what a pipe, a Lambda response or S3 carries


def test_every_result_survives_its_json_form_and_its_stored_copy(tmp_path: Path) -> None:
    (tmp_path / "input").mkdir()
    for i in range(4):
        (tmp_path / "input" / f"{i}.txt").write_text(f"a b c{i}\nbad {i}\nb c\n")
    spec = make_job(tmp_path, BAD_LINES, mapper="strict_mapper", combiner="combiner",
                    partitions=2, split_size=8, bin_size=8, max_bad_records=10)
    config = TaskConfig.from_spec(spec)
    plan = with_fan_in(plan_job(spec), 2)
    prepare_output(config, overwrite=False)
    work, scratch = str(tmp_path / "work"), str(tmp_path / "scratch")
    maps = [run_map_task(config, t, work_prefix=work, scratch_dir=scratch) for t in plan.map_tasks]
    merges = [
        run_merge_task(config, t, work_prefix=work, scratch_dir=scratch)
        for level in plan.merge_levels for t in level.tasks
    ]
    reduces = [
        run_reduce_task(config, t.partition, work_prefix=work, scratch_dir=scratch, inputs=t.inputs)
        for t in plan.reduce_tasks
    ]
    assert len(maps) > 2 and merges and len(reduces) == 2
    for result in (*maps, *merges, *reduces):
        assert result_from_json(_wire(result.to_json())) == result  # type: ignore[arg-type]
    assert all(isinstance(m, MapResult) for m in maps)
    assert all(isinstance(m, MergeResult) for m in merges)
    assert all(isinstance(r, ReduceResult) for r in reduces)
    stored, missing = load_results(work, "map", len(maps))
    assert (stored, missing) == (maps, [])
    last = plan.merge_levels[-1]
    assert load_results(work, last.phase, len(last.tasks))[0] == merges[-len(last.tasks):]
    assert load_results(work, "reduce", 2)[0] == reduces

    # the merge level carries the map tasks' totals: compared with a direct sum
    direct: Counter[str] = Counter()
    for m in maps:
        direct.update(m.counters)
    top = Totals.sum(m.totals for m in merges[-len(last.tasks):])
    assert top.tasks == len(maps)
    for name in ("map_input_records", "map_input_bytes", "map_output_records", "bad_records"):
        assert top.counters[name] == direct[name], name  # merges add only combine counts
    assert top.bad_record_count == sum(m.bad_record_count for m in maps) == 4
    assert sorted(b.offset for m in maps for b in m.bad_records) == [7, 7, 7, 7]

    manifest = commit(config, work_prefix=work, shape=RunShape.of_plan(plan), started=0.0)
    written = json.loads((Path(spec.output.prefix) / "_SUCCESS").read_text())
    assert manifest.to_json() == written
    assert Manifest.from_json(written) == manifest
    good = {w for f in (tmp_path / "input").iterdir() for line in f.read_text().splitlines()
            if not line.startswith("bad") for w in line.split()}
    assert manifest.records == len(good) == 7
    assert [b.to_json() for b in manifest.bad_records] == written["bad_records"]


def test_outcomes_survive_the_pipe(tmp_path: Path) -> None:
    spec = make_job(tmp_path, WORDCOUNT, reducer=None)
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("x y\n")
    config = TaskConfig.from_spec(spec)
    task = plan_job(spec).map_tasks[0]
    result = run_map_task(config, task, work_prefix=str(tmp_path / "w"), scratch_dir=str(tmp_path))
    assert [p.records for p in result.outputs] == [2] and result.shuffle is None
    for outcome in (
        Outcome("ok", result),
        Outcome("failed", message="map task 0: too many bad records", hint="raise the limit"),
        Outcome("error", message="OSError: disk", hint="Traceback ..."),
        Outcome("memory"),
        Outcome("crashed", message="killed by SIGKILL"),
        Outcome("timeout", timeout_s=1.5),
    ):
        assert Outcome.from_json(_wire(outcome.to_json())) == outcome  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="status must be one of"):
        Outcome.from_json({"status": "fine"})


def test_failure_records_and_unknown_kinds() -> None:
    record = FailureRecord("merge-1", 3, 2, "OSError", "disk full", "Traceback ...", 1.5)
    assert FailureRecord.from_json(_wire(record.to_json())) == record  # type: ignore[arg-type]
    later = FailureRecord("reduce", 0, 1, "E", "m")
    first = FailureRecord("map", 9, 1, "E", "m")
    assert sorted([later, record, first], key=lambda r: r.order) == [first, later, record]
    with pytest.raises(ValueError, match="kind must be one of"):
        result_from_json({"kind": "sort", "task_id": 0})
