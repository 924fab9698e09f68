"""stacks/__main__.py (the Pulumi CLI program) under pulumi.runtime.Mocks."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
from aws_specs import REPO

ACCOUNT = "210987654321"


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[tuple[str, dict[str, Any]]] = []
        self.calls: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append((args.typ, dict(args.inputs)))
        outputs = dict(args.inputs)
        name = args.inputs.get("name") or args.inputs.get("bucket") or args.name
        if args.typ == "aws:lambda/function:Function":
            outputs["arn"] = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
        if args.typ == "aws:s3/bucket:Bucket":
            outputs["bucket"] = name
        return f"{name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        self.calls.append(args.token)
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/u",
                "id": "x",
                "userId": "x",
            }
        return {}


def test_project_file_names_the_python_runtime() -> None:
    text = (REPO / "stacks" / "Pulumi.yaml").read_text()
    assert "name: mrspec" in text and "name: python" in text


def test_program_builds_the_job_from_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="mrspec", stack="dev", preview=False)
    pulumi.runtime.set_all_config(
        {
            "mrspec:spec": str(REPO / "specs" / "wordcount" / "job.yaml"),
            "mrspec:input": "s3://corpus/books/",
            "mrspec:output": "s3://results/wc/",
            "mrspec:runId": "cli1",
        }
    )
    monkeypatch.setenv("MRSPEC_PACKAGE_DIR", str(tmp_path / "packages"))

    @pulumi.runtime.test
    def program() -> Any:
        runpy.run_path(str(REPO / "stacks" / "__main__.py"), run_name="__main__")
        return pulumi.Output.from_input(None)

    try:
        program()
    finally:
        pulumi.runtime.set_all_config({})
    assert "aws:index/getCallerIdentity:getCallerIdentity" in mocks.calls
    types = [t for t, _ in mocks.resources]
    assert "pulumi:providers:aws" in types
    assert types.count("aws:lambda/function:Function") == 4
    functions = [i for t, i in mocks.resources if t == "aws:lambda/function:Function"]
    assert {f["name"] for f in functions} == {
        f"mrspec-wordcount-cli1-{n}" for n in ("map", "merge", "reduce", "commit")
    }
    policies = [i["policy"] for t, i in mocks.resources if t == "aws:iam/rolePolicy:RolePolicy"]
    assert any(f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group" in p for p in policies)
    assert any("arn:aws:s3:::corpus/books/*" in p for p in policies)
    assert len(list((tmp_path / "packages").glob("wordcount-*.zip"))) == 1
