"""Preflight checks of an AWS run: each refuses with a clear error before anything exists.

Order matters only for the user's experience: the cheapest, most common mistakes first
(no CLI, no credentials, local paths), then the ones that need AWS calls.
"""

from __future__ import annotations

import sys
from typing import Any

from mrspec.aws.iam import KmsKeys
from mrspec.errors import InputError, RefusedError
from mrspec.spec.model import JobSpec, is_s3_uri, split_s3_uri


def check_locations(spec: JobSpec) -> None:
    """An AWS run reads and writes S3 only."""
    local_inputs = [p for p in spec.input.prefixes if not is_s3_uri(p)]
    if local_inputs:
        raise RefusedError(
            f"input {local_inputs[0]} is a local path; a run on AWS reads its input from S3",
            hint="upload it (`aws s3 sync DIR s3://bucket/prefix/`) and point input.prefix at "
            "the s3:// URI, or run this machine's engine with --local",
        )
    if not is_s3_uri(spec.output.prefix):
        raise RefusedError(
            f"output {spec.output.prefix} is a local path; a run on AWS writes its output to S3",
            hint="set output.prefix to an s3:// URI, or run with --local",
        )


def aws_session(spec: JobSpec) -> Any:
    """A boto3 session in the spec's region, refusing when there are no credentials."""
    import boto3
    import botocore.exceptions

    try:
        session = boto3.Session(region_name=spec.aws.region)
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:  # a broken profile, config file, ...
        raise RefusedError(
            f"cannot load AWS credentials: {exc}",
            hint="check AWS_PROFILE and ~/.aws/config; `aws sts get-caller-identity` must work",
        ) from exc
    if credentials is None:
        raise RefusedError(
            "no AWS credentials found (environment, ~/.aws/credentials, SSO or instance role)",
            hint="run `aws configure` or `aws sso login`, or set AWS_PROFILE; "
            "`aws sts get-caller-identity` must work",
        )
    regions = {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("stepfunctions", partition_name=partition)
    }
    if regions and spec.aws.region not in regions:
        raise RefusedError(
            f"aws.region {spec.aws.region!r} is not a region where Step Functions is offered",
            hint="use a region name such as us-east-1 or eu-west-1",
        )
    return session


def check_identity(session: Any) -> str:
    """The caller's account id; refuses when the credentials do not work."""
    import botocore.exceptions

    try:
        identity = session.client("sts").get_caller_identity()
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise RefusedError(
            f"the AWS credentials do not work: {exc}",
            hint="refresh them (`aws sso login`, new keys) and retry",
        ) from exc
    return str(identity["Account"])


def check_output_empty(session: Any, spec: JobSpec, overwrite: bool) -> None:
    """Refuse to write over an existing output unless asked to."""
    import botocore.exceptions

    bucket, prefix = split_s3_uri(spec.output.prefix)
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    try:
        listed = session.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise RefusedError(
                f"the output bucket {bucket!r} does not exist",
                hint="create it first (mrspec never creates or deletes the output bucket)",
            ) from exc
        raise RefusedError(f"cannot list the output prefix {spec.output.prefix}: {exc}") from exc
    if listed.get("KeyCount", 0) and not overwrite:
        raise RefusedError(
            f"output prefix {spec.output.prefix} is not empty",
            hint="choose another output.prefix, delete the old output, or pass --overwrite",
        )


def check_input_readable(session: Any, spec: JobSpec) -> None:
    """Turn S3 access errors on the input into a clear message (planning lists it next)."""
    import botocore.exceptions

    for uri in spec.input.prefixes:
        bucket, prefix = split_s3_uri(uri)
        try:
            session.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise InputError(
                f"cannot read the input prefix {uri}: {code or exc}",
                hint="check the bucket name, region and your permissions (s3:ListBucket, s3:GetObject)",
            ) from exc


def check_concurrency(session: Any, spec: JobSpec) -> int | None:
    """Refuse a max_concurrency above the account's Lambda concurrency; returns the limit."""
    import botocore.exceptions

    try:
        settings = session.client("lambda").get_account_settings()
    except (botocore.exceptions.ClientError, NotImplementedError):
        return None  # not allowed to look (or an emulator without it): AWS will throttle
    limit = int(settings.get("AccountLimit", {}).get("ConcurrentExecutions", 0)) or None
    if limit is not None and spec.limits.max_concurrency > limit:
        raise RefusedError(
            f"limits.max_concurrency is {spec.limits.max_concurrency} but this account runs at "
            f"most {limit} Lambda functions at once",
            hint=f"lower limits.max_concurrency to {limit} or less, or ask AWS for a higher "
            "concurrency quota (Service Quotas: Lambda concurrent executions)",
        )
    return limit


def bucket_kms_keys(session: Any, spec: JobSpec) -> KmsKeys:
    """The customer KMS keys of the input and output buckets' default encryption (SSE-KMS),
    as key ARNs. A bucket without one, or with the AWS managed ``aws/s3`` key (usable by
    the account's principals through S3 without a grant), adds nothing."""
    read = [k for uri in spec.input.prefixes if (k := _bucket_key(session, uri))]
    write = _bucket_key(session, spec.output.prefix)
    return KmsKeys(read=tuple(sorted(set(read))), write=(write,) if write else ())


def _bucket_key(session: Any, uri: str) -> str | None:
    import botocore.exceptions

    bucket, _ = split_s3_uri(uri)
    try:
        config = session.client("s3").get_bucket_encryption(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ServerSideEncryptionConfigurationNotFoundError":
            return None
        sys.stderr.write(
            f"warning: cannot read the encryption of bucket {bucket!r} ({code}); if it uses "
            "SSE-KMS the tasks will lack kms:Decrypt/kms:GenerateDataKey on its key\n"
        )
        return None
    for rule in config.get("ServerSideEncryptionConfiguration", {}).get("Rules", []):
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        key = default.get("KMSMasterKeyID")
        if str(default.get("SSEAlgorithm", "")).startswith("aws:kms") and key:
            return _key_arn(session, str(key))
    return None


def _key_arn(session: Any, key: str) -> str:
    """A key id, alias or ARN as the key's ARN (IAM grants name keys, not aliases)."""
    if key.startswith("arn:") and ":key/" in key:
        return key
    import botocore.exceptions

    try:
        return str(session.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise RefusedError(
            f"the bucket's SSE-KMS key {key!r} cannot be resolved to a key ARN: {exc}",
            hint="allow kms:DescribeKey on it, or set the bucket's key by its ARN",
        ) from exc
