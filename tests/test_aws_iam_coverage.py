"""The Lambda role allows every S3 request the tasks really make, and no more is needed.

A whole job runs through the handlers against moto's S3 while a botocore hook records
each request (operation, bucket, key or prefix). Each request is mapped to its IAM action
and resource ARN and checked against the lowered role policy by a small evaluator written
here from the IAM rules (Allow statements, ``*`` wildcards, ``StringLike`` on
``s3:prefix``). An S3 operation the mapping does not know fails the test, so a new kind of
request in the runtime forces a conscious decision about its permission.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest
from aws_specs import REPO, make_spec
from local_jobs import with_fan_in

from mrspec.aws import handlers
from mrspec.aws.lower import lower
from mrspec.plan.planner import plan_job
from mrspec.runtime import RunShape, TaskConfig
from mrspec.spec.model import CodeSpec

ACCOUNT = "123456789012"
IN_BUCKET, OUT_BUCKET = "iam-input", "iam-output"

# S3 operation -> IAM action (AWS "Actions, resources, and condition keys for Amazon S3").
ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",  # checked per key
}


def requests_of(operation: str, params: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(IAM action, resource ARN, s3:prefix or None) for one S3 API call."""
    if operation not in ACTIONS:
        raise AssertionError(f"unmapped S3 operation {operation}: decide its IAM action")
    action, bucket = ACTIONS[operation], params["Bucket"]
    if action == "s3:ListBucket":
        return [(action, f"arn:aws:s3:::{bucket}", params.get("Prefix", ""))]
    if operation == "DeleteObjects":
        keys = [o["Key"] for o in params["Delete"]["Objects"]]
    else:
        keys = [params["Key"]]
    return [(action, f"arn:aws:s3:::{bucket}/{key}", None) for key in keys]


def allowed(policy: dict[str, Any], action: str, resource: str, prefix: str | None) -> bool:
    for st in policy["Statement"]:
        if st["Effect"] != "Allow":
            continue
        if not any(fnmatch.fnmatchcase(action, a) for a in st["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in st["Resource"]):
            continue
        ok = True
        for operator, keys in st.get("Condition", {}).items():
            assert operator == "StringLike", operator
            for key, patterns in keys.items():
                assert key == "s3:prefix", key
                ok = (
                    ok
                    and prefix is not None
                    and any(fnmatch.fnmatchcase(prefix, p) for p in patterns)
                )
        if ok:
            return True
    return False


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    from moto import mock_aws

    from mrspec.storage.s3 import S3Storage

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    S3Storage.reset_shared()
    with mock_aws():
        import boto3

        yield boto3.client("s3", region_name="us-east-1")
    S3Storage.reset_shared()


def _recorded_s3_calls() -> list[tuple[str, dict[str, Any]]]:
    """Every S3 request the runtime's shared client makes from now on: (operation, params)."""
    from mrspec.storage.s3 import S3Storage

    calls: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, dict(params)))

    S3Storage.shared().client.meta.events.register("before-parameter-build.s3", record)
    return calls


