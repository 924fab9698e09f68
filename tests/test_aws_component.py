"""Stack tests: the MapReduceJob component under pulumi.runtime.Mocks (no CLI, no plugin).

Every resource the component registers is recorded with its resolved inputs; the tests
check each against the model and against literal expectations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from aws_specs import make_spec

from mrspec.aws.lower import lower
from mrspec.aws.model import StackModel

ACCOUNT = "123456789012"
REGION = "eu-west-1"


class RecordingMocks(pulumi.runtime.Mocks):
    """Returns the outputs AWS would compute (ARNs, bucket names) and records inputs."""

    def __init__(self) -> None:
        self.resources: list[tuple[str, str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        self.resources.append((args.typ, args.name, inputs))
        outputs = dict(inputs)
        name = inputs.get("name") or inputs.get("bucket") or args.name
        arn = {
            "aws:s3/bucket:Bucket": f"arn:aws:s3:::{name}",
            "aws:iam/role:Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "aws:lambda/function:Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "aws:cloudwatch/logGroup:LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}",
            "aws:sfn/stateMachine:StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
        }.get(args.typ)
        if arn:
            outputs["arn"] = arn
        if args.typ == "aws:s3/bucket:Bucket":
            outputs["bucket"] = name
        return f"{name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}

    def of_type(self, typ: str) -> list[tuple[str, dict[str, Any]]]:
        return [(n, i) for t, n, i in self.resources if t == typ]


@pytest.fixture
def mocks() -> RecordingMocks:
    m = RecordingMocks()
    pulumi.runtime.set_mocks(m, project="mrspec", stack="test", preview=False)
    return m


def model(**kwargs: Any) -> StackModel:
    return lower(make_spec(**kwargs), run_id="r1", account_id=ACCOUNT)


def build(model: StackModel, package: Path) -> Any:
    from mrspec.aws.component import MapReduceJob

    job = MapReduceJob("job", model, package)
    everything = [r.urn for r in job.children]
    return job, pulumi.Output.all(job.state_machine_arn, *everything)


def package_file(tmp_path: Path) -> Path:
    path = tmp_path / "package.zip"
    path.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    return path


@pulumi.runtime.test
def test_every_resource_and_its_properties(mocks: RecordingMocks, tmp_path: Path) -> Any:
    m = model(architecture="x86_64")
    _job, done = build(m, package_file(tmp_path))

    def check(_: Any) -> None:
        counts: dict[str, int] = {}
        for typ, _name, _inputs in mocks.resources:
            counts[typ] = counts.get(typ, 0) + 1
        assert counts == {
            "mrspec:index:MapReduceJob": 1,
            "aws:s3/bucket:Bucket": 1,
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 1,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 1,
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 1,
            "aws:s3/bucketPolicy:BucketPolicy": 1,
            "aws:cloudwatch/logGroup:LogGroup": 5,
            "aws:iam/role:Role": 2,
            "aws:iam/rolePolicy:RolePolicy": 2,
            "aws:lambda/function:Function": 4,
            "aws:sfn/stateMachine:StateMachine": 1,
        }
        [(_, bucket)] = mocks.of_type("aws:s3/bucket:Bucket")
        assert bucket["bucket"] == "mrspec-wordcount-r1" and bucket["forceDestroy"] is True
        assert bucket["tags"]["mrspec:job"] == "wordcount"
        [(_, pab)] = mocks.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        assert {
            k: pab[k]
            for k in (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
        } == dict.fromkeys(
            ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"),
            True,
        )
        [(_, sse)] = mocks.of_type(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
        rule = sse["rules"][0]
        assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
        assert rule["bucketKeyEnabled"] is True
        [(_, lifecycle)] = mocks.of_type(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
        )
        lrule = lifecycle["rules"][0]
        assert lrule["status"] == "Enabled" and lrule["expiration"]["days"] == 7
        assert lrule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 1
        [(_, bpol)] = mocks.of_type("aws:s3/bucketPolicy:BucketPolicy")
        deny = json.loads(bpol["policy"])["Statement"][0]
        assert deny["Effect"] == "Deny" and deny["Condition"]["Bool"]["aws:SecureTransport"] == [
            "false"
        ]

        groups = {
            i["name"]: i["retentionInDays"]
            for _, i in mocks.of_type("aws:cloudwatch/logGroup:LogGroup")
        }
        assert groups == {
            "/aws/lambda/mrspec-wordcount-r1-map": 14,
            "/aws/lambda/mrspec-wordcount-r1-merge": 14,
            "/aws/lambda/mrspec-wordcount-r1-reduce": 14,
            "/aws/lambda/mrspec-wordcount-r1-commit": 14,
            "/aws/vendedlogs/states/mrspec-wordcount-r1": 14,
        }

        functions = {i["name"]: i for _, i in mocks.of_type("aws:lambda/function:Function")}
        expected = {  # name: (memory, timeout, ephemeral, handler)
            "mrspec-wordcount-r1-map": (2048, 180, 768, "mrspec.aws.handlers.map_handler"),
            "mrspec-wordcount-r1-merge": (3008, 300, 10240, "mrspec.aws.handlers.merge_handler"),
            "mrspec-wordcount-r1-reduce": (3008, 300, 10240, "mrspec.aws.handlers.reduce_handler"),
            "mrspec-wordcount-r1-commit": (512, 300, 512, "mrspec.aws.handlers.commit_handler"),
        }
        assert set(functions) == set(expected)
        for name, (memory, timeout, ephemeral, handler) in expected.items():
            f = functions[name]
            assert (f["memorySize"], f["timeout"], f["ephemeralStorage"]["size"], f["handler"]) == (
                memory,
                timeout,
                ephemeral,
                handler,
            )
            assert f["runtime"] == "python3.12"
            assert f["architectures"] == ["x86_64"]
            assert f["role"] == f"arn:aws:iam::{ACCOUNT}:role/mrspec-wordcount-r1-lambda"
            variables = f["environment"]["variables"]
            assert variables["MRSPEC_WORK_URI"] == "s3://mrspec-wordcount-r1/runs/r1"
            assert (variables["AWS_RETRY_MODE"], variables["AWS_MAX_ATTEMPTS"]) == ("adaptive", "10")
            assert f["loggingConfig"]["logGroup"] == f"/aws/lambda/{name}"
            assert isinstance(f["code"], pulumi.FileArchive)

        roles = {
            i["name"]: json.loads(i["assumeRolePolicy"])
            for _, i in mocks.of_type("aws:iam/role:Role")
        }
        assert roles["mrspec-wordcount-r1-lambda"]["Statement"][0]["Principal"] == {
            "Service": "lambda.amazonaws.com"
        }
        assert roles["mrspec-wordcount-r1-states"]["Statement"][0]["Principal"] == {
            "Service": "states.amazonaws.com"
        }
        policies = {
            i["name"]: json.loads(i["policy"])
            for _, i in mocks.of_type("aws:iam/rolePolicy:RolePolicy")
        }
        # Every statement's actions and resources, exactly.
        statements = {
            s["Sid"]: (s["Action"], s["Resource"])
            for doc in policies.values()
            for s in doc["Statement"]
        }
        fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mrspec-wordcount-r1"
        lg = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/mrspec-wordcount-r1"
        ex = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:mrspec-wordcount-r1"
        work = "arn:aws:s3:::mrspec-wordcount-r1"
        assert statements == {
            "ReadInput": (["s3:GetObject"], ["arn:aws:s3:::corpus/books/*"]),
            "ReadInputList": (["s3:ListBucket"], ["arn:aws:s3:::corpus"]),
            "WorkData": (
                [
                    "s3:AbortMultipartUpload",
                    "s3:DeleteObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:PutObject",
                ],
                [f"{work}/runs/r1/*"],
            ),
            "WorkDataList": (["s3:ListBucket"], [work]),
            "WriteOutput": (
                [
                    "s3:AbortMultipartUpload",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:PutObject",
                ],
                ["arn:aws:s3:::results/wordcount/*"],
            ),
            "WriteOutputList": (["s3:ListBucket"], ["arn:aws:s3:::results"]),
            "WriteLogs": (
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                [f"{lg}-commit:*", f"{lg}-map:*", f"{lg}-merge:*", f"{lg}-reduce:*"],
            ),
            "InvokeJobFunctions": (
                ["lambda:InvokeFunction"],
                [
                    f"{fn}-commit",
                    f"{fn}-commit:*",
                    f"{fn}-map",
                    f"{fn}-map:*",
                    f"{fn}-merge",
                    f"{fn}-merge:*",
                    f"{fn}-reduce",
                    f"{fn}-reduce:*",
                ],
            ),
            "StartChildExecutions": (
                ["states:StartExecution"],
                [f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:mrspec-wordcount-r1"],
            ),
            "ManageChildExecutions": (
                ["states:DescribeExecution", "states:StopExecution"],
                [f"{ex}:*", f"{ex}/*"],
            ),
            "ReadTaskManifests": (
                ["s3:GetObject"],
                [f"{work}/runs/r1/manifests/map.json", f"{work}/runs/r1/manifests/reduce.json"],
            ),
            "WriteMapResults": (
                [
                    "s3:AbortMultipartUpload",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:PutObject",
                ],
                [f"{work}/runs/r1/sfn-results/*"],
            ),
            "DeliverLogs": (
                [
                    "logs:CreateLogDelivery",
                    "logs:DeleteLogDelivery",
                    "logs:DescribeLogGroups",
                    "logs:DescribeResourcePolicies",
                    "logs:GetLogDelivery",
                    "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy",
                    "logs:UpdateLogDelivery",
                ],
                ["*"],
            ),
        }
        for doc in policies.values():
            for s in doc["Statement"]:
                assert not any("*" in a for a in s["Action"])

        [(_, sm)] = mocks.of_type("aws:sfn/stateMachine:StateMachine")
        assert sm["name"] == "mrspec-wordcount-r1" and sm["type"] == "STANDARD"
        assert sm["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/mrspec-wordcount-r1-states"
        assert json.loads(sm["definition"]) == m.state_machine.definition
        logging = sm["loggingConfiguration"]
        assert logging["level"] == "ERROR" and logging["includeExecutionData"] is False
        assert logging["logDestination"] == (
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/vendedlogs/states/mrspec-wordcount-r1:*"
        )

    return done.apply(check)


@pulumi.runtime.test
def test_children_are_parented_to_the_component(mocks: RecordingMocks, tmp_path: Path) -> Any:
    job, done = build(model(map_only=True), package_file(tmp_path))
    urns = pulumi.Output.all(*[r.urn for r in job.children])

    def check(values: list[str]) -> None:
        functions = sorted(n for n, _ in mocks.of_type("aws:lambda/function:Function"))
        assert functions == ["job-function-commit", "job-function-map"]
        # bucket + 4 bucket settings, 3 log groups, 2 roles, 2 policies, 2 functions, 1 machine
        assert len(values) == 5 + 3 + 2 + 2 + 2 + 1
        for urn in values:
            assert "::mrspec:index:MapReduceJob$aws:" in urn, urn

    return pulumi.Output.all(done, urns).apply(lambda v: check(v[1]))


@pulumi.runtime.test
def test_outputs(mocks: RecordingMocks, tmp_path: Path) -> Any:
    job, done = build(model(), package_file(tmp_path))
    names = pulumi.Output.all(
        job.working_bucket_name,
        job.state_machine_arn,
        job.function_names["map"],
        *job.log_group_names,
    )

    def check(values: list[str]) -> None:
        assert values == [
            "mrspec-wordcount-r1",
            f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:mrspec-wordcount-r1",
            "mrspec-wordcount-r1-map",
            "/aws/lambda/mrspec-wordcount-r1-map",
            "/aws/lambda/mrspec-wordcount-r1-merge",
            "/aws/lambda/mrspec-wordcount-r1-reduce",
            "/aws/lambda/mrspec-wordcount-r1-commit",
            "/aws/vendedlogs/states/mrspec-wordcount-r1",
        ]

    return pulumi.Output.all(done, names).apply(lambda v: check(v[1]))


def test_unknown_resource_kind_raises(mocks: RecordingMocks, tmp_path: Path) -> None:
    from mrspec.aws.component import MapReduceJob

    class Queue:
        kind = "queue"

    job = MapReduceJob.__new__(MapReduceJob)  # dispatch only; no resources are created
    with pytest.raises(TypeError, match="kind 'queue'"):
        job.emit(Queue())


class OtherAccountMocks(RecordingMocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        rid, outputs = super().new_resource(args)
        if "arn" in outputs:
            outputs["arn"] = outputs["arn"].replace(ACCOUNT, "999999999999")
        return rid, outputs


def test_arns_that_differ_from_the_model_are_refused(tmp_path: Path) -> None:
    pulumi.runtime.set_mocks(OtherAccountMocks(), project="mrspec", stack="other", preview=False)

    @pulumi.runtime.test
    def program() -> Any:
        _job, done = build(model(), package_file(tmp_path))
        return done

    # Pulumi wraps the component's ModelMismatchError in its own ValueError chain.
    with pytest.raises(ValueError, match="wrong account or region"):
        program()
