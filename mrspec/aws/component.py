"""``MapReduceJob``: a Pulumi component that emits a ``StackModel`` with pulumi-aws v7.

    MapReduceJob(name, model, package)      type token mrspec:index:MapReduceJob
      bucket        -> s3.Bucket + PublicAccessBlock + ServerSideEncryptionConfiguration
                       + LifecycleConfiguration + BucketPolicy (TLS only)
      log_group     -> cloudwatch.LogGroup (retention from the spec)
      role          -> iam.Role (trust policy) + one iam.RolePolicy per inline policy
      function      -> lambda_.Function (the deployment zip as a FileArchive)
      state_machine -> sfn.StateMachine (definition JSON, CloudWatch logging)

Every child has ``parent=self``. Physical names and ARNs come from the model, so the IAM
documents are plain JSON; the state machine's definition is dumped inside
``Output.all(...).apply`` over the functions' real ARNs, which also checks that they are
the ARNs the policies were written for. An unknown resource kind raises.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from mrspec.aws.model import (
    Bucket,
    Function,
    LogGroup,
    Role,
    StackModel,
    StateMachine,
)

TYPE_TOKEN = "mrspec:index:MapReduceJob"


class ModelMismatchError(ValueError):
    """A created resource's ARN is not the one the model (and its policies) assumed."""


