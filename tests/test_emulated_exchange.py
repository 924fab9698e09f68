"""Merge levels on emulated AWS: the same output as the local engine, and the commit's
refusal to write ``_SUCCESS`` when a task's result is missing.

The plan's fan-in is forced to 2 (``mrspec.plan.planner.fan_in``) so six tiny map tasks
give two merge levels (6 -> 3 -> 2 objects): the real planner, lowering, state machine
(one Distributed Map per level), merge Lambda and commit, with tiny data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from test_driver_lifecycle import assert_nothing_left
from test_emulated_jobs import OUT_BUCKET, emulated_options, local_output, s3_output, upload_input

from mrspec.aws.driver import run_on_aws
from mrspec.errors import JobFailedError
from mrspec.plan.planner import plan_job
from mrspec.spec.loader import load_spec

JOB = """\
apiVersion: mrspec/v1
name: exchange
input: {prefix: input/, format: text, split_size: 1000, }
map: {entrypoint: wc:mapper, combiner: wc:reducer, memory: 256, timeout: 30, bin_size: 1000}
reduce: {entrypoint: wc:reducer, partitions: 3, memory: 256, timeout: 30}
output: {prefix: out/}
limits: {max_concurrency: 4, max_attempts: 1}
"""

CODE = """\
def mapper(line):
    for word in line.split():
        yield word, 1

def reducer(word, counts):
    yield word, sum(counts)
"""

WORDS = ["alpha", "beta", "gamma", "delta", "hot", "hot", "hot"]


@pytest.fixture
def small_fan_in(monkeypatch: pytest.MonkeyPatch) -> None:
    import mrspec.plan.planner as planner

    monkeypatch.setattr(planner, "fan_in", lambda memory_mb: 2)


def _job(tmp_path: Path) -> Path:
    folder = tmp_path / "job"
    (folder / "input").mkdir(parents=True)
    for i in range(6):  # ~600 bytes each, one map task per file
        lines = [" ".join(WORDS[(i * j + k) % len(WORDS)] for k in range(i + 2)) for j in range(30)]
        (folder / "input" / f"part{i}.txt").write_text("\n".join(lines) + "\n")
    (folder / "wc.py").write_text(CODE)
    (folder / "job.yaml").write_text(JOB)
    return folder / "job.yaml"


@pytest.mark.slow
@pytest.mark.parametrize("ranges", [1, 3])
def test_merge_levels_on_emulated_aws_match_the_local_engine(
    emulated_aws: EmulatedAws, tmp_path: Path, small_fan_in: None, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, ranges: int,
) -> None:
    import mrspec.plan.planner as planner

    if ranges > 1:  # a byte budget below one map task's input: one partition per merge task
        monkeypatch.setattr(planner, "MERGE_TASK_BYTES", 1)
    spec = load_spec(_job(tmp_path))
    plan = plan_job(spec)
    assert len(plan.map_tasks) == 6
    assert [(m.groups, m.ranges) for m in plan.merge_levels] == [(3, ranges), (2, ranges)]
    merge_tasks = [3 * ranges, 2 * ranges]
    inputs = upload_input(emulated_aws, spec)
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    output = f"s3://{OUT_BUCKET}/exchange/out/"

    rc = run_on_aws(spec, emulated_options(tmp_path, input_prefixes=inputs, output_prefix=output))

    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["outcome"] == "succeeded"
    merges = [i for i in emulated_aws.lambdas.invocations if i.function_name.endswith("-merge")]
    assert len(merges) == sum(merge_tasks)
    cloud = s3_output(emulated_aws, output)
    local = local_output(spec, tmp_path / "local-out")
    parts = sorted(n for n in local if n.startswith("part-"))
    assert len(parts) == 3 and sorted(n for n in cloud if n.startswith("part-")) == parts
    for name in parts:
        assert cloud[name] == local[name], name
    words: dict[str, int] = {}
    for path in (tmp_path / "job" / "input").iterdir():
        for word in path.read_text().split():
            words[word] = words.get(word, 0) + 1
    got = dict(line.split("\t") for n in parts for line in cloud[n].decode().splitlines())
    assert {k: int(v) for k, v in got.items()} == words
    manifest = json.loads(cloud["_SUCCESS"])
    assert manifest["tasks"] == {"map": 6, "merge": merge_tasks, "reduce": 3}
    assert manifest["counters"]["map_input_records"] == 6 * 30  # each map task counted once
    assert_nothing_left(emulated_aws, {"emulated-input", OUT_BUCKET})


@pytest.fixture
def lost_result() -> Iterator[list[str]]:
    """S3 silently drops the PUT of reduce task 1's result (as if it never arrived)."""
    from botocore.client import BaseClient

    dropped: list[str] = []
    original = BaseClient._make_api_call

    def dropping(self: Any, operation: str, params: Any) -> Any:
        key = str(params.get("Key", "")) if isinstance(params, dict) else ""
        if operation == "PutObject" and key.endswith("/results/reduce-00001.json"):
            dropped.append(key)
            return {}
        return original(self, operation, params)

    BaseClient._make_api_call = dropping  # type: ignore[method-assign]
    try:
        yield dropped
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


@pytest.mark.slow
def test_the_commit_refuses_when_a_reduce_result_is_missing_on_emulated_aws(
    emulated_aws: EmulatedAws, tmp_path: Path, small_fan_in: None, lost_result: list[str]
) -> None:
    spec = load_spec(_job(tmp_path))
    inputs = upload_input(emulated_aws, spec)
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    output = f"s3://{OUT_BUCKET}/exchange/out/"

    with pytest.raises(JobFailedError, match=r"2 of 3 reduce task results are present"):
        run_on_aws(spec, emulated_options(tmp_path, input_prefixes=inputs, output_prefix=output))

    assert lost_result  # the reducer ran and its result was lost
    assert "_SUCCESS" not in s3_output(emulated_aws, output)
