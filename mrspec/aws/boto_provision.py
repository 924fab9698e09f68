"""A provisioner that creates exactly a ``StackModel``'s resources with plain boto3 calls.

It is the test implementation of :class:`mrspec.aws.provision.Provisioner` (the emulated-AWS
tests run it against moto) and a fallback for users without the Pulumi CLI
(``mrspec apply --provisioner boto3``). It keeps no state of its own: the run record lists
every resource by kind and name, written before the first one is created, so ``destroy``
works from the record alone, after any interruption. Deleting is idempotent: a resource
that is already gone is skipped.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrspec.aws.model import Bucket, Function, LogGroup, Role, StackModel, StateMachine
from mrspec.aws.policy_fit import MANAGED_POLICIES_PER_ROLE, managed_policy_name
from mrspec.aws.provisioner import StackOutputs
from mrspec.aws.state import Resource, RunRecord, StateStore
from mrspec.errors import MrspecError

# IAM is eventually consistent: a new role can take ~10 s before Lambda can assume it.
_ROLE_PROPAGATION_RETRIES = 12
_ROLE_PROPAGATION_WAIT_S = 2.5

# Deleting in reverse creation order: users before what they use.
DELETE_ORDER = ("state_machine", "function", "role", "log_group", "bucket")


def resources_of(model: StackModel) -> tuple[Resource, ...]:
    """The model's resources as run-record entries, in creation order."""
    return tuple(Resource(r.kind, r.name) for r in model.resources())


def outputs_of(model: StackModel) -> StackOutputs:
    return StackOutputs(
        working_bucket=model.work_bucket.name,
        state_machine_arn=model.state_machine.arn,
        functions={f.logical_name: f.name for f in model.functions},
        log_groups=tuple(g.name for g in model.log_groups),
    )


def _while_role_propagates(create: Callable[[], Any]) -> Any:
    """Retry a create call AWS refuses because a role made seconds ago cannot be assumed
    yet (Lambda: InvalidParameterValueException, Step Functions: AccessDeniedException,
    both saying the role cannot be assumed)."""
    import botocore.exceptions

    for attempt in range(_ROLE_PROPAGATION_RETRIES):
        try:
            return create()
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            propagating = code in ("InvalidParameterValueException", "AccessDeniedException")
            if not propagating or "assume" not in str(exc) or attempt == _ROLE_PROPAGATION_RETRIES - 1:
                raise
            time.sleep(_ROLE_PROPAGATION_WAIT_S)
    return None


def _tags(model_tags: Any) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in model_tags.items()]


