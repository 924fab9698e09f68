"""The emulated-AWS fixture itself: a hand-written Distributed Map state machine runs a
Lambda handler from an uploaded zip, in-process, with Lambda's error semantics."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from aws_emulation import EmulatedAws, _environment, make_zip, wait_for_execution
from aws_emulation import emulated_aws as emulated_aws  # the fixture

HANDLER = """
import os
import boto3
import pytest

CALLS = []

def double(event, context):
    CALLS.append(event["x"])
    if event["x"] < 0:
        raise ValueError(f"negative input {event['x']}")
    s3 = boto3.client("s3")
    s3.put_object(Bucket=os.environ["OUT_BUCKET"], Key=f"out/{event['x']}", Body=b"ok")
    return {"doubled": event["x"] * 2, "warm_calls": len(CALLS), "fn": context.function_name}
"""

# A module name two jobs' zips share: each zip must see its own copy.
OTHER_HANDLER = """
def double(event, context):
    return {"other": True}
"""


def _role(iam: Any, name: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def _function(aws: EmulatedAws, name: str, source: str, bucket: str) -> str:
    role = _role(aws.client("iam"), f"{name}-role")
    created = aws.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.double",
        Code={"ZipFile": make_zip({"app.py": source})},
        Environment={"Variables": {"OUT_BUCKET": bucket}},
        Timeout=30,
        MemorySize=256,
    )
    return str(created["FunctionArn"])


def _definition(function_arn: str, bucket: str) -> str:
    return json.dumps(
        {
            "StartAt": "Map",
            "States": {
                "Map": {
                    "Type": "Map",
                    "ItemReader": {
                        "Resource": "arn:aws:states:::s3:getObject",
                        "ReaderConfig": {"InputType": "JSON"},
                        "Parameters": {"Bucket": bucket, "Key.$": "$.key"},
                    },
                    "ItemSelector": {"x.$": "$$.Map.Item.Value.x"},
                    "MaxConcurrency": 2,
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                        "StartAt": "Invoke",
                        "States": {
                            "Invoke": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:::lambda:invoke",
                                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                                "OutputPath": "$.Payload",
                                "Retry": [
                                    {
                                        "ErrorEquals": ["ValueError"],
                                        "IntervalSeconds": 1,
                                        "MaxAttempts": 1,
                                        "BackoffRate": 1.0,
                                    }
                                ],
                                "End": True,
                            }
                        },
                    },
                    "End": True,
                }
            },
        }
    )


def _run(aws: EmulatedAws, items: list[dict[str, int]]) -> tuple[dict[str, Any], dict[str, Any]]:
    s3, sfn = aws.client("s3"), aws.client("stepfunctions")
    s3.create_bucket(Bucket="work")
    s3.put_object(Bucket="work", Key="items.json", Body=json.dumps(items).encode())
    arn = _function(aws, "doubler", HANDLER, "work")
    machine = sfn.create_state_machine(
        name="fixture-check", definition=_definition(arn, "work"), roleArn=_role(aws.client("iam"), "sfn-role")
    )
    started = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input=json.dumps({"key": "items.json"}))
    described = wait_for_execution(sfn, started["executionArn"])
    map_runs = sfn.list_map_runs(executionArn=started["executionArn"])["mapRuns"]
    assert len(map_runs) == 1
    counts = sfn.describe_map_run(mapRunArn=map_runs[0]["mapRunArn"])["itemCounts"]
    return described, counts


def test_distributed_map_runs_the_zip_handler_in_process(emulated_aws: EmulatedAws) -> None:
    described, counts = _run(emulated_aws, [{"x": 1}, {"x": 2}, {"x": 3}])

    assert described["status"] == "SUCCEEDED", described
    results = json.loads(described["output"])
    assert sorted(r["doubled"] for r in results) == [2, 4, 6]
    assert {r["fn"] for r in results} == {"doubler"}
    # A warm container: the module's state survives between calls of the same zip.
    assert max(r["warm_calls"] for r in results) == 3
    assert counts["succeeded"] == 3 and counts["failed"] == 0
    keys = emulated_aws.client("s3").list_objects_v2(Bucket="work", Prefix="out/")["Contents"]
    assert sorted(k["Key"] for k in keys) == ["out/1", "out/2", "out/3"]
    # The test process never sees the zip's module.
    import sys

    assert "app" not in sys.modules


def test_handler_errors_surface_like_lambda_and_are_retried(emulated_aws: EmulatedAws) -> None:
    described, counts = _run(emulated_aws, [{"x": 1}, {"x": -5}])

    # moto does not fail the run on a failed child (TESTING.md): the counts say it.
    assert counts["failed"] == 1 and counts["succeeded"] == 1
    failed = [i for i in emulated_aws.lambdas.invocations if i.errored]
    assert len(failed) == 2  # the first attempt and one retry
    error = json.loads(failed[0].payload)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "negative input -5"
    # The error reached Step Functions as the child's task failure.
    sfn = emulated_aws.client("stepfunctions")
    children = [
        e
        for m in sfn.list_state_machines()["stateMachines"]
        for e in sfn.list_executions(stateMachineArn=m["stateMachineArn"])["executions"]
    ]
    assert described["status"] in ("SUCCEEDED", "FAILED")
    assert children  # the parent execution at least


def test_two_zips_with_the_same_module_name_do_not_collide(emulated_aws: EmulatedAws) -> None:
    s3 = emulated_aws.client("s3")
    s3.create_bucket(Bucket="work")
    first = _function(emulated_aws, "first", HANDLER, "work")
    second = _function(emulated_aws, "second", OTHER_HANDLER, "work")
    lam = emulated_aws.client("lambda")
    for _ in range(2):
        a = json.loads(lam.invoke(FunctionName=first, Payload=json.dumps({"x": 4}))["Payload"].read())
        b = json.loads(lam.invoke(FunctionName=second, Payload=json.dumps({"x": 4}))["Payload"].read())
        assert a["doubled"] == 8
        assert b == {"other": True}
    failed = lam.invoke(FunctionName=first, Payload=json.dumps({"x": -1}))
    assert failed["FunctionError"] == "Handled"
    assert json.loads(failed["Payload"].read())["errorType"] == "ValueError"


def test_a_call_never_deletes_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # Deleting a key while another thread runs botocore's os.environ.copy() raises KeyError
    # there; keys a call adds are recorded and stay until the fixture ends.
    monkeypatch.setenv("MRSPEC_TEST_OLD", "before")
    monkeypatch.delenv("MRSPEC_TEST_NEW", raising=False)
    added: set[str] = set()
    with _environment({"MRSPEC_TEST_OLD": "during", "MRSPEC_TEST_NEW": "x"}, added):
        assert os.environ["MRSPEC_TEST_OLD"] == "during" and os.environ["MRSPEC_TEST_NEW"] == "x"
    assert os.environ["MRSPEC_TEST_OLD"] == "before"
    assert os.environ["MRSPEC_TEST_NEW"] == "x" and added == {"MRSPEC_TEST_NEW"}
    monkeypatch.delenv("MRSPEC_TEST_NEW")
