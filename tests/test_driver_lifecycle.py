"""The AWS driver's lifecycle on emulated AWS: deploy, run, follow, collect, tear down, and
every failure path (failing task, exception, interruption, failed teardown, --keep).

These tests drive ``run_on_aws`` with the boto3 provisioner against moto. The deployment
zip here holds small stand-in handlers (a line-counting job) so each failure can be
provoked precisely; tests/test_emulated_jobs.py runs the real handlers and example jobs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_emulation import EmulatedAws, make_zip
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from click.testing import CliRunner

from mrspec.aws import driver, finish
from mrspec.aws.boto_provision import BotoProvisioner
from mrspec.aws.driver import AwsRunOptions, run_on_aws
from mrspec.aws.state import RunRecord, StateStore
from mrspec.aws.watch import Backoff, Snapshot
from mrspec.errors import ExitCode, JobFailedError, RefusedError, TeardownError
from mrspec.spec.model import CodeSpec, InputSpec, JobSpec, Limits, MapSpec, OutputSpec, ReduceSpec

# Stand-in handlers with the real handlers' names and event shapes: map tasks count the
# lines of their splits (a split whose object name contains "poison" fails), reducers
# pass their partition on, commit writes part-00000 and _SUCCESS last.
STUB_HANDLERS = '''
import json, os
import boto3

def _s3():
    return boto3.client("s3")

def _loc(uri):
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key

def _put(uri, data):
    bucket, key = _loc(uri)
    _s3().put_object(Bucket=bucket, Key=key, Body=json.dumps(data).encode())

def map_handler(event, context):
    lines = 0
    for split in event["task"]["splits"]:
        if "poison" in split["uri"]:
            raise ValueError(f"cannot parse {split['uri']}")
        bucket, key = _loc(split["uri"])
        body = _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        lines += body.count(b"\\n")
    _put(f"{event['work']}/results/map-{event['task']['task_id']:05d}.json", {"lines": lines})
    return {"task_id": event["task"]["task_id"]}

def reduce_handler(event, context):
    return {"partition": event["task"]["partition"]}

def commit_handler(event, context):
    if event.get("action") == "report_failure":
        raise RuntimeError(f"{event['phase']} failed: {event['cause']}")
    bucket, prefix = _loc(event["work"] + "/results/")
    listed = _s3().list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    total = sum(json.loads(_s3().get_object(Bucket=bucket, Key=o["Key"])["Body"].read())["lines"]
                for o in listed)
    out = OUTPUT.rstrip("/")
    obucket, okey = _loc(out + "/part-00000")
    _s3().put_object(Bucket=obucket, Key=okey, Body=f"lines\\t{total}\\n".encode())
    _put(out + "/_SUCCESS", {"counters": {"map_input_records": total, "output_records": 1},
                             "parts": [out + "/part-00000"], "user_counters": {}})
    return {"committed": True}
'''


def stub_builder(output: str) -> Any:
    def build(spec: JobSpec, folder: Path) -> Path:
        path = folder / "package.zip"
        path.write_bytes(
            make_zip(
                {
                    "mrspec/__init__.py": "",
                    "mrspec/aws/__init__.py": "",
                    "mrspec/aws/handlers.py": f"OUTPUT = {output!r}\n" + STUB_HANDLERS,
                }
            )
        )
        return path

    return build


def _spec(tmp_path: Path, **limits: Any) -> JobSpec:
    return JobSpec(
        name="linecount",
        input=InputSpec(prefixes=("s3://in-bucket/data/",)),
        map=MapSpec(entrypoint="job:mapper", memory_mb=256, timeout_s=30, bin_size=64),
        reduce=ReduceSpec(entrypoint="job:reducer", partitions=2, timeout_s=30),
        output=OutputSpec(prefix="s3://out-bucket/result/"),
        code=CodeSpec(path=tmp_path),
        limits=Limits(max_concurrency=2, max_attempts=2, **limits),
        source=tmp_path / "job.yaml",
    )


def _input(aws: EmulatedAws, objects: dict[str, bytes]) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="in-bucket")
    s3.create_bucket(Bucket="out-bucket")
    for key, body in objects.items():
        s3.put_object(Bucket="in-bucket", Key=f"data/{key}", Body=body)


def _options(tmp_path: Path, **overrides: Any) -> AwsRunOptions:
    import boto3

    values: dict[str, Any] = {
        "provisioner": "boto3",
        "emulator": True,
        "state_dir": tmp_path / "state",
        "session": boto3.Session(region_name="us-east-1"),
        "package_builder": stub_builder("s3://out-bucket/result/"),
        "poll": Backoff(initial=0.05, maximum=0.2),
        "json_output": True,
        "handle_signals": False,
        "run_id": "r1",
    }
    values.update(overrides)
    return AwsRunOptions(**values)


def assert_nothing_left(aws: EmulatedAws, buckets: set[str] | None = None) -> None:
    """moto holds no bucket (but the input and output ones), function, role, customer
    managed policy, log group or state machine."""
    left = {b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]}
    assert left == (buckets if buckets is not None else {"in-bucket", "out-bucket"})
    assert aws.client("lambda").list_functions()["Functions"] == []
    assert aws.client("iam").list_roles()["Roles"] == []
    assert aws.client("iam").list_policies(Scope="Local")["Policies"] == []
    assert aws.client("logs").describe_log_groups()["logGroups"] == []
    assert aws.client("stepfunctions").list_state_machines()["stateMachines"] == []


def _output(aws: EmulatedAws) -> dict[str, bytes]:
    s3 = aws.client("s3")
    listed = s3.list_objects_v2(Bucket="out-bucket", Prefix="result/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket="out-bucket", Key=o["Key"])["Body"].read() for o in listed}


def test_a_run_deploys_runs_collects_and_tears_down(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _input(emulated_aws, {"a.txt": b"x\n" * 100, "b.txt": b"y\n" * 50, "c.txt": b"z\n" * 7})
    seen: list[Snapshot] = []

    rc = run_on_aws(_spec(tmp_path), _options(tmp_path, on_progress=seen.append))

    assert rc == 0
    out = _output(emulated_aws)
    assert out["result/part-00000"] == b"lines\t157\n"
    assert "result/_SUCCESS" in out
    assert_nothing_left(emulated_aws)
    assert list(StateStore(tmp_path / "state").runs()) == []
    # Progress came from the Map Runs: the map phase had one item per map task.
    assert seen and seen[-1].phases[0].phase == "map"
    assert seen[-1].phases[0].succeeded == seen[-1].phases[0].total >= 3
    assert seen[-1].phases[1].succeeded == 2
    summary = json.loads(capsys.readouterr().out)
    assert summary["outcome"] == "succeeded"
    assert summary["teardown"] == "destroyed"
    assert summary["counters"]["map_input_records"] == 157
    assert set(summary["durations_s"]) >= {"preflight", "plan", "deploy", "run", "teardown"}


def test_a_failing_task_fails_the_job_with_its_error_and_tears_down(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    _input(emulated_aws, {"a.txt": b"x\n" * 10, "poison.txt": b"bad\n"})

    with pytest.raises(JobFailedError) as failed:
        run_on_aws(_spec(tmp_path), _options(tmp_path))

    assert failed.value.exit_code == ExitCode.JOB_FAILED
    message = str(failed.value)
    assert "map: 1 of" in message
    assert "cannot parse s3://in-bucket/data/poison.txt" in message
    assert "/aws/lambda/mrspec-linecount-r1-map" in message  # the log group to read
    attempts = [i for i in emulated_aws.lambdas.invocations if i.errored and "poison" in json.dumps(i.event)]
    assert len(attempts) == 2  # max_attempts
    assert_nothing_left(emulated_aws)
    assert "result/_SUCCESS" not in _output(emulated_aws)


def test_an_exception_during_upload_still_tears_down(
    emulated_aws: EmulatedAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _input(emulated_aws, {"a.txt": b"x\n"})

    def broken(run: Any) -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(driver, "upload_manifests", broken)
    with pytest.raises(OSError, match="network unreachable"):
        run_on_aws(_spec(tmp_path), _options(tmp_path))
    assert_nothing_left(emulated_aws)
    assert list(StateStore(tmp_path / "state").runs()) == []


def test_an_interruption_stops_the_execution_and_tears_down(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _input(emulated_aws, {f"{i}.txt": b"x\n" * 3 for i in range(6)})
    stopped: list[str] = []
    real_stop = finish.stop_execution

    def spy_stop(run: Any, why: str) -> None:
        stopped.append(run.session.client("stepfunctions").describe_execution(
            executionArn=run.execution_arn)["status"])
        real_stop(run, why)

    def interrupt(snapshot: Snapshot) -> None:
        raise KeyboardInterrupt

    driver_stop = pytest.MonkeyPatch()
    driver_stop.setattr(finish, "stop_execution", spy_stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_on_aws(_spec(tmp_path), _options(tmp_path, on_progress=interrupt))
    finally:
        driver_stop.undo()
    assert stopped == ["RUNNING"]  # it was still running, and the driver stopped it
    assert_nothing_left(emulated_aws)
    summary = json.loads(capsys.readouterr().out)
    assert summary["outcome"] == "interrupted"
    assert summary["teardown"] == "destroyed"


class FlakyTeardown(BotoProvisioner):
    def destroy(self) -> None:
        raise RuntimeError("AccessDenied: s3:DeleteBucket")


def test_a_failed_teardown_exits_4_with_the_destroy_command_that_finishes_it(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    _input(emulated_aws, {"a.txt": b"x\n" * 4})
    state = tmp_path / "state"

    def factory(record: RunRecord, store: StateStore) -> BotoProvisioner:
        return FlakyTeardown(record, store)

    with pytest.raises(TeardownError) as failed:
        run_on_aws(_spec(tmp_path), _options(tmp_path, provisioner_factory=factory))

    assert failed.value.exit_code == ExitCode.TEARDOWN_FAILED
    command = f"mrspec destroy {tmp_path / 'job.yaml'} --run r1 --state-dir {state}"
    assert command in str(failed.value)
    assert "AccessDenied" in str(failed.value)
    assert _output(emulated_aws)["result/part-00000"] == b"lines\t4\n"  # results kept
    (record,) = StateStore(state).runs()
    assert record.status == "destroying"

    from mrspec.commands.destroy import command as destroy

    result = CliRunner().invoke(destroy, ["linecount", "--run", "r1", "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert_nothing_left(emulated_aws)
    assert list(StateStore(state).runs()) == []
    assert _output(emulated_aws)["result/part-00000"] == b"lines\t4\n"


def test_keep_leaves_the_stack_listed_until_destroyed(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    _input(emulated_aws, {"a.txt": b"x\n" * 2})
    state = tmp_path / "state"

    assert run_on_aws(_spec(tmp_path), _options(tmp_path, keep=True)) == 0

    assert len(emulated_aws.client("lambda").list_functions()["Functions"]) == 4
    from mrspec.commands.destroy import command as destroy
    from mrspec.commands.runs import command as runs

    listed = CliRunner().invoke(runs, ["--json", "--state-dir", str(state)])
    (record,) = json.loads(listed.output)["runs"]
    assert record["status"] == "kept"
    assert {r["kind"] for r in record["resources"]} == {
        "bucket", "log_group", "role", "function", "state_machine"
    }
    result = CliRunner().invoke(destroy, ["--all", "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert_nothing_left(emulated_aws)
    assert json.loads(CliRunner().invoke(runs, ["--json", "--state-dir", str(state)]).output)["runs"] == []


def test_a_non_empty_output_is_refused_before_anything_is_created(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    _input(emulated_aws, {"a.txt": b"x\n"})
    emulated_aws.client("s3").put_object(Bucket="out-bucket", Key="result/part-00000", Body=b"old")

    with pytest.raises(RefusedError, match="not empty"):
        run_on_aws(_spec(tmp_path), _options(tmp_path))

    assert_nothing_left(emulated_aws)
    assert _output(emulated_aws) == {"result/part-00000": b"old"}


def test_a_budget_below_the_estimate_is_refused(emulated_aws: EmulatedAws, tmp_path: Path) -> None:
    _input(emulated_aws, {"a.txt": b"x\n"})
    with pytest.raises(RefusedError, match="budget"):
        run_on_aws(_spec(tmp_path, budget_usd=0.0000001), _options(tmp_path))
    assert_nothing_left(emulated_aws)


def test_local_locations_are_refused(emulated_aws: EmulatedAws, tmp_path: Path) -> None:
    from dataclasses import replace

    spec = replace(_spec(tmp_path), input=InputSpec(prefixes=(str(tmp_path),)))
    with pytest.raises(RefusedError, match="local path"):
        run_on_aws(spec, _options(tmp_path))


def test_missing_credentials_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(RefusedError, match="no AWS credentials"):
        run_on_aws(_spec(tmp_path), _options(tmp_path, session=None))


def test_overwrite_replaces_the_old_output_only_once_the_stack_is_up(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    _input(emulated_aws, {"a.txt": b"x\n" * 5})
    s3 = emulated_aws.client("s3")
    s3.put_object(Bucket="out-bucket", Key="result/part-00009", Body=b"old")
    s3.put_object(Bucket="out-bucket", Key="result/_SUCCESS", Body=b"{}")

    assert run_on_aws(_spec(tmp_path), _options(tmp_path, overwrite=True)) == 0

    out = _output(emulated_aws)
    assert "result/part-00009" not in out
    assert out["result/part-00000"] == b"lines\t5\n"
    assert_nothing_left(emulated_aws)


def test_sigterm_unwinds_like_ctrl_c_and_tears_down(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    import os
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed from the main thread")
    _input(emulated_aws, {f"{i}.txt": b"x\n" for i in range(4)})

    def terminate(snapshot: Snapshot) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(driver.Terminated):
        run_on_aws(_spec(tmp_path), _options(tmp_path, on_progress=terminate, handle_signals=True))
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler was restored
    assert_nothing_left(emulated_aws)


class InterruptedUp(BotoProvisioner):
    """Ctrl-C arriving while the stack is half created."""

    def _create_function(self, function: Any, model: Any, code: bytes) -> None:
        if function.logical_name == "reduce":
            raise KeyboardInterrupt
        super()._create_function(function, model, code)


def test_an_interruption_during_deploy_removes_what_was_created(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    _input(emulated_aws, {"a.txt": b"x\n"})

    def factory(record: RunRecord, store: StateStore) -> BotoProvisioner:
        return InterruptedUp(record, store)

    with pytest.raises(KeyboardInterrupt):
        run_on_aws(_spec(tmp_path), _options(tmp_path, provisioner_factory=factory))

    assert_nothing_left(emulated_aws)
    assert list(StateStore(tmp_path / "state").runs()) == []
