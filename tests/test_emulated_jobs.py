"""Every example job end to end on emulated AWS, checked against the local engine.

For each ``specs/<job>/job.yaml``: its bundled input is uploaded to moto's S3, the job is
compiled with ``s3://`` input and output (the moto-accepted state machine variant), its
StackModel created in moto by the boto3 provisioner, and the real deployment zip's
handlers run in-process (tests/aws_emulation.py) under the driver. The output in moto's
S3 must equal, part by part and byte for byte, what ``mrspec.local`` writes for the same
job and input; afterwards moto holds nothing of the job but its output.
"""

from __future__ import annotations

import collections
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from test_driver_lifecycle import assert_nothing_left

from mrspec.aws.driver import AwsRunOptions, run_on_aws
from mrspec.aws.watch import Backoff
from mrspec.errors import JobFailedError
from mrspec.spec.loader import load_spec
from mrspec.spec.model import JobSpec

ROOT = Path(__file__).resolve().parents[1]
# every example, jobs with steps (topwords, freqdist: one state machine) included
EXAMPLES = sorted(p.parent.name for p in (ROOT / "specs").glob("*/job.yaml"))
IN_BUCKET, OUT_BUCKET = "emulated-input", "emulated-output"


def upload_input(aws: EmulatedAws, spec: JobSpec) -> tuple[str, ...]:
    """Upload each local input prefix under the same path relative to the spec's folder."""
    assert spec.source is not None
    base = spec.source.parent
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=IN_BUCKET)
    prefixes = []
    for prefix in spec.input.prefixes:
        folder = Path(prefix)
        rel = folder.relative_to(base).as_posix().strip("/")
        prefixes.append(f"s3://{IN_BUCKET}/{spec.name}/{rel}/")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = f"{spec.name}/{rel}/{path.relative_to(folder).as_posix()}"
            s3.put_object(Bucket=IN_BUCKET, Key=key, Body=path.read_bytes())
    return tuple(prefixes)


def s3_output(aws: EmulatedAws, prefix: str) -> dict[str, bytes]:
    s3 = aws.client("s3")
    bucket, _, key_prefix = prefix[len("s3://") :].partition("/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key_prefix).get("Contents", [])
    return {
        o["Key"][len(key_prefix) :]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in listed
    }


def local_output(spec: JobSpec, out: Path) -> dict[str, bytes]:
    from mrspec.local.engine import LocalOptions, run_local

    local_spec = replace(spec, output=replace(spec.output, prefix=str(out)))
    run_local(local_spec, LocalOptions(workers=2))
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def emulated_options(tmp_path: Path, **overrides: Any) -> AwsRunOptions:
    import boto3

    values: dict[str, Any] = {
        "provisioner": "boto3",
        "emulator": True,
        "state_dir": tmp_path / "state",
        "session": boto3.Session(region_name="us-east-1"),
        "poll": Backoff(initial=0.05, maximum=0.25),
        "json_output": True,
        "handle_signals": False,
    }
    values.update(overrides)
    return AwsRunOptions(**values)


def emulated_spec(spec: JobSpec) -> JobSpec:
    """Small MaxConcurrency keeps moto's thread count (and the run time) down."""
    return replace(spec, limits=replace(spec.limits, max_concurrency=4))


@pytest.mark.slow
@pytest.mark.parametrize("job", EXAMPLES)
def test_example_job_on_emulated_aws_matches_the_local_engine(
    emulated_aws: EmulatedAws, tmp_path: Path, job: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = emulated_spec(load_spec(ROOT / "specs" / job / "job.yaml"))
    inputs = upload_input(emulated_aws, spec)
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    output = f"s3://{OUT_BUCKET}/{spec.name}/out/"

    rc = run_on_aws(
        spec, emulated_options(tmp_path, input_prefixes=inputs, output_prefix=output)
    )

    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["outcome"] == "succeeded" and summary["teardown"] == "destroyed"
    assert summary["estimate_usd"] > 0 and summary["actual_usd"] > 0
    cloud = s3_output(emulated_aws, output)
    local = local_output(spec, tmp_path / "local-out")
    parts = sorted(name for name in local if name.startswith("part-"))
    assert parts, "the local engine wrote no parts"
    assert sorted(n for n in cloud if n.startswith("part-")) == parts
    for name in parts:
        assert cloud[name] == local[name], f"{job}: {name} differs"
    cloud_manifest = json.loads(cloud["_SUCCESS"])
    local_manifest = json.loads(local["_SUCCESS"])
    # every counter agrees except shuffle_bytes: Lambda compresses its shuffle objects,
    # the local engine's stay raw on this machine
    cloud_counters, local_counters = dict(cloud_manifest["counters"]), dict(local_manifest["counters"])
    cloud_shuffle = cloud_counters.pop("shuffle_bytes", 0)
    local_shuffle = local_counters.pop("shuffle_bytes", 0)
    assert 0 < cloud_shuffle < local_shuffle or cloud_shuffle == local_shuffle == 0  # map-only
    assert cloud_counters == local_counters
    assert cloud_manifest.get("user_counters") == local_manifest.get("user_counters")
    if "steps" in cloud_manifest:  # the run's counters are the steps' totals, as locally
        totals: collections.Counter[str] = collections.Counter()
        for step in cloud_manifest["steps"]:
            totals.update(step["counters"])
        assert summary["counters"] == dict(totals)
        assert summary["steps"] == cloud_manifest["steps"]
    else:
        assert summary["counters"] == cloud_manifest["counters"]
    assert_same_steps(cloud_manifest, local_manifest)
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})


