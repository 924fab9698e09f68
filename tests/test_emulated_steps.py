"""Jobs with steps on emulated AWS: one stack and one state machine run every step, and the
output equals the local engine's byte for byte and a plain-Python computation.

The 3-step job is ``test_local_steps.THREE``: a reduce into 40 parts, a map-only step in
task form over those 40 parts, and a step whose 40 map tasks pass the fan-in of its
128 MB reducers, so it has a merge level (the exchange of a later step on AWS).
"""

from __future__ import annotations

import collections
import json
from dataclasses import replace
from pathlib import Path

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from test_driver_lifecycle import assert_nothing_left
from test_emulated_jobs import (
    OUT_BUCKET,
    assert_same_steps,
    emulated_options,
    local_output,
    s3_output,
    upload_input,
)
from test_local_steps import LINES, THREE, counts, make

from mrspec.aws.driver import run_on_aws
from mrspec.aws.watch import Snapshot
from mrspec.errors import JobFailedError
from mrspec.spec.loader import load_spec


def by_count() -> list[list[str]]:
    """Plain Python: each count, with the words seen that many times joined by ``+``."""
    words: dict[str, list[str]] = collections.defaultdict(list)
    for word, n in counts().items():
        words[str(n)].append(word)
    return sorted([k, "+".join(sorted(v))] for k, v in words.items())


@pytest.mark.slow  # about 125 task invocations, and 80 local task processes
def test_three_steps_on_emulated_aws_equal_the_local_engine_and_plain_python(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "job").mkdir()
    spec = load_spec(make(tmp_path / "job", THREE))
    spec = replace(spec, limits=replace(spec.limits, max_concurrency=4))
    inputs = upload_input(emulated_aws, spec)
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    output = f"s3://{OUT_BUCKET}/three/out/"
    seen: list[Snapshot] = []

    rc = run_on_aws(spec, emulated_options(tmp_path, input_prefixes=inputs,
                                           output_prefix=output, on_progress=seen.append))

    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["outcome"] == "succeeded"
    # one execution ran every step's phases in order: the bars are named as locally
    phases = ["steps[0].map", "steps[0].reduce", "steps[1].map", "steps[2].map",
              "steps[2].merge-1", "steps[2].reduce"]
    assert [p["phase"] for p in summary["phases"]] == phases
    assert [p["total"] for p in summary["phases"]] == [1, 40, 40, 40, 2, 2]
    assert all(p["succeeded"] == p["total"] for p in summary["phases"])
    assert [p.phase for p in seen[-1].phases] == phases
    cloud = s3_output(emulated_aws, output)
    # only the last step's parts reach the output: the steps before stay in the work bucket
    assert sorted(cloud) == ["_SUCCESS", "part-00000", "part-00001"]
    rows = sorted(json.loads(line) for name in ("part-00000", "part-00001")
                  for line in cloud[name].decode().splitlines())
    assert rows == by_count()
    local = local_output(spec, tmp_path / "local-out")
    assert {n: local[n] for n in ("part-00000", "part-00001")} == {
        n: cloud[n] for n in ("part-00000", "part-00001")}
    manifest, local_manifest = json.loads(cloud["_SUCCESS"]), json.loads(local["_SUCCESS"])
    assert_same_steps(manifest, local_manifest)
    steps = manifest["steps"]
    assert [s["tasks"] for s in steps] == [{"map": 1, "merge": 0, "reduce": 40},
                                           {"map": 40, "merge": 0, "reduce": 0},
                                           {"map": 40, "merge": 2, "reduce": 2}]
    assert steps[0]["counters"]["map_input_records"] == len(LINES)
    assert steps[1]["user_counters"] == {"swapped": len(counts())}
    assert steps[2]["counters"]["output_records"] == len(by_count())
    # the working bucket (every step's shuffle and intermediate parts) is gone
    assert_nothing_left(emulated_aws, {"emulated-input", OUT_BUCKET})