class MapReduceJob(pulumi.ComponentResource):
    """All AWS resources of one job run. See the module docstring."""

    def __init__(
        self,
        name: str,
        model: StackModel,
        package: Path | str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.model = model
        self.package = Path(package)
        self._name = name
        self.buckets: dict[str, aws.s3.Bucket] = {}
        self.log_groups: dict[str, aws.cloudwatch.LogGroup] = {}
        self.roles: dict[str, aws.iam.Role] = {}
        self.role_policies: dict[str, list[pulumi.CustomResource]] = {}
        self.functions: dict[str, aws.lambda_.Function] = {}
        self.state_machine: aws.sfn.StateMachine | None = None
        self.children: list[pulumi.Resource] = []

        for resource in model.resources():
            self.emit(resource)

        assert self.state_machine is not None
        work = self.buckets[model.work_bucket.logical_name]
        self.working_bucket_name: pulumi.Output[str] = work.bucket
        self.state_machine_arn: pulumi.Output[str] = self.state_machine.arn
        self.function_names: dict[str, pulumi.Output[str]] = {
            k: f.name for k, f in self.functions.items()
        }
        self.log_group_names: list[pulumi.Output[str]] = [g.name for g in self.log_groups.values()]
        self.register_outputs(
            {
                "working_bucket": self.working_bucket_name,
                "state_machine_arn": self.state_machine_arn,
                "functions": self.function_names,
                "log_groups": self.log_group_names,
            }
        )

    # -- dispatch ------------------------------------------------------------------------------
    def emit(self, resource: Any) -> None:
        """Create the Pulumi resources of one model resource; unknown kinds raise."""
        emitters: Mapping[str, Callable[[Any], None]] = {
            "bucket": self._bucket,
            "log_group": self._log_group,
            "role": self._role,
            "function": self._function,
            "state_machine": self._state_machine,
        }
        kind = getattr(resource, "kind", None)
        emitter = emitters.get(str(kind))
        if emitter is None:
            raise TypeError(f"MapReduceJob cannot emit a resource of kind {kind!r}: {resource!r}")
        emitter(resource)

    def _opts(self, *, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

    def _child_name(self, kind: str, logical: str, part: str = "") -> str:
        return "-".join(x for x in (self._name, kind, logical, part) if x)

    def _keep(self, resource: pulumi.Resource) -> None:
        self.children.append(resource)

    # -- emitters ------------------------------------------------------------------------------
    def _bucket(self, b: Bucket) -> None:
        def n(part: str = "") -> str:
            return self._child_name("bucket", b.logical_name, part)

        tags = dict(b.tags)
        bucket = aws.s3.Bucket(
            n(), bucket=b.name, force_destroy=b.force_destroy, tags=tags, opts=self._opts()
        )
        pab = b.public_access_block
        block = aws.s3.BucketPublicAccessBlock(
            n("public-access-block"),
            bucket=bucket.id,
            block_public_acls=pab.block_public_acls,
            block_public_policy=pab.block_public_policy,
            ignore_public_acls=pab.ignore_public_acls,
            restrict_public_buckets=pab.restrict_public_buckets,
            opts=self._opts(),
        )
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            n("encryption"),
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm=b.sse_algorithm
                    ),
                    bucket_key_enabled=b.bucket_key_enabled,
                )
            ],
            opts=self._opts(),
        )
        lifecycle = aws.s3.BucketLifecycleConfiguration(
            n("lifecycle"),
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="mrspec-safety-net",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=b.expiration_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=b.abort_multipart_days
                    ),
                )
            ],
            opts=self._opts(),
        )
        # The policy goes on after the public access block, as AWS evaluates it then.
        policy = aws.s3.BucketPolicy(
            n("policy"),
            bucket=bucket.id,
            policy=json.dumps(b.policy.to_json()),
            opts=self._opts(depends_on=[block]),
        )
        self.buckets[b.logical_name] = bucket
        for r in (bucket, block, encryption, lifecycle, policy):
            self._keep(r)

    def _log_group(self, g: LogGroup) -> None:
        group = aws.cloudwatch.LogGroup(
            self._child_name("log-group", g.logical_name),
            name=g.name,
            retention_in_days=g.retention_days,
            tags=dict(g.tags),
            opts=self._opts(),
        )
        self.log_groups[g.logical_name] = group
        self._keep(group)

    def _role(self, r: Role) -> None:
        role = aws.iam.Role(
            self._child_name("role", r.logical_name),
            name=r.name,
            assume_role_policy=json.dumps(r.trust.to_json()),
            tags=dict(r.tags),
            opts=self._opts(),
        )
        policies: list[pulumi.CustomResource] = [
            aws.iam.RolePolicy(
                self._child_name("role", r.logical_name, p.name),
                role=role.id,
                name=p.name,
                policy=json.dumps(p.document.to_json()),
                opts=self._opts(),
            )
            for p in r.policies
        ]
        # Permissions too large for inline policies: the stack's own managed policies,
        # attached to the role (aws.policy_fit). Users of the role wait for both.
        for m in r.managed_policies:
            managed = aws.iam.Policy(
                self._child_name("role", r.logical_name, m.name),
                name=m.name,
                policy=json.dumps(m.document.to_json()),
                tags=dict(r.tags),
                opts=self._opts(),
            )
            attachment = aws.iam.RolePolicyAttachment(
                self._child_name("role", r.logical_name, f"{m.name}-attachment"),
                role=role.name,
                policy_arn=managed.arn,
                opts=self._opts(),
            )
            policies += [managed, attachment]
        self.roles[r.logical_name] = role
        self.role_policies[r.logical_name] = policies
        self._keep(role)
        for p in policies:
            self._keep(p)

    def _function(self, f: Function) -> None:
        role = self.roles[f.role]
        log_group = self.log_groups[f.log_group]
        function = aws.lambda_.Function(
            self._child_name("function", f.logical_name),
            name=f.name,
            role=role.arn,
            handler=f.handler,
            runtime=f.runtime,
            memory_size=f.memory_mb,
            timeout=f.timeout_s,
            ephemeral_storage=aws.lambda_.FunctionEphemeralStorageArgs(size=f.ephemeral_storage_mb),
            architectures=[f.architecture],
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(f.environment)),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=log_group.name
            ),
            code=pulumi.FileArchive(str(self.package)),
            tags=dict(f.tags),
            # The policy must be attached (and the log group exist, with its retention)
            # before the function runs, or Lambda creates a group that outlives the stack.
            opts=self._opts(depends_on=[log_group, *self.role_policies[f.role]]),
        )
        self.functions[f.logical_name] = function
        self._keep(function)

    def _state_machine(self, sm: StateMachine) -> None:
        role = self.roles[sm.role]
        log_group = self.log_groups[sm.log_group]
        expected = {f.logical_name: f.arn for f in self.model.functions}
        logical = sorted(self.functions)
        arns = [self.functions[k].arn for k in logical]

        def definition_json(actual: list[Any]) -> str:
            for key, arn in zip(logical, actual, strict=True):
                if arn is not None and arn != expected[key]:
                    raise ModelMismatchError(
                        f"function {key} was created as {arn}, but the model's policies "
                        f"and state machine expect {expected[key]} (wrong account or region?)"
                    )
            return json.dumps(sm.definition, indent=2)

        machine = aws.sfn.StateMachine(
            self._child_name("state-machine", sm.logical_name),
            name=sm.name,
            role_arn=role.arn,
            type=sm.type,
            definition=pulumi.Output.all(*arns).apply(definition_json),
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level=sm.log_level,
                include_execution_data=sm.include_execution_data,
                log_destination=log_group.arn.apply(lambda arn: f"{arn}:*"),
            ),
            tags=dict(sm.tags),
            opts=self._opts(depends_on=[log_group, *self.role_policies[sm.role]]),
        )
        self.state_machine = machine
        self._keep(machine)
