"""Least-privilege IAM for a job run: the Lambda role, the state machine role, the trust
policies and the working bucket's TLS-only policy. Pure functions over names and ARNs.

Rules (checked by tests): no ``*`` in any Allow statement's actions, no ``s3:*`` allowed,
every S3 grant scoped to a bucket prefix. The only ``"Resource": "*"`` is the log-delivery
statement of the state machine role: those CloudWatch Logs actions do not support
resource-level permissions (AWS "Logging using CloudWatch Logs" for Step Functions).

Output semantics: the functions may write, read back and list objects under the output
prefix (the commit checks every part exists; without ``s3:ListBucket`` a missing key
answers 403 instead of 404), but never delete there. Replacing an
existing output (``--overwrite``) is done by the driver with the user's own credentials
after the new run has committed (``mrspec.runtime.replace``), so the Lambda role never
needs ``s3:DeleteObject`` on the output.

SSE-KMS buckets: the driver's preflight reads each job bucket's default encryption; a
customer key found there gets ``kms:Decrypt`` (input) or ``kms:GenerateDataKey`` and
``kms:Decrypt`` (output: multipart uploads read their own data keys back), on exactly
that key's ARN and only through S3 (``kms:ViaService``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mrspec.aws.model import Condition, Location, PolicyDocument, Statement
from mrspec.spec.model import split_s3_uri

LAMBDA_SERVICE = "lambda.amazonaws.com"
STATES_SERVICE = "states.amazonaws.com"

LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
)


def _prefix_pattern(key_prefix: str) -> str:
    """``"data/in"`` -> ``"data/in*"``; ``""`` -> ``"*"`` (a whole bucket)."""
    return f"{key_prefix}*"


def _s3_prefix_grants(
    sid: str,
    location: Location,
    uris: Sequence[str],
    object_actions: tuple[str, ...],
    *,
    list_bucket: bool,
) -> list[Statement]:
    """Object actions on ``bucket/prefix*`` for each URI, plus ``s3:ListBucket`` limited
    by an ``s3:prefix`` condition (one statement per bucket)."""
    by_bucket: dict[str, list[str]] = {}
    for uri in uris:
        bucket, key = split_s3_uri(uri)
        by_bucket.setdefault(bucket, []).append(key)
    out = [
        Statement(
            sid=sid,
            actions=object_actions,
            resources=tuple(
                location.object_arn(b, _prefix_pattern(k))
                for b, keys in sorted(by_bucket.items())
                for k in sorted(set(keys))
            ),
        )
    ]
    if list_bucket:
        for n, (bucket, keys) in enumerate(sorted(by_bucket.items())):
            out.append(
                Statement(
                    sid=f"{sid}List{n}" if len(by_bucket) > 1 else f"{sid}List",
                    actions=("s3:ListBucket",),
                    resources=(location.bucket_arn(bucket),),
                    conditions=(
                        Condition(
                            "StringLike",
                            "s3:prefix",
                            tuple(_prefix_pattern(k) for k in sorted(set(keys))),
                        ),
                    ),
                )
            )
    return out


@dataclass(frozen=True)
class KmsKeys:
    """The customer KMS keys (ARNs) of the job's buckets' default encryption."""

    read: tuple[str, ...] = ()  # input buckets
    write: tuple[str, ...] = ()  # the output bucket

    def to_json(self) -> dict[str, list[str]]:
        return {"read": list(self.read), "write": list(self.write)}


def kms_grants(location: Location, keys: KmsKeys) -> list[Statement]:
    """What the tasks need on the buckets' keys, and nothing more."""
    via_s3 = (
        Condition("StringEquals", "kms:ViaService", (f"s3.{location.region}.amazonaws.com",)),
    )
    out: list[Statement] = []
    if keys.read:
        out.append(
            Statement(
                "DecryptInput", ("kms:Decrypt",), tuple(sorted(set(keys.read))), conditions=via_s3
            )
        )
    if keys.write:
        out.append(
            Statement(
                "EncryptOutput",
                ("kms:Decrypt", "kms:GenerateDataKey"),
                tuple(sorted(set(keys.write))),
                conditions=via_s3,
            )
        )
    return out


def lambda_trust() -> PolicyDocument:
    return PolicyDocument(
        (
            Statement(
                sid="LambdaAssumeRole",
                actions=("sts:AssumeRole",),
                principal_service=LAMBDA_SERVICE,
            ),
        )
    )


