"""The boto3 provisioner creates exactly a lowered StackModel in (emulated) AWS and removes
every resource again; the run record alone is enough to remove them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_emulation import ACCOUNT_ID, EmulatedAws, make_zip
from aws_emulation import emulated_aws as emulated_aws  # the fixture

from mrspec.aws.boto_provision import BotoProvisioner, resources_of
from mrspec.aws.lower import lower
from mrspec.aws.state import RunRecord, StateStore
from mrspec.spec.model import CodeSpec, InputSpec, JobSpec, MapSpec, OutputSpec, ReduceSpec


def _spec(tmp_path: Path) -> JobSpec:
    return JobSpec(
        name="wordcount",
        input=InputSpec(prefixes=("s3://in-bucket/data/",)),
        map=MapSpec(entrypoint="wc:mapper", memory_mb=512, timeout_s=60),
        reduce=ReduceSpec(entrypoint="wc:reducer", partitions=2, memory_mb=1024, timeout_s=90),
        output=OutputSpec(prefix="s3://out-bucket/result/"),
        code=CodeSpec(path=tmp_path),
    )


def _record(model: object, tmp_path: Path) -> RunRecord:
    return RunRecord(
        job="wordcount",
        run_id="r1",
        stack="mrspec-wordcount-r1",
        region="us-east-1",
        provisioner="boto3",
        created_at=0.0,
        resources=resources_of(model),  # type: ignore[arg-type]
    )


def test_up_creates_the_models_resources_and_destroy_removes_them(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    model = lower(_spec(tmp_path), run_id="r1", account_id=ACCOUNT_ID, emulator=True)
    package = tmp_path / "package.zip"
    package.write_bytes(make_zip({"mrspec/__init__.py": ""}))
    store = StateStore(tmp_path / "state")
    provisioner = BotoProvisioner(_record(model, tmp_path), store)

    outputs = provisioner.up(model, package)

    s3, lam, iam, logs, sfn = (
        emulated_aws.client(s) for s in ("s3", "lambda", "iam", "logs", "stepfunctions")
    )
    bucket = model.work_bucket.name
    assert outputs.working_bucket == bucket
    assert outputs.state_machine_arn == model.state_machine.arn
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == model.work_bucket.policy.to_json()
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules[0]["Expiration"]["Days"] == model.work_bucket.expiration_days

    for function in model.functions:
        config = lam.get_function_configuration(FunctionName=function.name)
        assert config["MemorySize"] == function.memory_mb
        assert config["Timeout"] == function.timeout_s
        assert config["Handler"] == function.handler
        assert config["Runtime"] == "python3.12"
        assert config["Architectures"] == [function.architecture]
        assert config["Environment"]["Variables"] == dict(function.environment)
        assert config["Role"] == model.role(function.role).arn
    for role in model.roles:
        assert iam.get_role(RoleName=role.name)["Role"]["Arn"] == role.arn
        for policy in role.policies:
            stored = iam.get_role_policy(RoleName=role.name, PolicyName=policy.name)
            assert stored["PolicyDocument"] == policy.document.to_json()
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups()["logGroups"]}
    for group in model.log_groups:
        assert groups[group.name]["retentionInDays"] == group.retention_days
    machine = sfn.describe_state_machine(stateMachineArn=model.state_machine.arn)
    assert json.loads(machine["definition"]) == model.state_machine.definition
    assert provisioner.exists()

    provisioner.destroy()

    assert not provisioner.exists()
    assert s3.list_buckets()["Buckets"] == []
    assert lam.list_functions()["Functions"] == []
    assert iam.list_roles()["Roles"] == []
    assert logs.describe_log_groups()["logGroups"] == []
    assert sfn.list_state_machines()["stateMachines"] == []
    provisioner.destroy()  # idempotent: nothing left to remove is not an error


def test_destroy_empties_the_working_bucket_and_spares_other_buckets(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    model = lower(_spec(tmp_path), run_id="r1", account_id=ACCOUNT_ID, emulator=True)
    package = tmp_path / "package.zip"
    package.write_bytes(make_zip({"mrspec/__init__.py": ""}))
    s3 = emulated_aws.client("s3")
    s3.create_bucket(Bucket="out-bucket")
    s3.put_object(Bucket="out-bucket", Key="result/part-00000", Body=b"kept")
    provisioner = BotoProvisioner(_record(model, tmp_path))
    provisioner.up(model, package)
    for i in range(3):
        s3.put_object(Bucket=model.work_bucket.name, Key=f"runs/r1/shuffle/{i}", Body=b"x")
    upload = s3.create_multipart_upload(Bucket=model.work_bucket.name, Key="runs/r1/big")
    assert upload["UploadId"]

    # A fresh provisioner from the record alone, as `mrspec destroy` builds it.
    BotoProvisioner(_record(model, tmp_path)).destroy()

    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["out-bucket"]
    assert s3.get_object(Bucket="out-bucket", Key="result/part-00000")["Body"].read() == b"kept"


def test_a_failing_delete_is_reported_after_trying_the_rest(
    emulated_aws: EmulatedAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = lower(_spec(tmp_path), run_id="r1", account_id=ACCOUNT_ID, emulator=True)
    package = tmp_path / "package.zip"
    package.write_bytes(make_zip({"mrspec/__init__.py": ""}))
    provisioner = BotoProvisioner(_record(model, tmp_path))
    provisioner.up(model, package)

    def refuse(name: str) -> bool:
        raise RuntimeError("AccessDenied: iam:DeleteRole")

    monkeypatch.setattr(provisioner, "_delete_role", refuse)
    with pytest.raises(Exception, match="AccessDenied"):
        provisioner.destroy()
    # Everything else went.
    assert emulated_aws.client("lambda").list_functions()["Functions"] == []
    assert emulated_aws.client("s3").list_buckets()["Buckets"] == []
    assert len(emulated_aws.client("iam").list_roles()["Roles"]) == 2


def test_creates_are_retried_while_a_new_role_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.exceptions

    from mrspec.aws import boto_provision

    monkeypatch.setattr(boto_provision.time, "sleep", lambda s: None)
    calls: list[int] = []

    def not_yet() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "InvalidParameterValueException",
                           "Message": "The role defined for the function cannot be assumed by Lambda."}},
                "CreateFunction",
            )
        return "created"

    assert boto_provision._while_role_propagates(not_yet) == "created"
    assert len(calls) == 3

    def denied() -> None:
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to iam:PassRole"}},
            "CreateStateMachine",
        )

    with pytest.raises(botocore.exceptions.ClientError):  # not a propagation delay: no retry
        boto_provision._while_role_propagates(denied)
