"""Physical names and ARNs of a job run: deterministic from the job name and a run id.

Because every name is fixed before anything exists, every ARN is known up front: IAM
policies can name the state machine, its executions and the functions without a
dependency cycle. Pure functions and frozen data; re-exported by ``mrspec.aws.model``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# AWS name limits (AWS docs: Lambda function name 64, IAM role name 64, S3 bucket 3-63
# lowercase, state machine 80, log group 512).
MAX_FUNCTION_NAME = 64
MAX_ROLE_NAME = 64
MAX_BUCKET_NAME = 63
MAX_STATE_MACHINE_NAME = 80
MAX_LOG_GROUP_NAME = 512

RUN_ID_RE = re.compile(r"^[a-z0-9]{1,10}$")
MAX_RUN_ID = 10
NAME_PREFIX = "mrspec-"
# The longest suffix appended to "<prefix>-<job>-<run>" is 8 characters ("-reduce9", the
# reduce function of a job's tenth step; "-reduce", "-lambda", "-states", "-commit" are
# 7); the job part is shortened so every name fits.
_LONGEST_SUFFIX = 8
MAX_JOB_PART = MAX_FUNCTION_NAME - len(NAME_PREFIX) - 1 - MAX_RUN_ID - _LONGEST_SUFFIX


# --------------------------------------------------------------------------- names


def job_name_part(job_name: str) -> str:
    """The job name as it appears inside physical names: lowercase ``[a-z0-9-]``, at most
    ``MAX_JOB_PART`` characters (longer names keep a prefix plus a 4-hex hash)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", job_name.lower()).strip("-") or "job"
    cleaned = re.sub(r"-{2,}", "-", cleaned)
    if len(cleaned) <= MAX_JOB_PART:
        return cleaned
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:4]
    return cleaned[: MAX_JOB_PART - 5].rstrip("-") + "-" + digest


@dataclass(frozen=True)
class ResourceNames:
    """Every physical name of a run, derived from the job name and the run id."""

    job_name: str
    run_id: str

    def __post_init__(self) -> None:
        if not RUN_ID_RE.match(self.run_id):
            raise ValueError(f"run id must match {RUN_ID_RE.pattern}: {self.run_id!r}")

    @property
    def base(self) -> str:
        """``mrspec-<job>-<run>``: the stack name, the bucket and the state machine name."""
        return f"{NAME_PREFIX}{job_name_part(self.job_name)}-{self.run_id}"

    @property
    def bucket(self) -> str:
        return self.base

    @property
    def state_machine(self) -> str:
        return self.base

    def function(self, logical: str) -> str:
        return f"{self.base}-{logical}"

    def role(self, logical: str) -> str:
        return f"{self.base}-{logical}"

    def function_log_group(self, logical: str) -> str:
        # Lambda's default log group name, so the functions log there without extra config.
        return f"/aws/lambda/{self.function(logical)}"

    @property
    def state_machine_log_group(self) -> str:
        # AWS recommends the /aws/vendedlogs/ prefix for Step Functions log groups.
        return f"/aws/vendedlogs/states/{self.state_machine}"


# --------------------------------------------------------------------------- ARNs


@dataclass(frozen=True)
class Location:
    """Where the stack lives: ARNs are built from these and the physical names."""

    region: str
    account_id: str
    partition: str = "aws"

    def bucket_arn(self, bucket: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}"

    def object_arn(self, bucket: str, key_pattern: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}/{key_pattern}"

    def function_arn(self, name: str) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account_id}:function:{name}"

    def role_arn(self, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role/{name}"

    def policy_arn(self, name: str) -> str:
        """A customer managed policy of the stack."""
        return f"arn:{self.partition}:iam::{self.account_id}:policy/{name}"

    def state_machine_arn(self, name: str) -> str:
        return f"arn:{self.partition}:states:{self.region}:{self.account_id}:stateMachine:{name}"

    def execution_arn(self, state_machine: str, execution: str) -> str:
        return (
            f"arn:{self.partition}:states:{self.region}:{self.account_id}"
            f":execution:{state_machine}:{execution}"
        )

    def log_group_arn(self, name: str) -> str:
        return f"arn:{self.partition}:logs:{self.region}:{self.account_id}:log-group:{name}"