def assert_same_steps(cloud: dict[str, Any], local: dict[str, Any]) -> None:
    """A job with steps: ``_SUCCESS`` lists each step's tasks and counters on AWS as the
    local engine does (shuffle_bytes apart: Lambda compresses its shuffle)."""
    assert ("steps" in cloud) == ("steps" in local)
    for mine, theirs in zip(cloud.get("steps", []), local.get("steps", []), strict=True):
        mine, theirs = dict(mine), dict(theirs)
        mine["counters"] = {k: v for k, v in mine["counters"].items() if k != "shuffle_bytes"}
        theirs["counters"] = {k: v for k, v in theirs["counters"].items() if k != "shuffle_bytes"}
        assert mine == theirs


FAILING_MAPPER = '''
def mapper(lines):
    for line in lines:
        if "boom" in line:
            raise RuntimeError(f"mapper exploded on {line!r}")
        yield line, 1
'''

FAILING_SPEC = """\
apiVersion: mrspec/v1
name: failing
input: {prefix: input/, format: text}
map: {entrypoint: failing:mapper, form: task, memory: 256, timeout: 30}
output: {prefix: out/}
limits: {max_attempts: 2, max_concurrency: 2}
"""


def test_a_mapper_failing_beyond_its_retries_fails_the_run_with_its_error(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    folder = tmp_path / "job"
    (folder / "input").mkdir(parents=True)
    (folder / "input" / "a.txt").write_text("fine\nboom\n")
    (folder / "failing.py").write_text(FAILING_MAPPER)
    (folder / "job.yaml").write_text(FAILING_SPEC)
    spec = load_spec(folder / "job.yaml")
    inputs = upload_input(emulated_aws, spec)
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    output = f"s3://{OUT_BUCKET}/failing/out/"

    with pytest.raises(JobFailedError) as failed:
        run_on_aws(spec, emulated_options(tmp_path, input_prefixes=inputs, output_prefix=output))

    message = str(failed.value)
    assert "RuntimeError" in message
    assert "mapper exploded on 'boom'" in message
    assert "/aws/lambda/mrspec-failing-" in message  # where to read the logs
    failed_calls = [i for i in emulated_aws.lambdas.invocations if i.errored]
    assert failed_calls and all("mrspec-failing-" in i.function_name for i in failed_calls)
    assert "_SUCCESS" not in s3_output(emulated_aws, output)
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})


def test_the_compiled_state_machine_itself_fails_with_the_mappers_error(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    """Without the driver's early verdict: run the execution to its end in moto (which lets
    a Distributed Map with a failed child succeed) and check the commit step turns the
    recorded task failure into the execution's error and cause."""
    from aws_emulation import ACCOUNT_ID, wait_for_execution

    from mrspec.aws.boto_provision import BotoProvisioner, resources_of
    from mrspec.aws.lower import lower
    from mrspec.aws.package import build_package
    from mrspec.aws.state import RunRecord
    from mrspec.plan.planner import plan_job

    folder = tmp_path / "job"
    (folder / "input").mkdir(parents=True)
    (folder / "input" / "a.txt").write_text("fine\nboom\n")
    (folder / "failing.py").write_text(FAILING_MAPPER)
    (folder / "job.yaml").write_text(FAILING_SPEC)
    spec = load_spec(folder / "job.yaml")
    inputs = upload_input(emulated_aws, spec)
    spec = replace(
        spec,
        input=replace(spec.input, prefixes=inputs),
        output=replace(spec.output, prefix=f"s3://{OUT_BUCKET}/failing/"),
    )
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    plan = plan_job(spec)
    model = lower(spec, plan, run_id="sm1", account_id=ACCOUNT_ID, emulator=True)
    package = build_package(spec, tmp_path / "pkg", output_prefix=spec.output.prefix)
    record = RunRecord("failing", "sm1", model.stack_name, "us-east-1", "boto3", 0.0,
                       resources=resources_of(model))
    BotoProvisioner(record).up(model, package.path)
    s3 = emulated_aws.client("s3")
    s3.put_object(Bucket=model.layout.bucket, Key=model.layout.map_manifest_key,
                  Body=json.dumps([t.to_json() for t in plan.map_tasks]).encode())
    sfn = emulated_aws.client("stepfunctions")
    started = sfn.start_execution(
        stateMachineArn=model.state_machine.arn, input=json.dumps({"job": "failing"})
    )

    described = wait_for_execution(sfn, started["executionArn"], timeout_s=120)

    assert described["status"] == "FAILED"
    assert described["error"] == "UserCodeError"
    assert "mapper exploded on 'boom'" in described["cause"]
    assert "_SUCCESS" not in s3_output(emulated_aws, spec.output.prefix)
    BotoProvisioner(record).destroy()
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})
