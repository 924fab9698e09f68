"""The AWS side of never losing data, in the emulated account (moto, Lambda in-process):
a replaced output stays whole until the new commit, and every S3 request the driver and
the tasks make to the job's buckets names the account that must own them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from test_emulated_jobs import OUT_BUCKET, emulated_options, upload_input

from mrspec.aws.driver import run_on_aws
from mrspec.errors import JobFailedError
from mrspec.spec.loader import load_spec

JOB = """\
apiVersion: mrspec/v1
name: owner
input: {prefix: input/, split_size: 2000}
map: {entrypoint: wc:mapper, memory: 256, timeout: 30, bin_size: 2000}
reduce: {entrypoint: wc:reducer, partitions: 2, memory: 256, timeout: 30}
output: {prefix: out/}
limits: {max_concurrency: 2, max_attempts: 1}
"""

CODE = """\
def mapper(line):
    for word in line.split():
        yield word, 1

def reducer(word, counts):
    if word == "boom":
        raise RuntimeError("a reducer failing after other parts were written")
    yield word, sum(counts)
"""


@contextmanager
def recorded_s3_params() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """(operation, final parameters) of every S3 call, after botocore's parameter events."""
    from botocore.client import BaseClient

    calls: list[tuple[str, dict[str, Any]]] = []
    original = BaseClient._convert_to_request_dict

    def recording(self: Any, api_params: Any, operation_model: Any, *args: Any, **kwargs: Any) -> Any:
        if self.meta.service_model.service_name == "s3":
            calls.append((operation_model.name, dict(api_params)))
        return original(self, api_params, operation_model, *args, **kwargs)

    BaseClient._convert_to_request_dict = recording  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._convert_to_request_dict = original  # type: ignore[method-assign]


def _job(tmp_path: Path, lines: list[str]) -> Path:
    (tmp_path / "input").mkdir(exist_ok=True)
    (tmp_path / "input" / "a.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "wc.py").write_text(CODE)
    (tmp_path / "job.yaml").write_text(JOB)
    return tmp_path / "job.yaml"


def _output(aws: EmulatedAws) -> dict[str, bytes]:
    s3 = aws.client("s3")
    listed = s3.list_objects_v2(Bucket=OUT_BUCKET, Prefix="owner/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=OUT_BUCKET, Key=o["Key"])["Body"].read() for o in listed}


@pytest.mark.slow
def test_overwrite_on_aws_keeps_the_old_output_until_commit_and_names_the_owner(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    account = emulated_aws.client("sts").get_caller_identity()["Account"]
    spec = load_spec(_job(tmp_path, ["a b", "b"]))
    inputs = upload_input(emulated_aws, spec)
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    output = f"s3://{OUT_BUCKET}/owner/"
    options = {"input_prefixes": inputs, "output_prefix": output}
    with recorded_s3_params() as calls:
        assert run_on_aws(spec, emulated_options(tmp_path / "r1", run_id="r1", **options)) == 0
    old = _output(emulated_aws)
    assert b"a\t1\n" in b"".join(old.values())

    user_buckets = {OUT_BUCKET, inputs[0].split("/")[2]}
    to_user = [(op, p) for op, p in calls if p.get("Bucket") in user_buckets]
    assert {op for op, _ in to_user} >= {"ListObjectsV2", "GetObject", "PutObject"}
    assert all(p.get("ExpectedBucketOwner") == account for _, p in to_user), [
        (op, p.get("Bucket")) for op, p in to_user if p.get("ExpectedBucketOwner") != account
    ]

    # A failed --overwrite run leaves the old output byte for byte.
    spec = load_spec(_job(tmp_path, ["a b", "boom", "c"]))
    inputs = upload_input(emulated_aws, spec)
    with pytest.raises(JobFailedError):
        run_on_aws(spec, emulated_options(tmp_path / "r2", run_id="r2", overwrite=True, **options))
    assert _output(emulated_aws) == old

    # A successful one replaces it: the new manifest lists exactly what is left.
    spec = load_spec(_job(tmp_path, ["x y", "y"]))
    inputs = upload_input(emulated_aws, spec)
    assert run_on_aws(spec, emulated_options(tmp_path / "r3", run_id="r3", overwrite=True, **options)) == 0
    new = _output(emulated_aws)
    manifest = json.loads(new["owner/_SUCCESS"])
    listed = {p["uri"].removeprefix(f"s3://{OUT_BUCKET}/") for p in manifest["parts"]}
    assert set(new) == listed | {"owner/_SUCCESS"}
    assert not listed & set(old)
    assert sorted(b"".join(new[k] for k in listed).splitlines()) == [b"x\t1", b"y\t2"]


@pytest.mark.slow
def test_sse_kms_buckets_get_exactly_their_keys(emulated_aws: EmulatedAws, tmp_path: Path) -> None:
    kms = emulated_aws.client("kms")
    in_key = kms.create_key(Description="input")["KeyMetadata"]
    out_key = kms.create_key(Description="output")["KeyMetadata"]
    kms.create_alias(AliasName="alias/mrspec-out", TargetKeyId=out_key["KeyId"])
    kms.create_key(Description="some other key")
    spec = load_spec(_job(tmp_path, ["a b", "b"]))
    inputs = upload_input(emulated_aws, spec)
    s3 = emulated_aws.client("s3")
    s3.create_bucket(Bucket=OUT_BUCKET)
    for bucket, key in ((inputs[0].split("/")[2], in_key["KeyId"]), (OUT_BUCKET, "alias/mrspec-out")):
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]
            },
        )
    options = emulated_options(
        tmp_path / "kms", run_id="kms1", keep=True, input_prefixes=inputs, output_prefix=f"s3://{OUT_BUCKET}/owner/"
    )
    assert run_on_aws(spec, options) == 0

    iam = emulated_aws.client("iam")
    [role] = [r["RoleName"] for r in iam.list_roles()["Roles"] if "kms1" in r["RoleName"] and "lambda" in r["RoleName"]]
    [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    kms_statements = {s["Sid"]: s for s in document["Statement"] if any(a.startswith("kms:") for a in s["Action"])}
    assert set(kms_statements) == {"DecryptInput", "EncryptOutput"}
    assert kms_statements["DecryptInput"]["Action"] == ["kms:Decrypt"]
    assert kms_statements["DecryptInput"]["Resource"] in ([in_key["Arn"]], in_key["Arn"])
    assert sorted(kms_statements["EncryptOutput"]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert kms_statements["EncryptOutput"]["Resource"] in ([out_key["Arn"]], out_key["Arn"])  # the alias, resolved
    for statement in kms_statements.values():
        assert statement["Condition"] == {"StringEquals": {"kms:ViaService": ["s3.us-east-1.amazonaws.com"]}}