class BotoProvisioner:
    name = "boto3"

    def __init__(
        self,
        record: RunRecord,
        store: StateStore | None = None,
        session: Any | None = None,
        on_output: Callable[[str], None] | None = None,
    ) -> None:
        import boto3

        self.record = record
        self.store = store
        self.session: Any = session or boto3.Session(region_name=record.region)
        self.on_output = on_output

    def _client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.record.region)

    def _say(self, text: str) -> None:
        if self.on_output is not None:
            self.on_output(text)

    # -- create ---------------------------------------------------------------------------------
    def up(self, model: StackModel, package: Path) -> StackOutputs:
        code = package.read_bytes()
        # one table per operation, keyed by the model's resource kind (as component.emit)
        creators: dict[str, Callable[[Any], None]] = {
            "bucket": lambda r: self._create_bucket(r, model),
            "log_group": self._create_log_group,
            "role": self._create_role,
            "function": lambda r: self._create_function(r, model, code),
            "state_machine": lambda r: self._create_state_machine(r, model),
        }
        # a stack kept by a failed run (its record has started an execution; apply
        # --resume): the functions get the new code and sizes, the state machine its
        # definition; what has the run's names already (bucket, roles, log groups) stays
        kept = bool(self.record.execution_arn)
        updaters: dict[str, Callable[[Any], None]] = {
            "function": lambda r: self._update_function(r, model, code),
            "state_machine": lambda r: self._update_state_machine(r, model),
        }
        for resource in model.resources():
            if kept and self._exists(Resource(resource.kind, resource.name)):
                self._say(f"~ {resource.kind} {resource.name}")
                update = updaters.get(resource.kind)
                if update is not None:
                    update(resource)
                continue
            self._say(f"+ {resource.kind} {resource.name}")
            create = creators.get(resource.kind)
            if create is None:  # pragma: no cover - the table covers every kind
                raise MrspecError(f"internal: cannot create a {resource.kind}")
            create(resource)
        return outputs_of(model)

    def _create_bucket(self, bucket: Bucket, model: StackModel) -> None:
        s3 = self._client("s3")
        kwargs: dict[str, Any] = {"Bucket": bucket.name}
        if model.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": model.region}
        s3.create_bucket(**kwargs)
        pab = bucket.public_access_block
        s3.put_public_access_block(
            Bucket=bucket.name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": pab.block_public_acls,
                "IgnorePublicAcls": pab.ignore_public_acls,
                "BlockPublicPolicy": pab.block_public_policy,
                "RestrictPublicBuckets": pab.restrict_public_buckets,
            },
        )
        s3.put_bucket_encryption(
            Bucket=bucket.name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": bucket.sse_algorithm},
                        "BucketKeyEnabled": bucket.bucket_key_enabled,
                    }
                ]
            },
        )
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket.name,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "mrspec-safety-net",
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "Expiration": {"Days": bucket.expiration_days},
                        "AbortIncompleteMultipartUpload": {
                            "DaysAfterInitiation": bucket.abort_multipart_days
                        },
                    }
                ]
            },
        )
        s3.put_bucket_policy(Bucket=bucket.name, Policy=json.dumps(bucket.policy.to_json()))
        if bucket.tags:
            s3.put_bucket_tagging(Bucket=bucket.name, Tagging={"TagSet": _tags(bucket.tags)})

    def _create_log_group(self, group: LogGroup) -> None:
        logs = self._client("logs")
        # A function invoked before (or a retried up) may have created it: adopt it.
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group.name, tags=dict(group.tags))
        logs.put_retention_policy(logGroupName=group.name, retentionInDays=group.retention_days)

    def _create_role(self, role: Role) -> None:
        iam = self._client("iam")
        iam.create_role(
            RoleName=role.name,
            AssumeRolePolicyDocument=json.dumps(role.trust.to_json()),
            Tags=_tags(role.tags),
        )
        for policy in role.policies:
            iam.put_role_policy(
                RoleName=role.name,
                PolicyName=policy.name,
                PolicyDocument=json.dumps(policy.document.to_json()),
            )
        for managed in role.managed_policies:  # permissions too large to be inline
            created = iam.create_policy(
                PolicyName=managed.name,
                PolicyDocument=json.dumps(managed.document.to_json()),
                Tags=_tags(role.tags),
            )
            iam.attach_role_policy(RoleName=role.name, PolicyArn=created["Policy"]["Arn"])

    def _create_function(self, function: Function, model: StackModel, code: bytes) -> None:
        lam = self._client("lambda")
        kwargs: dict[str, Any] = {
            "FunctionName": function.name,
            "Runtime": function.runtime,
            "Role": model.role(function.role).arn,
            "Handler": function.handler,
            "Code": {"ZipFile": code},
            "MemorySize": function.memory_mb,
            "Timeout": function.timeout_s,
            "EphemeralStorage": {"Size": function.ephemeral_storage_mb},
            "Architectures": [function.architecture],
            "Environment": {"Variables": dict(function.environment)},
            "LoggingConfig": {
                "LogFormat": "Text",
                "LogGroup": model.log_group(function.log_group).name,
            },
            "Tags": dict(function.tags),
        }
        _while_role_propagates(lambda: lam.create_function(**kwargs))

    def _update_function(self, function: Function, model: StackModel, code: bytes) -> None:
        lam = self._client("lambda")
        lam.update_function_code(FunctionName=function.name, ZipFile=code)
        lam.get_waiter("function_updated_v2").wait(FunctionName=function.name)
        lam.update_function_configuration(
            FunctionName=function.name,
            MemorySize=function.memory_mb,
            Timeout=function.timeout_s,
            EphemeralStorage={"Size": function.ephemeral_storage_mb},
            Environment={"Variables": dict(function.environment)},
        )
        lam.get_waiter("function_updated_v2").wait(FunctionName=function.name)

    def _update_state_machine(self, machine: StateMachine, model: StackModel) -> None:
        self._client("stepfunctions").update_state_machine(
            stateMachineArn=machine.arn,
            definition=json.dumps(machine.definition),
            roleArn=model.role(machine.role).arn,
        )

    def _create_state_machine(self, machine: StateMachine, model: StackModel) -> None:
        sfn = self._client("stepfunctions")
        log_group = model.log_group(machine.log_group)
        _while_role_propagates(lambda: sfn.create_state_machine(
            name=machine.name,
            definition=json.dumps(machine.definition),
            roleArn=model.role(machine.role).arn,
            type=machine.type,
            loggingConfiguration={
                "level": machine.log_level,
                "includeExecutionData": machine.include_execution_data,
                "destinations": [
                    {"cloudWatchLogsLogGroup": {"logGroupArn": f"{log_group.arn}:*"}}
                ],
            },
            tags=[{"key": k, "value": v} for k, v in machine.tags.items()],
        ))

    # -- delete ---------------------------------------------------------------------------------
    def destroy(self) -> None:
        """Delete every recorded resource, users first; raise after trying them all."""
        failures: list[str] = []
        for kind in DELETE_ORDER:
            for resource in self.record.resources:
                if resource.kind != kind:
                    continue
                try:
                    deleted = self._delete(resource)
                except Exception as exc:  # keep going: remove as much as possible
                    failures.append(f"{resource.kind} {resource.name}: {exc}")
                    continue
                if deleted:
                    self._say(f"- {resource.kind} {resource.name}")
        if failures:
            raise MrspecError("could not delete:\n  " + "\n  ".join(failures))

    def _delete(self, resource: Resource) -> bool:
        """Delete one resource; False when it was already gone."""
        deleters: dict[str, Callable[[str], bool]] = {
            "state_machine": self._delete_state_machine,
            "function": self._delete_function,
            "role": self._delete_role,
            "log_group": self._delete_log_group,
            "bucket": self._delete_bucket,
        }
        delete = deleters.get(resource.kind)
        if delete is None:
            raise MrspecError(f"internal: cannot delete a {resource.kind}")
        return delete(resource.name)

    def _delete_function(self, name: str) -> bool:
        lam = self._client("lambda")
        try:
            lam.delete_function(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            return False
        return True

    def _delete_log_group(self, name: str) -> bool:
        logs = self._client("logs")
        try:
            logs.delete_log_group(logGroupName=name)
        except logs.exceptions.ResourceNotFoundException:
            return False
        return True

    def _delete_state_machine(self, name: str) -> bool:
        sfn = self._client("stepfunctions")
        account = self.session.client("sts").get_caller_identity()["Account"]
        partition = self.session.get_partition_for_region(self.record.region)
        arn = f"arn:{partition}:states:{self.record.region}:{account}:stateMachine:{name}"
        try:
            running = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")
        except sfn.exceptions.StateMachineDoesNotExist:
            return False
        for execution in running.get("executions", []):
            sfn.stop_execution(executionArn=execution["executionArn"], error="mrspec.Teardown")
        sfn.delete_state_machine(stateMachineArn=arn)
        return True

    def _delete_role(self, name: str) -> bool:
        iam = self._client("iam")
        try:
            policies = iam.list_role_policies(RoleName=name)["PolicyNames"]
        except iam.exceptions.NoSuchEntityException:
            self._delete_managed_policies(name)  # an earlier teardown may have stopped here
            return False
        for policy in policies:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        for policy in attached:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        iam.delete_role(RoleName=name)
        self._delete_managed_policies(name)
        return True

    def _delete_managed_policies(self, role_name: str) -> None:
        """The stack's managed policies of a role, by their names: also the ones a crash
        left created but not yet attached."""
        iam = self._client("iam")
        account = self.session.client("sts").get_caller_identity()["Account"]
        partition = self.session.get_partition_for_region(self.record.region)
        for i in range(1, MANAGED_POLICIES_PER_ROLE + 1):
            name = managed_policy_name(role_name, i)
            with contextlib.suppress(iam.exceptions.NoSuchEntityException):
                iam.delete_policy(PolicyArn=f"arn:{partition}:iam::{account}:policy/{name}")

    def _delete_bucket(self, name: str) -> bool:
        s3 = self._client("s3")
        try:
            s3.head_bucket(Bucket=name)
        except s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise
        uploads = s3.get_paginator("list_multipart_uploads")
        for page in uploads.paginate(Bucket=name):
            for upload in page.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        versions = s3.get_paginator("list_object_versions")
        for page in versions.paginate(Bucket=name):
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for i in range(0, len(doomed), 1000):
                s3.delete_objects(Bucket=name, Delete={"Objects": doomed[i : i + 1000], "Quiet": True})
        s3.delete_bucket(Bucket=name)
        return True

    # -- state ----------------------------------------------------------------------------------
    def remove(self) -> None:
        """Nothing to forget beyond the run record, which the driver deletes."""

    def exists(self) -> bool:
        return any(self._exists(r) for r in self.record.resources)

    def _exists(self, resource: Resource) -> bool:
        probes: dict[str, Callable[[str], bool]] = {
            "bucket": self._bucket_exists,
            "function": self._function_exists,
            "role": self._role_exists,
            "log_group": self._log_group_exists,
            "state_machine": self._state_machine_exists,
        }
        probe = probes.get(resource.kind)
        return probe(resource.name) if probe is not None else False

    def _bucket_exists(self, name: str) -> bool:
        s3 = self._client("s3")
        try:
            s3.head_bucket(Bucket=name)
        except s3.exceptions.ClientError:
            return False
        return True

    def _function_exists(self, name: str) -> bool:
        lam = self._client("lambda")
        try:
            lam.get_function(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            return False
        return True

    def _role_exists(self, name: str) -> bool:
        iam = self._client("iam")
        try:
            iam.get_role(RoleName=name)
        except iam.exceptions.NoSuchEntityException:
            return False
        return True

    def _log_group_exists(self, name: str) -> bool:
        found = self._client("logs").describe_log_groups(logGroupNamePrefix=name)
        return any(g["logGroupName"] == name for g in found.get("logGroups", []))

    def _state_machine_exists(self, name: str) -> bool:
        return any(
            m["name"] == name
            for page in self._client("stepfunctions").get_paginator("list_state_machines").paginate()
            for m in page.get("stateMachines", [])
        )
