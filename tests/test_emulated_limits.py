"""Each limit the emulated AWS enforces (tests/aws_limits.py) fires where AWS's would."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from aws_emulation import EmulatedAws, make_zip, wait_for_execution
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from test_emulated_fixture import _definition, _role

HANDLER = """
import time

def echo(event, context):
    if "sleep" in event:
        time.sleep(event["sleep"])
    if "allocate_mb" in event:
        held = bytearray(event["allocate_mb"] * 1024 * 1024)
        del held
    if "reply_bytes" in event:
        return {"reply": "r" * event["reply_bytes"]}
    return {"x": event.get("x"), "ok": True}
"""


def function(aws: EmulatedAws, *, timeout: int = 30, memory: int = 256) -> str:
    created = aws.client("lambda").create_function(
        FunctionName="echo",
        Runtime="python3.12",
        Role=_role(aws.client("iam"), "echo-role"),
        Handler="app.echo",
        Code={"ZipFile": make_zip({"app.py": HANDLER})},
        Timeout=timeout,
        MemorySize=memory,
    )
    return str(created["FunctionArn"])


def invoke(aws: EmulatedAws, event: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    answer = aws.client("lambda").invoke(FunctionName="echo", Payload=json.dumps(event).encode())
    return answer.get("FunctionError"), json.loads(answer["Payload"].read())


def test_a_handler_within_every_limit_answers(emulated_aws: EmulatedAws) -> None:
    function(emulated_aws)
    assert invoke(emulated_aws, {"x": 1, "allocate_mb": 8}) == (None, {"x": 1, "ok": True})


def test_a_handler_past_its_timeout_times_out(emulated_aws: EmulatedAws) -> None:
    function(emulated_aws, timeout=1)
    error, payload = invoke(emulated_aws, {"sleep": 1.2})
    assert error and payload["errorType"] == "Sandbox.Timedout"
    assert "timed out after 1.00 seconds" in payload["errorMessage"]


def test_a_handler_past_its_memory_is_killed(emulated_aws: EmulatedAws) -> None:
    function(emulated_aws, memory=128)
    error, payload = invoke(emulated_aws, {"allocate_mb": 120})
    assert error and payload["errorType"] == "Runtime.OutOfMemory"
    assert invoke(emulated_aws, {"allocate_mb": 40})[0] is None  # within 128 MB: fine


def test_lambda_payloads_over_6_mb_are_refused(emulated_aws: EmulatedAws) -> None:
    function(emulated_aws)
    error, payload = invoke(emulated_aws, {"x": "p" * 6_300_000})
    assert error and payload["errorType"] == "RequestEntityTooLargeException"
    error, payload = invoke(emulated_aws, {"reply_bytes": 6_300_000})
    assert error and payload["errorType"] == "Function.ResponseSizeTooLarge"


def run_map(aws: EmulatedAws, items: list[dict[str, Any]]) -> dict[str, Any]:
    s3, sfn = aws.client("s3"), aws.client("stepfunctions")
    s3.create_bucket(Bucket="work")
    s3.put_object(Bucket="work", Key="items.json", Body=json.dumps(items).encode())
    machine = sfn.create_state_machine(
        name="limits",
        definition=_definition(function(aws), "work"),
        roleArn=_role(aws.client("iam"), "sfn-role"),
    )
    started = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], input=json.dumps({"key": "items.json"})
    )
    return wait_for_execution(sfn, started["executionArn"])


def test_a_distributed_map_item_over_256_kib_fails_the_map(emulated_aws: EmulatedAws) -> None:
    described = run_map(emulated_aws, [{"x": 1}, {"x": 2, "pad": "i" * 262_144}])
    assert described["status"] == "FAILED"
    assert described["error"] == "States.ItemReaderFailed"
    assert "item 1 is 262" in described["cause"]


def test_a_state_output_over_256_kib_fails_with_data_limit_exceeded(
    emulated_aws: EmulatedAws,
) -> None:
    # moto's own check (the next state's input is this state's output); shown firing
    # here. One execution per machine: moto fails to start a second one on it.
    sfn = emulated_aws.client("stepfunctions")
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function(emulated_aws), "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "End": True,
    }
    machine = sfn.create_state_machine(
        name="big-output",
        definition=json.dumps({"StartAt": "Invoke", "States": {"Invoke": task}}),
        roleArn=_role(emulated_aws.client("iam"), "sfn-role"),
    )
    big = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name="big", input='{"reply_bytes": 300000}'
    )
    described = wait_for_execution(sfn, big["executionArn"])
    assert described["status"] == "FAILED"
    assert described["error"] == "States.DataLimitExceeded"


def test_an_execution_input_over_256_kib_is_refused(emulated_aws: EmulatedAws) -> None:
    from botocore.exceptions import ClientError

    sfn = emulated_aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="passes",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=_role(emulated_aws.client("iam"), "sfn-role"),
    )
    with pytest.raises(ClientError, match="InvalidExecutionInput") as refused:
        sfn.start_execution(
            stateMachineArn=machine["stateMachineArn"], input=json.dumps({"pad": "e" * 262_144})
        )
    assert "over the 262144-byte limit" in str(refused.value)
    started = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"small": 1}')
    assert wait_for_execution(sfn, started["executionArn"])["status"] == "SUCCEEDED"


def policy(resources: int) -> str:
    arns = [f"arn:aws:s3:::bucket/prefix-{i:05d}/*" for i in range(resources)]
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": arns}]}
    )


def test_iam_refuses_policies_over_its_size_limits(emulated_aws: EmulatedAws) -> None:
    iam = emulated_aws.client("iam")
    _role(iam, "r")
    iam.put_role_policy(RoleName="r", PolicyName="a", PolicyDocument=policy(150))  # ~5,900
    with pytest.raises(iam.exceptions.LimitExceededException, match="10240"):
        iam.put_role_policy(RoleName="r", PolicyName="b", PolicyDocument=policy(150))
    iam.put_role_policy(RoleName="r", PolicyName="a", PolicyDocument=policy(10))  # replaces a
    iam.put_role_policy(RoleName="r", PolicyName="b", PolicyDocument=policy(150))
    with pytest.raises(iam.exceptions.LimitExceededException, match="PolicySize"):
        iam.create_policy(PolicyName="big", PolicyDocument=policy(170))
    arns = [
        iam.create_policy(PolicyName=f"p{i}", PolicyDocument=policy(3))["Policy"]["Arn"]
        for i in range(11)
    ]
    for arn in arns[:10]:
        iam.attach_role_policy(RoleName="r", PolicyArn=arn)
    with pytest.raises(iam.exceptions.LimitExceededException, match="PoliciesPerRole"):
        iam.attach_role_policy(RoleName="r", PolicyArn=arns[10])


def test_s3_answers_slowdown_past_a_prefixs_request_budget(emulated_aws: EmulatedAws) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    s3 = emulated_aws.client("s3")
    s3.create_bucket(Bucket="hot")
    for i in range(3):
        s3.put_object(Bucket="hot", Key=f"logs/{i}", Body=b"x")
        s3.put_object(Bucket="hot", Key=f"other/{i}", Body=b"y")
    # one read a second: the second read of a prefix within the second is refused. The
    # budget's clock moves a quarter second per request, whatever the machine's load.
    emulated_aws.s3_budget.reads_per_s = 1
    ticks = itertools.count()
    emulated_aws.s3_budget.clock = lambda: next(ticks) * 0.25
    config = Config(retries={"max_attempts": 1, "mode": "standard"})
    once = boto3.client("s3", region_name="us-east-1", config=config)
    once.get_object(Bucket="hot", Key="logs/0")
    with pytest.raises(ClientError) as refused:
        once.get_object(Bucket="hot", Key="logs/1")
    assert refused.value.response["Error"]["Code"] == "SlowDown"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert once.get_object(Bucket="hot", Key="other/0")["Body"].read() == b"y"  # its own budget
    # botocore's retries back off until the window has room again
    patient_config = Config(retries={"max_attempts": 8, "mode": "standard"})
    patient = boto3.client("s3", region_name="us-east-1", config=patient_config)
    bodies = [patient.get_object(Bucket="hot", Key=f"logs/{i}")["Body"].read() for i in range(3)]
    assert bodies == [b"x"] * 3
    assert emulated_aws.s3_budget.slowdowns >= 2


def test_the_runtimes_s3_reads_back_off_from_slowdown_and_succeed(emulated_aws: EmulatedAws) -> None:
    from mrspec.storage.s3 import S3Storage

    s3 = emulated_aws.client("s3")
    s3.create_bucket(Bucket="busy")
    for i in range(6):
        s3.put_object(Bucket="busy", Key=f"day/{i}", Body=f"{i}\n".encode())
    emulated_aws.s3_budget.reads_per_s = 1
    storage = S3Storage.shared()
    assert [storage.read(f"s3://busy/day/{i}") for i in range(6)] == [f"{i}\n".encode() for i in range(6)]
    assert emulated_aws.s3_budget.slowdowns >= 1