def test_lambda_role_allows_every_request_of_a_run(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for bucket in (IN_BUCKET, OUT_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for i in range(3):
        body = "\n".join(f"w{j % 17} w{(i * j) % 5} the end" for j in range(300)) + "\n"
        s3.put_object(Bucket=IN_BUCKET, Key=f"corpus/books/b{i}.txt", Body=body.encode())
    spec = make_spec(inputs=(f"s3://{IN_BUCKET}/corpus/books/",), output=f"s3://{OUT_BUCKET}/wc/")
    spec = dataclasses.replace(
        spec,
        code=CodeSpec(path=REPO / "specs" / "wordcount"),
        input=dataclasses.replace(spec.input, split_size=2000),
        map=dataclasses.replace(spec.map, bin_size=4000),
    )
    # the driver lists the input with the user's credentials; a fan-in of 2 gives the run
    # merge levels, so the merge function's requests are checked too
    plan = with_fan_in(plan_job(spec), 2)
    assert len(plan.map_tasks) > 2 and plan.merge_levels
    model = lower(spec, plan, run_id="r1", account_id=ACCOUNT)
    work_bucket = model.layout.bucket
    s3.create_bucket(Bucket=work_bucket)
    s3.put_object(
        Bucket=work_bucket,
        Key=model.layout.map_manifest_key,
        Body=json.dumps([t.to_json() for t in plan.map_tasks]).encode(),
    )
    config = dataclasses.replace(TaskConfig.from_spec(spec), output_prefix=spec.output.prefix)
    (tmp_path / "config.json").write_text(config.to_json())
    monkeypatch.setenv(handlers.TASK_CONFIG_ENV, str(tmp_path / "config.json"))
    monkeypatch.setenv(handlers.SCRATCH_ENV, str(tmp_path))

    calls = _recorded_s3_calls()

    work = model.layout.work_uri
    for task in plan.map_tasks:
        handlers.map_handler({"phase": "map", "task": task.to_json(), "work": work, "attempt": 0})
    for level in plan.merge_levels:
        for merge in level.tasks:
            handlers.merge_handler(
                {"phase": "merge", "task": merge.to_json(), "work": work, "attempt": 0}
            )
    for task in plan.reduce_tasks:
        handlers.reduce_handler(
            {"phase": "reduce", "task": task.to_json(), "work": work, "attempt": 0}
        )
    shape = RunShape.of_plan(plan).to_json()
    handlers.commit_handler(
        {"action": "commit", "work": work, "started": 0, "run": {"exchange": shape}}
    )
    assert s3.get_object(Bucket=OUT_BUCKET, Key="wc/_SUCCESS")["ContentLength"] > 0

    policy = model.role("lambda").policies[0].document.to_json()
    operations = sorted({op for op, _ in calls})
    print("S3 operations of the run:", operations, len(calls))
    assert {"GetObject", "PutObject", "ListObjectsV2"} <= set(operations), operations
    denied = [
        (op, req)
        for op, params in calls
        for req in requests_of(op, params)
        if not allowed(policy, *req)
    ]
    assert not denied, denied

    # The evaluator does deny: writes outside the output and reads outside the input.
    assert not allowed(policy, "s3:PutObject", f"arn:aws:s3:::{IN_BUCKET}/corpus/books/x", None)
    assert not allowed(policy, "s3:GetObject", f"arn:aws:s3:::{IN_BUCKET}/other/x", None)
    assert not allowed(policy, "s3:DeleteObject", f"arn:aws:s3:::{OUT_BUCKET}/wc/part-00000", None)
    assert not allowed(policy, "s3:ListBucket", f"arn:aws:s3:::{work_bucket}", "runs/other/")
    assert not allowed(policy, "s3:GetObject", f"arn:aws:s3:::{work_bucket}/runs/r2/x", None)


def test_lambda_role_allows_every_request_of_a_run_with_steps(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both steps of topwords through the handlers as the state machine calls them (each
    payload with its step, each step's packaged config): the later step's reads of the
    step before's parts, its shuffle under ``step-1/`` and the commit's reads of every
    step's results all pass the one role, and its writes stay off the user's output."""
    from mrspec.plan import items
    from mrspec.spec.loader import load_spec
    for bucket in (IN_BUCKET, OUT_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for i in range(2):
        body = "\n".join(f"w{j % 13} w{(i * j) % 7} the end" for j in range(200)) + "\n"
        s3.put_object(Bucket=IN_BUCKET, Key=f"texts/t{i}.txt", Body=body.encode())
    spec = load_spec(REPO / "specs" / "topwords" / "job.yaml")
    spec = dataclasses.replace(
        spec, input=dataclasses.replace(spec.input, prefixes=(f"s3://{IN_BUCKET}/texts/",)),
        output=dataclasses.replace(spec.output, prefix=f"s3://{OUT_BUCKET}/top/"))
    plan = plan_job(spec)
    model = lower(spec, plan, run_id="r2", account_id=ACCOUNT)
    s3.create_bucket(Bucket=model.layout.bucket)
    last = len(spec.steps) - 1
    for step in range(last + 1):
        config = dataclasses.replace(TaskConfig.from_spec(spec, step), code_path=str(spec.code.path))
        if step == last:
            config = dataclasses.replace(config, output_prefix=spec.output.prefix)
        (tmp_path / handlers.config_file(step)).write_text(config.to_json())
    monkeypatch.setenv(handlers.TASK_CONFIG_ENV, str(tmp_path / handlers.config_file(0)))
    monkeypatch.setenv(handlers.SCRATCH_ENV, str(tmp_path))
    calls = _recorded_s3_calls()
    work = model.layout.work_uri
    for step in plan.steps:
        base = {"step": step.step, "work": work, "attempt": 0}
        for task in step.map_tasks:
            handlers.map_handler({"phase": "map", "task": items.map_item(task), **base})
        for task in step.reduce_tasks:
            handlers.reduce_handler({"phase": "reduce", "task": task.to_json(), **base})
    shapes = [RunShape.of_step(step).to_json() for step in plan.steps]
    summary = handlers.commit_handler({"action": "commit", "step": last, "work": work,
                                       "started": 0,
                                       "run": {"exchange": shapes[-1], "steps": shapes}})
    assert summary["parts"] == 1
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=OUT_BUCKET)["Contents"]]
    assert sorted(keys) == ["top/_SUCCESS", "top/part-00000"]  # no step's data in the output
    assert any("/step-1/" in str(p.get("Key", "")) for _, p in calls)  # step 1's own keys

    policy = model.role("lambda").policies[0].document.to_json()
    denied = [(op, req) for op, params in calls for req in requests_of(op, params)
              if not allowed(policy, *req)]
    assert not denied, denied
