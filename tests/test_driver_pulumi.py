"""The Pulumi Automation API provisioner: what happens without the CLI (always tested),
its stack bookkeeping in mrspec's file backend (when ``pulumi`` is on PATH) and a real
run (cloud marker: needs the CLI, AWS credentials and a scratch bucket)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture

from mrspec.aws.provision import PULUMI_INSTALL_URL, PulumiProvisioner
from mrspec.aws.state import RunRecord, StateStore
from mrspec.errors import ExitCode, RefusedError

ROOT = Path(__file__).resolve().parents[1]
HAS_PULUMI = shutil.which("pulumi") is not None


def _record() -> RunRecord:
    return RunRecord(
        job="wordcount",
        run_id="t1",
        stack="mrspec-wordcount-t1",
        region="us-east-1",
        provisioner="pulumi",
        created_at=0.0,
    )


def test_missing_cli_is_a_refusal_with_install_instructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without pulumi
    provisioner = PulumiProvisioner(_record(), StateStore(tmp_path / "state"))
    with pytest.raises(RefusedError) as refused:
        provisioner.exists()
    assert refused.value.exit_code == ExitCode.REFUSED
    assert PULUMI_INSTALL_URL in str(refused.value)


def test_apply_without_the_cli_exits_3_before_creating_anything(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "MRSPEC_", "PULUMI_"))
    }
    env.update(PATH=str(bin_dir), MRSPEC_STATE_DIR=str(tmp_path / "state"), HOME=str(tmp_path))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrspec",
            "apply",
            str(ROOT / "specs" / "wordcount" / "job.yaml"),
            "--input",
            "s3://some-bucket/in/",
            "--output",
            "s3://some-bucket/out/",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == ExitCode.REFUSED, result.stderr
    assert "Pulumi CLI" in result.stderr
    assert PULUMI_INSTALL_URL in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state" / "runs").exists() or not any((tmp_path / "state" / "runs").iterdir())


@pytest.mark.skipif(not HAS_PULUMI, reason="the Pulumi CLI is not installed (pulumi not on PATH)")
def test_stacks_live_in_mrspecs_file_backend_and_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test")
    store = StateStore(tmp_path / "state")
    provisioner = PulumiProvisioner(_record(), store)
    assert not provisioner.exists()

    provisioner._stack(create=True)

    assert provisioner.exists()
    assert any(store.pulumi_backend.rglob("*mrspec-wordcount-t1*"))
    provisioner.destroy()  # an empty stack: nothing to delete, must not fail
    provisioner.remove()
    assert not provisioner.exists()


@pytest.mark.cloud
@pytest.mark.skipif(not HAS_PULUMI, reason="the Pulumi CLI is not installed (pulumi not on PATH)")
@pytest.mark.skipif(
    not os.environ.get("MRSPEC_TEST_BUCKET"),
    reason="set MRSPEC_TEST_BUCKET (a scratch bucket) and AWS credentials to run on real AWS",
)
def test_wordcount_on_real_aws_leaves_only_its_output(tmp_path: Path) -> None:
    import json

    import boto3

    bucket = os.environ["MRSPEC_TEST_BUCKET"]
    s3 = boto3.client("s3")
    prefix = f"mrspec-cloud-test/{tmp_path.name}"
    for path in sorted((ROOT / "specs" / "wordcount" / "input").iterdir()):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/in/{path.name}", Body=path.read_bytes())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrspec",
            "apply",
            str(ROOT / "specs" / "wordcount" / "job.yaml"),
            "--input",
            f"s3://{bucket}/{prefix}/in/",
            "--output",
            f"s3://{bucket}/{prefix}/out/",
            "--state-dir",
            str(tmp_path / "state"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["teardown"] == "destroyed"
    assert s3.head_object(Bucket=bucket, Key=f"{prefix}/out/_SUCCESS")


def test_the_inline_program_emits_the_component_and_its_outputs(tmp_path: Path) -> None:
    """The program the Automation API runs, under pulumi.runtime.Mocks (no CLI needed)."""
    from typing import Any

    import pulumi
    from aws_emulation import ACCOUNT_ID, make_zip

    from mrspec.aws.lower import lower
    from mrspec.spec.model import CodeSpec, InputSpec, JobSpec, MapSpec, OutputSpec

    registered: list[str] = []

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            registered.append(args.typ)
            outputs = dict(args.inputs)
            name = outputs.get("name") or outputs.get("bucket") or args.name
            arns = {
                "aws:lambda/function:Function": f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{name}",
                "aws:s3/bucket:Bucket": f"arn:aws:s3:::{name}",
            }
            outputs["arn"] = arns.get(args.typ, f"arn:aws:mock:::{name}")
            outputs.setdefault("bucket", name)
            return f"{name}-id", outputs

        def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
            return {}

    pulumi.runtime.set_mocks(Mocks(), project="mrspec", stack="mrspec-grep-t1", preview=False)
    spec = JobSpec(
        name="grep",
        input=InputSpec(prefixes=("s3://in/logs/",)),
        map=MapSpec(entrypoint="grep:mapper"),
        output=OutputSpec(prefix="s3://out/grep/"),
        code=CodeSpec(path=tmp_path),
    )
    package = tmp_path / "package.zip"
    package.write_bytes(make_zip({"mrspec/__init__.py": ""}))
    from dataclasses import replace

    provisioner = PulumiProvisioner(
        replace(_record(), job="grep", stack="mrspec-grep-t1"), StateStore(tmp_path / "state")
    )
    provisioner._model = lower(spec, run_id="t1", account_id=ACCOUNT_ID)
    provisioner._package = package

    @pulumi.runtime.test
    def run() -> Any:
        provisioner._program()
        return pulumi.Output.from_input(True)

    run()
    assert "mrspec:index:MapReduceJob" in registered
    assert registered.count("aws:lambda/function:Function") == 2  # map and commit
    assert "aws:sfn/stateMachine:StateMachine" in registered


def test_destroy_sweeps_recorded_resources_pulumi_no_longer_knows(
    emulated_aws: EmulatedAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An up interrupted mid-create can leave resources outside Pulumi's state: destroy
    removes whatever the run record names, by physical name."""
    from aws_emulation import ACCOUNT_ID, make_zip
    from pulumi.automation import errors
    from pulumi.automation._cmd import CommandResult

    from mrspec.aws.boto_provision import BotoProvisioner, resources_of
    from mrspec.aws.lower import lower
    from mrspec.spec.model import CodeSpec, InputSpec, JobSpec, MapSpec, OutputSpec

    aws = emulated_aws
    spec = JobSpec(
        name="grep",
        input=InputSpec(prefixes=("s3://in/logs/",)),
        map=MapSpec(entrypoint="grep:mapper"),
        output=OutputSpec(prefix="s3://out/grep/"),
        code=CodeSpec(path=tmp_path),
    )
    model = lower(spec, run_id="t1", account_id=ACCOUNT_ID, emulator=True)
    from dataclasses import replace

    record = replace(_record(), job="grep", stack=model.stack_name, resources=resources_of(model))
    package = tmp_path / "package.zip"
    package.write_bytes(make_zip({"mrspec/__init__.py": ""}))
    BotoProvisioner(record).up(model, package)  # resources exist, Pulumi's state does not

    provisioner = PulumiProvisioner(record, StateStore(tmp_path / "state"))

    def no_stack(create: bool) -> None:
        raise errors.StackNotFoundError(CommandResult(stdout="", stderr="no stack", code=255))

    monkeypatch.setattr(provisioner, "_stack", no_stack)
    provisioner.destroy()

    assert aws.client("lambda").list_functions()["Functions"] == []
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert aws.client("iam").list_roles()["Roles"] == []
    assert aws.client("stepfunctions").list_state_machines()["stateMachines"] == []