def states_trust(location: Location) -> PolicyDocument:
    # Confused-deputy protection recommended by AWS for Step Functions roles.
    return PolicyDocument(
        (
            Statement(
                sid="StatesAssumeRole",
                actions=("sts:AssumeRole",),
                principal_service=STATES_SERVICE,
                conditions=(
                    Condition("StringEquals", "aws:SourceAccount", (location.account_id,)),
                ),
            ),
        )
    )


def lambda_policy(
    location: Location,
    *,
    input_prefixes: Sequence[str],
    output_prefix: str,
    work_bucket: str,
    work_prefix: str,
    log_group_arns: Sequence[str],
    kms_keys: KmsKeys | None = None,
) -> PolicyDocument:
    """The functions' permissions: read the input, read/write the run's work prefix,
    write the output prefix, write their own logs, use the buckets' KMS keys."""
    statements: list[Statement] = []
    statements += _s3_prefix_grants(
        "ReadInput", location, input_prefixes, ("s3:GetObject",), list_bucket=True
    )
    statements += _s3_prefix_grants(
        "WorkData",
        location,
        [f"s3://{work_bucket}/{work_prefix}"],
        (
            "s3:AbortMultipartUpload",
            "s3:DeleteObject",
            "s3:GetObject",
            "s3:ListMultipartUploadParts",
            "s3:PutObject",
        ),
        list_bucket=True,
    )
    statements += _s3_prefix_grants(
        "WriteOutput",
        location,
        [output_prefix],
        ("s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"),
        list_bucket=True,
    )
    statements.append(
        Statement(
            sid="WriteLogs",
            actions=("logs:CreateLogStream", "logs:PutLogEvents"),
            resources=tuple(f"{arn}:*" for arn in sorted(log_group_arns)),
        )
    )
    statements += kms_grants(location, kms_keys or KmsKeys())
    return PolicyDocument(tuple(statements))


def states_policy(
    location: Location,
    *,
    state_machine_name: str,
    function_arns: Sequence[str],
    work_bucket: str,
    manifest_keys: Sequence[str],
    results_prefix: str,
    logging: bool,
) -> PolicyDocument:
    """The state machine's permissions for a Distributed Map workflow over Lambda."""
    sm_arn = location.state_machine_arn(state_machine_name)
    execution_base = location.execution_arn(state_machine_name, "")[:-1]  # "...:execution:<sm>"
    statements = [
        Statement(
            sid="InvokeJobFunctions",
            actions=("lambda:InvokeFunction",),
            resources=tuple(r for arn in sorted(function_arns) for r in (arn, f"{arn}:*")),
        ),
        Statement(
            sid="StartChildExecutions",
            actions=("states:StartExecution",),
            resources=(sm_arn,),
        ),
        Statement(
            sid="ManageChildExecutions",
            actions=("states:DescribeExecution", "states:StopExecution"),
            resources=(f"{execution_base}:*", f"{execution_base}/*"),
        ),
        Statement(
            sid="ReadTaskManifests",
            actions=("s3:GetObject",),
            resources=tuple(location.object_arn(work_bucket, k) for k in sorted(manifest_keys)),
        ),
        Statement(
            sid="WriteMapResults",
            actions=(
                "s3:AbortMultipartUpload",
                "s3:GetObject",
                "s3:ListMultipartUploadParts",
                "s3:PutObject",
            ),
            resources=(location.object_arn(work_bucket, _prefix_pattern(results_prefix)),),
        ),
    ]
    if logging:
        statements.append(
            Statement(sid="DeliverLogs", actions=LOG_DELIVERY_ACTIONS, resources=("*",))
        )
    return PolicyDocument(tuple(statements))


def tls_only_bucket_policy(location: Location, bucket: str) -> PolicyDocument:
    """Deny every request to the bucket that does not use TLS.

    The one place ``s3:*`` appears, in a Deny: it must cover every action.
    """
    return PolicyDocument(
        (
            Statement(
                sid="DenyInsecureTransport",
                effect="Deny",
                principal_any=True,
                actions=("s3:*",),
                resources=(location.bucket_arn(bucket), location.object_arn(bucket, "*")),
                conditions=(Condition("Bool", "aws:SecureTransport", ("false",)),),
            ),
        )
    )
