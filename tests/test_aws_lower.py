"""Lowering a JobSpec to a StackModel: names, sizes, IAM and the state machine's shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_specs import make_spec

from mrspec.aws import asl
from mrspec.aws.lower import lower, map_ephemeral_mb
from mrspec.aws.model import RUN_ID_RE, StackModel
from mrspec.aws.state import new_run_id
from mrspec.errors import MrspecError

ACCOUNT = "111122223333"


def model_of(**kwargs: Any) -> StackModel:
    emulator = kwargs.pop("emulator", False)
    return lower(make_spec(**kwargs), run_id="r1", account_id=ACCOUNT, emulator=emulator)


def all_statements(model: StackModel) -> list[dict[str, Any]]:
    out = []
    for role in model.roles:
        for policy in role.policies:
            out += policy.document.to_json()["Statement"]
    return out


def test_resources_and_names() -> None:
    m = model_of()
    kinds = [(r.kind, r.name) for r in m.resources()]
    assert kinds == [
        ("bucket", "mrspec-wordcount-r1"),
        ("log_group", "/aws/lambda/mrspec-wordcount-r1-map"),
        ("log_group", "/aws/lambda/mrspec-wordcount-r1-merge"),
        ("log_group", "/aws/lambda/mrspec-wordcount-r1-reduce"),
        ("log_group", "/aws/lambda/mrspec-wordcount-r1-commit"),
        ("log_group", "/aws/vendedlogs/states/mrspec-wordcount-r1"),
        ("role", "mrspec-wordcount-r1-lambda"),
        ("role", "mrspec-wordcount-r1-states"),
        ("function", "mrspec-wordcount-r1-map"),
        ("function", "mrspec-wordcount-r1-merge"),
        ("function", "mrspec-wordcount-r1-reduce"),
        ("function", "mrspec-wordcount-r1-commit"),
        ("state_machine", "mrspec-wordcount-r1"),
    ]
    assert m.state_machine.arn == (
        f"arn:aws:states:eu-west-1:{ACCOUNT}:stateMachine:mrspec-wordcount-r1"
    )
    for r in m.resources():
        assert r.tags["mrspec:job"] == "wordcount"
        assert r.tags["mrspec:run"] == "r1"
        assert r.tags["team"] == "data"
    assert all(lg.retention_days == 14 for lg in m.log_groups)


def test_function_sizes_follow_the_spec() -> None:
    m = model_of(architecture="x86_64")
    fmap, freduce, fcommit = (m.function(n) for n in ("map", "reduce", "commit"))
    assert (fmap.memory_mb, fmap.timeout_s) == (2048, 180)
    assert (freduce.memory_mb, freduce.timeout_s) == (3008, 300)
    assert fmap.ephemeral_storage_mb == 512 + 2 * 128
    assert freduce.ephemeral_storage_mb == 10240
    assert fcommit.ephemeral_storage_mb == 512
    for f in (fmap, freduce, fcommit):
        assert f.runtime == "python3.12"
        assert f.architecture == "x86_64"
        assert f.role == "lambda"
        assert f.handler.startswith("mrspec.aws.handlers.")
        assert f.environment["MRSPEC_WORK_URI"] == "s3://mrspec-wordcount-r1/runs/r1"


def test_ephemeral_storage_is_clamped() -> None:
    assert map_ephemeral_mb(1) == 514
    assert map_ephemeral_mb(100 * 1024**3) == 10240


def test_map_only_job_has_no_reduce_parts() -> None:
    m = model_of(map_only=True)
    assert [f.logical_name for f in m.functions] == ["map", "commit"]
    assert [p.name for p in m.phases] == ["map"]
    assert m.layout.reduce_manifest_key == ""
    states = m.state_machine.definition["States"]
    assert "ReducePhase" not in states
    assert states["MapPhase"]["Next"] == "Commit"
    assert m.state_machine.parent_transitions == 2


def test_local_locations_are_refused_with_a_hint() -> None:
    spec = make_spec(inputs=("/data/in",), output="/data/out")
    with pytest.raises(MrspecError) as info:
        lower(spec, run_id="r1", account_id=ACCOUNT)
    assert "/data/in" in str(info.value) and "--local" in str(info.value)
    m = lower(spec, run_id="r1", account_id=ACCOUNT, placeholders=True)
    assert m.layout.input_prefixes == ("s3://LOCAL-INPUT-0/",)
    m = lower(
        spec,
        run_id="r1",
        account_id=ACCOUNT,
        input_prefixes=["s3://b/in/"],
        output_prefix="s3://b/out/",
    )
    assert m.layout.output_prefix == "s3://b/out/"


def test_no_wildcard_actions_and_no_s3_star_allowed() -> None:
    for st in all_statements(model_of()):
        assert st["Effect"] == "Allow"
        for action in st["Action"]:
            assert "*" not in action, st
        for resource in st["Resource"]:
            if resource == "*":
                assert st["Sid"] == "DeliverLogs"


def _stmt(m: StackModel, role: str, sid: str) -> dict[str, Any]:
    return m.role(role).policies[0].document.statement(sid).to_json()


def test_lambda_role_statements_exactly() -> None:
    m = model_of(inputs=("s3://corpus/books/", "s3://corpus/papers/", "s3://other/x"))
    names = [
        s["Sid"]
        for s in all_statements(m)
        if s in m.role("lambda").policies[0].document.to_json()["Statement"]
    ]
    assert names == [
        "ReadInput",
        "ReadInputList0",
        "ReadInputList1",
        "WorkData",
        "WorkDataList",
        "WriteOutput",
        "WriteOutputList",
        "WriteLogs",
    ]
    assert _stmt(m, "lambda", "ReadInput") == {
        "Sid": "ReadInput",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": [
            "arn:aws:s3:::corpus/books/*",
            "arn:aws:s3:::corpus/papers/*",
            "arn:aws:s3:::other/x*",
        ],
    }
    assert _stmt(m, "lambda", "ReadInputList0")["Condition"] == {
        "StringLike": {"s3:prefix": ["books/*", "papers/*"]}
    }
    assert _stmt(m, "lambda", "ReadInputList1")["Resource"] == ["arn:aws:s3:::other"]
    work = _stmt(m, "lambda", "WorkData")
    assert work["Resource"] == ["arn:aws:s3:::mrspec-wordcount-r1/runs/r1/*"]
    assert set(work["Action"]) == {
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
    }
    out = _stmt(m, "lambda", "WriteOutput")
    assert out["Resource"] == ["arn:aws:s3:::results/wordcount/*"]
    assert "s3:DeleteObject" not in out["Action"] and "s3:PutObject" in out["Action"]
    assert _stmt(m, "lambda", "WriteOutputList")["Condition"] == {
        "StringLike": {"s3:prefix": ["wordcount/*"]}
    }
    logs = _stmt(m, "lambda", "WriteLogs")
    assert logs["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert logs["Resource"] == [
        f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/lambda/mrspec-wordcount-r1-{n}:*"
        for n in ("commit", "map", "merge", "reduce")
    ]


def test_state_machine_role_statements_exactly() -> None:
    m = model_of()
    fn = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:mrspec-wordcount-r1"
    assert _stmt(m, "states", "InvokeJobFunctions")["Resource"] == [
        f"{fn}-commit",
        f"{fn}-commit:*",
        f"{fn}-map",
        f"{fn}-map:*",
        f"{fn}-merge",
        f"{fn}-merge:*",
        f"{fn}-reduce",
        f"{fn}-reduce:*",
    ]
    assert _stmt(m, "states", "StartChildExecutions")["Resource"] == [m.state_machine.arn]
    ex = f"arn:aws:states:eu-west-1:{ACCOUNT}:execution:mrspec-wordcount-r1"
    manage = _stmt(m, "states", "ManageChildExecutions")
    assert manage["Action"] == ["states:DescribeExecution", "states:StopExecution"]
    assert manage["Resource"] == [f"{ex}:*", f"{ex}/*"]
    assert _stmt(m, "states", "ReadTaskManifests")["Resource"] == [
        "arn:aws:s3:::mrspec-wordcount-r1/runs/r1/manifests/map.json",
        "arn:aws:s3:::mrspec-wordcount-r1/runs/r1/manifests/reduce.json",
    ]
    assert _stmt(m, "states", "WriteMapResults")["Resource"] == [
        "arn:aws:s3:::mrspec-wordcount-r1/runs/r1/sfn-results/*"
    ]
    trust = m.role("states").trust.to_json()["Statement"][0]
    assert trust["Principal"] == {"Service": "states.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": [ACCOUNT]}}


def test_bucket_is_private_encrypted_tls_only() -> None:
    b = model_of().work_bucket
    assert b.force_destroy and b.sse_algorithm == "AES256"
    assert all(vars(b.public_access_block).values())
    deny = b.policy.to_json()["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": ["false"]}}


def test_distributed_map_phases() -> None:
    m = model_of()
    d = m.state_machine.definition
    mp = d["States"]["MapPhase"]
    assert mp["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert mp["ItemReader"]["Parameters"] == {
        "Bucket": "mrspec-wordcount-r1",
        "Key": "runs/r1/manifests/map.json",
    }
    assert mp["MaxConcurrency"] == 50
    assert mp["ToleratedFailurePercentage"] == 0
    assert mp["ResultWriter"]["Parameters"]["Prefix"] == "runs/r1/sfn-results/map"
    assert mp["Next"] == "ReducePhase"
    rp = d["States"]["ReducePhase"]
    assert rp["MaxConcurrency"] == 4  # never more than the partitions
    assert rp["Next"] == "Commit"
    task = mp["ItemProcessor"]["States"]["RunMapTask"]
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["OutputPath"] == "$.Payload"
    assert task["Parameters"]["FunctionName"] == m.function("map").arn
    service, fatal, task_errors = task["Retry"]
    assert fatal == {"ErrorEquals": ["TaskFailedError"], "MaxAttempts": 0}
    assert service == {
        "ErrorEquals": list(asl.LAMBDA_SERVICE_ERRORS),
        "IntervalSeconds": 2,
        "MaxAttempts": 6,
        "BackoffRate": 2.0,
        "JitterStrategy": "FULL",
    }
    assert task_errors["ErrorEquals"] == ["States.ALL"]
    assert task_errors["MaxAttempts"] == 2  # 3 attempts in all
    assert task_errors["JitterStrategy"] == "FULL"  # retries of many failed tasks spread out
    # A failed phase goes through the failure report to a Fail state.
    assert mp["Catch"][0]["Next"] == "ReportMapFailure"
    assert d["States"]["ReportMapFailure"]["Next"] == "MapFailed"
    assert d["States"]["MapFailed"]["Type"] == "Fail"
    json.dumps(d)  # plain JSON data


def test_single_attempt_has_no_task_retrier() -> None:
    task = model_of(max_attempts=1).state_machine.definition["States"]["MapPhase"]["ItemProcessor"][
        "States"
    ]["RunMapTask"]
    assert [r["ErrorEquals"][0] for r in task["Retry"]] == ["Lambda.ServiceException"]


def test_express_children_only_when_all_attempts_fit_in_five_minutes() -> None:
    assert asl.child_execution_type(60, 3) == "EXPRESS"  # 180 + 3 s of waits + 60 margin
    assert asl.child_execution_type(80, 3) == "STANDARD"  # 240 + 3 + 60 > 300
    assert asl.child_execution_type(180, 1) == "EXPRESS"
    assert asl.child_execution_type(300, 1) == "STANDARD"
    m = model_of(map_timeout_s=60, reduce_timeout_s=600)
    assert m.phase("map").execution_type == "EXPRESS"
    assert m.phase("reduce").execution_type == "STANDARD"
    d = m.state_machine.definition["States"]
    assert d["MapPhase"]["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] == "EXPRESS"


def test_emulator_variant_differs_only_where_moto_needs() -> None:
    real = model_of(map_timeout_s=60)
    emu = model_of(map_timeout_s=60, emulator=True)
    a, b = real.state_machine.definition_json(), emu.state_machine.definition_json()
    diff = [(x, y) for x, y in zip(a.splitlines(), b.splitlines(), strict=True) if x != y]
    assert sorted(diff) == sorted(
        [
            ('          "ExecutionType": "EXPRESS"', '          "ExecutionType": "STANDARD"'),
            ('      "ToleratedFailurePercentage": 0,', '      "ToleratedFailurePercentage": 0.0,'),
            ('      "ToleratedFailurePercentage": 0,', '      "ToleratedFailurePercentage": 0.0,'),
        ]
    )


def test_to_json_is_stable_and_complete() -> None:
    a, b = model_of().to_json_text(), model_of().to_json_text()
    assert a == b and a.endswith("\n")
    data = json.loads(a)
    assert [r["kind"] for r in data["resources"]].count("function") == 4  # map merge reduce commit
    assert data["phases"][0]["execution_type"] == "STANDARD"


def test_new_run_ids_are_valid_and_differ() -> None:
    ids = {new_run_id() for _ in range(20)}
    assert len(ids) == 20 and all(RUN_ID_RE.match(i) for i in ids)


def test_definition_builder_refuses_unknown_phase_kinds() -> None:
    phase = asl.PhaseInput("map", "arn:f", "k", "p", 1, "STANDARD")
    odd = asl.PhaseInput("shuffle", "arn:f", "k", "p", 1, "STANDARD")
    base = {
        "job_name": "j",
        "run_id": "r",
        "bucket": "b",
        "work_uri": "s3://b/r",
        "commit_function_arn": "arn:c",
        "max_attempts": 1,
    }
    with pytest.raises(ValueError, match="unknown phase kind 'shuffle'"):
        asl.build_definition(asl.DefinitionInput(phases=(phase, odd), **base))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="first phase is its map phase"):
        asl.build_definition(asl.DefinitionInput(phases=(odd,), **base))  # type: ignore[arg-type]