FAILING = """\
apiVersion: mrspec/v1
name: fails-later
input: {prefix: input/}
steps:
  - map: {entrypoint: job:words, memory: 256, timeout: 30}
    reduce: {entrypoint: job:total, partitions: 2, memory: 256, timeout: 30}
  - map: {entrypoint: job:explode, memory: 256, timeout: 30}
output: {prefix: out/}
limits: {max_attempts: 2, max_concurrency: 2}
"""

EXPLODE = """

def explode(record):
    raise RuntimeError(f"step 1 exploded on {record!r}")
"""


def test_a_later_step_failing_names_its_step_and_leaves_no_output(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    (tmp_path / "job").mkdir()
    path = make(tmp_path / "job", FAILING)
    with (path.parent / "job.py").open("a") as code:
        code.write(EXPLODE)
    spec = load_spec(path)
    inputs = upload_input(emulated_aws, spec)
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    output = f"s3://{OUT_BUCKET}/fails/out/"

    with pytest.raises(JobFailedError) as failed:
        run_on_aws(spec, emulated_options(tmp_path, input_prefixes=inputs, output_prefix=output))

    message = str(failed.value)
    assert "steps[1].map" in message and "step 1 exploded on" in message
    assert "/aws/lambda/mrspec-fails-later-" in failed.value.hint  # the failed step's logs
    assert failed.value.hint.count("/aws/lambda/") == 1 and "-map1)" in failed.value.hint
    # the failed tasks ran in step 1's map function (the commit function only re-raises)
    failed_calls = [i.function_name for i in emulated_aws.lambdas.invocations
                    if i.errored and not i.function_name.endswith("-commit")]
    assert failed_calls and all(name.endswith("-map1") for name in failed_calls)
    assert s3_output(emulated_aws, output) == {}
    assert_nothing_left(emulated_aws, {"emulated-input", OUT_BUCKET})


TOPWORDS = Path(__file__).resolve().parents[1] / "specs" / "topwords" / "job.yaml"


@pytest.mark.slow  # a detached run and its attach, and a local run
def test_a_detached_run_with_steps_is_attached_and_finished_from_its_saved_plan(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from aws_emulation import wait_for_execution
    from rich.console import Console

    from mrspec.aws.driver import attach_run
    from mrspec.aws.state import StateStore

    spec = load_spec(TOPWORDS)
    inputs = upload_input(emulated_aws, spec)
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    output = f"s3://{OUT_BUCKET}/top/out/"
    quiet = Console(file=io.StringIO())
    assert run_on_aws(spec, emulated_options(tmp_path, input_prefixes=inputs, output_prefix=output,
                                             run_id="dt", detach=True, console=quiet)) == 0
    record = StateStore(tmp_path / "state").find("dt")
    assert record is not None
    ended = wait_for_execution(emulated_aws.client("stepfunctions"), record.execution_arn)
    assert ended["status"] == "SUCCEEDED"

    # a new process would restore the run from the state directory alone
    assert attach_run("dt", emulated_options(tmp_path, run_id="dt")) == 0

    summary = json.loads(capsys.readouterr().out)
    assert [p["phase"] for p in summary["phases"]] == [
        "steps[0].map", "steps[0].reduce", "steps[1].map", "steps[1].reduce"]
    assert [s["step"] for s in summary["steps"]] == [0, 1]
    cloud = s3_output(emulated_aws, output)
    local = local_output(spec, tmp_path / "local-out")
    assert cloud["part-00000"] == local["part-00000"]
    assert_nothing_left(emulated_aws, {"emulated-input", OUT_BUCKET})


def test_failure_records_of_every_step_share_one_folder_under_key_safe_names() -> None:
    from mrspec.runtime.layout import failure_uri, failures_folder

    work = "s3://bucket/runs/r1"
    assert failure_uri(work, "steps[1].merge-2", 7) == f"{work}/failures/step-1.merge-2-00007.json"
    assert failure_uri(work, "map", 3) == f"{work}/failures/map-00003.json"  # as before
    assert failure_uri(work, "steps[0].map", 3).startswith(failures_folder(work))
