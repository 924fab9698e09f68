"""Input at scale on emulated AWS: thousands of tiny objects run (their map items are
shard references) and match the local engine; a job over IAM's limits is refused before
anything exists."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from local_jobs import WORDCOUNT, make_job, reference_counts
from test_driver_lifecycle import _options, assert_nothing_left
from test_emulated_jobs import emulated_options, local_output, s3_output

from mrspec.aws.driver import run_on_aws
from mrspec.errors import ExitCode, RefusedError
from mrspec.plan import items, plan_job

TINY_OBJECTS = 3000


@pytest.mark.slow
def test_thousands_of_tiny_objects_run_from_manifest_shards_and_match_the_local_engine(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "input"
    folder.mkdir()
    s3 = emulated_aws.client("s3")
    s3.create_bucket(Bucket="tiny-in")
    s3.create_bucket(Bucket="tiny-out")
    for i in range(TINY_OBJECTS):
        body = f"w{i % 13} tiny object {i % 5}\n".encode() if i % 50 else b""
        name = f"an-hourly-export-with-a-long-descriptive-name-{i:05d}.txt"
        (folder / name).write_bytes(body)
        s3.put_object(Bucket="tiny-in", Key=f"events/2026/12/01/{name}", Body=body)
    spec = make_job(tmp_path, WORDCOUNT, combiner="combiner", bin_size=48 * 1024, partitions=2)
    spec = replace(spec, limits=replace(spec.limits, max_concurrency=2))
    cloud_spec = replace(
        spec,
        input=replace(spec.input, prefixes=("s3://tiny-in/events/",)),
        output=replace(spec.output, prefix="s3://tiny-out/wc/"),
    )
    plan = plan_job(cloud_spec)
    assert 2 <= len(plan.map_tasks) <= 3
    assert "shard" in items.map_item(plan.map_tasks[0])  # its splits would not fit inline

    assert run_on_aws(cloud_spec, emulated_options(tmp_path)) == 0

    summary = json.loads(capsys.readouterr().out)
    assert summary["outcome"] == "succeeded"
    cloud = s3_output(emulated_aws, "s3://tiny-out/wc/")
    local = local_output(spec, tmp_path / "local-out")
    parts = sorted(n for n in local if n.startswith("part-"))
    assert sorted(n for n in cloud if n.startswith("part-")) == parts
    assert all(cloud[n] == local[n] for n in parts)
    counted = {}
    for name in parts:
        for line in cloud[name].decode().splitlines():
            word, count = line.split("\t")
            counted[word] = int(count)
    assert counted == reference_counts(folder)
    assert json.loads(cloud["_SUCCESS"])["counters"]["map_input_records"] == sum(
        1 for i in range(TINY_OBJECTS) if i % 50
    )
    assert_nothing_left(emulated_aws, {"tiny-in", "tiny-out"})


def test_a_job_over_iams_limits_is_refused_before_anything_exists(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    s3 = emulated_aws.client("s3")
    buckets = {f"in-{i:04d}" for i in range(400)}
    for bucket in sorted(buckets):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="d/x.txt", Body=b"x\n")
    s3.create_bucket(Bucket="out-bucket")
    spec = make_job(tmp_path, WORDCOUNT)
    spec = replace(
        spec,
        input=replace(spec.input, prefixes=tuple(f"s3://{b}/d/" for b in sorted(buckets))),
        output=replace(spec.output, prefix="s3://out-bucket/result/"),
    )
    with pytest.raises(RefusedError, match="do not fit IAM's limits") as refused:
        run_on_aws(spec, _options(tmp_path))
    assert refused.value.exit_code == ExitCode.REFUSED
    assert "input.prefix" in str(refused.value.hint)
    assert_nothing_left(emulated_aws, buckets | {"out-bucket"})
