"""Pulumi program: the AWS resources of one mrspec job run.

    pulumi config set mrspec:spec ../specs/wordcount/job.yaml     # or MRSPEC_SPEC=...
    pulumi config set mrspec:input s3://my-bucket/corpus/         # when the spec is local
    pulumi config set mrspec:output s3://my-bucket/results/wc/
    pulumi config set aws:region us-east-1
    pulumi up

It creates the stack only. Running the job (uploading the task manifests, starting the
state machine, collecting the output) is what `mrspec apply` does; its review artifacts
are in stacks/<job-name>/. Physical names use the run id (config mrspec:runId).
"""

from __future__ import annotations

import os
from pathlib import Path

import pulumi
import pulumi_aws as aws

from mrspec.aws.component import MapReduceJob
from mrspec.aws.lower import lower
from mrspec.aws.package import build_package
from mrspec.spec.loader import load_spec

HERE = Path(__file__).resolve().parent


def main() -> None:
    config = pulumi.Config("mrspec")
    spec_path = config.get("spec") or os.environ.get("MRSPEC_SPEC")
    if not spec_path:
        raise ValueError(
            "no job spec: run `pulumi config set mrspec:spec path/to/job.yaml` (or set MRSPEC_SPEC)"
        )
    spec = load_spec((HERE / spec_path).resolve())
    inputs = [p.strip() for p in (config.get("input") or "").split(",") if p.strip()]
    identity = aws.get_caller_identity()
    model = lower(
        spec,
        run_id=config.get("runId") or "manual",
        account_id=identity.account_id,
        input_prefixes=inputs or None,
        output_prefix=config.get("output") or None,
    )
    package_dir = Path(os.environ.get("MRSPEC_PACKAGE_DIR") or HERE / ".packages")
    package = build_package(spec, package_dir, output_prefix=model.layout.output_prefix)
    provider = aws.Provider("mrspec-aws", region=model.region)
    job = MapReduceJob(
        model.stack_name, model, package.path, opts=pulumi.ResourceOptions(providers=[provider])
    )
    pulumi.export("working_bucket", job.working_bucket_name)
    pulumi.export("state_machine_arn", job.state_machine_arn)
    pulumi.export("functions", job.function_names)
    pulumi.export("log_groups", job.log_group_names)
    pulumi.export("layout", model.layout.to_json())
    pulumi.export("package_sha256", package.sha256)


main()
