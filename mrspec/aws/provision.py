"""Provisioning: how a job's ``StackModel`` becomes (and stops being) cloud resources.

The driver talks to a :class:`Provisioner`, bound to one stack (one job run):

- ``up(model, package)`` creates or updates every resource and returns :class:`StackOutputs`;
- ``destroy()`` deletes every resource of the stack (idempotent; the working bucket is
  emptied first, the user's output prefix is never part of a stack);
- ``remove()`` forgets the stack's state once it is destroyed;
- ``exists()`` says whether any state (and so maybe resources) remains.

This module is :class:`PulumiProvisioner` (the Pulumi Automation API, inline program,
file backend in mrspec's state directory; needs the ``pulumi`` CLI). The protocol, the
outputs and the one factory live in ``mrspec.aws.provisioner``, which both provisioners
import; ``mrspec.aws.boto_provision`` is the other one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrspec.aws.provisioner import StackOutputs
from mrspec.errors import MrspecError, RefusedError

if TYPE_CHECKING:
    from mrspec.aws.state import RunRecord, StateStore

PULUMI_INSTALL_URL = "https://www.pulumi.com/docs/install/"
PULUMI_PROJECT = "mrspec"
PASSPHRASE_ENV = "PULUMI_CONFIG_PASSPHRASE"
# Stack state holds no secrets (mrspec stores none in config), so a fixed passphrase is
# only there to satisfy the file backend's secrets provider. Users may set their own.
DEFAULT_PASSPHRASE = "mrspec-local-state"


def pulumi_missing_error() -> RefusedError:
    return RefusedError(
        "the Pulumi CLI ('pulumi') is not installed or not on PATH; mrspec uses it to create "
        "and remove the job's AWS resources",
        hint=f"install it (see {PULUMI_INSTALL_URL}, e.g. `curl -fsSL https://get.pulumi.com | sh`)"
        " and make sure `pulumi version` works in this shell",
    )


def check_pulumi_cli() -> None:
    """Preflight: refuse early when the Pulumi CLI is missing."""
    if shutil.which("pulumi") is None:
        raise pulumi_missing_error()


class PulumiProvisioner:
    """The Pulumi Automation API: inline program, local file backend, one stack per run."""

    name = "pulumi"

    def __init__(
        self,
        record: RunRecord,
        store: StateStore,
        on_output: Callable[[str], None] | None = None,
    ) -> None:
        self.record = record
        self.store = store
        self.on_output = on_output
        self._model: Any = None
        self._package: Path | None = None

    # -- the Automation API boundary -----------------------------------------------------------
    def _workspace_options(self) -> Any:
        from pulumi import automation as auto

        self.store.ensure()
        env = {
            "PULUMI_BACKEND_URL": self.store.pulumi_backend.as_uri(),
            PASSPHRASE_ENV: os.environ.get(PASSPHRASE_ENV, DEFAULT_PASSPHRASE),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
        }
        return auto.LocalWorkspaceOptions(
            env_vars=env,
            project_settings=auto.ProjectSettings(
                name=PULUMI_PROJECT,
                runtime="python",
                backend=auto.ProjectBackend(url=env["PULUMI_BACKEND_URL"]),
            ),
        )

    def _program(self) -> None:
        """The inline Pulumi program: the job's component and its outputs."""
        import pulumi

        from mrspec.aws.component import MapReduceJob

        if self._model is None or self._package is None:
            raise MrspecError("internal: the Pulumi program ran without a model (use up())")
        job = MapReduceJob(self.record.stack, model=self._model, package=self._package)
        pulumi.export("working_bucket", job.working_bucket_name)
        pulumi.export("state_machine_arn", job.state_machine_arn)
        pulumi.export("functions", job.function_names)
        pulumi.export("log_groups", job.log_group_names)

    def _stack(self, create: bool) -> Any:
        from pulumi import automation as auto

        try:
            if create:
                stack = auto.create_or_select_stack(
                    stack_name=self.record.stack,
                    project_name=PULUMI_PROJECT,
                    program=self._program,
                    opts=self._workspace_options(),
                )
            else:
                stack = auto.select_stack(
                    stack_name=self.record.stack,
                    project_name=PULUMI_PROJECT,
                    program=self._program,
                    opts=self._workspace_options(),
                )
        except FileNotFoundError as exc:
            raise pulumi_missing_error() from exc
        stack.set_config("aws:region", auto.ConfigValue(value=self.record.region))
        return stack

    def _echo(self, line: str) -> None:
        if self.on_output is not None:
            self.on_output(line.rstrip("\n"))

    # -- Provisioner ---------------------------------------------------------------------------
    def up(self, model: Any, package: Path) -> StackOutputs:
        from pulumi import automation as auto

        self._model, self._package = model, package
        stack = self._stack(create=True)
        try:
            result = stack.up(on_output=self._echo, color="never")
        except auto.errors.CommandError as exc:
            raise MrspecError(
                f"creating the job's AWS resources failed (Pulumi stack {self.record.stack}):\n"
                f"{_tail(str(exc))}",
                hint="fix the cause above; mrspec removes what was created",
            ) from exc
        outputs = {name: value.value for name, value in result.outputs.items()}
        return StackOutputs(
            working_bucket=str(outputs["working_bucket"]),
            state_machine_arn=str(outputs["state_machine_arn"]),
            functions=dict(outputs.get("functions") or {}),
            log_groups=tuple(outputs.get("log_groups") or ()),
        )

    def destroy(self) -> None:
        """``pulumi destroy``, then a sweep of the recorded resources by physical name.

        An ``up`` interrupted mid-create leaves pending operations that block ``destroy``;
        they are cleared with a refresh and the destroy retried. A pending create dropped
        that way may still exist in AWS: the sweep (the boto3 provisioner's idempotent
        delete over the run record's resources) removes anything Pulumi no longer knows.
        """
        from pulumi import automation as auto

        try:
            stack = self._stack(create=False)
        except auto.errors.StackNotFoundError:
            stack = None
        if stack is not None:
            try:
                self._destroy(stack)
            except auto.errors.CommandError as exc:
                raise MrspecError(
                    f"removing the Pulumi stack {self.record.stack} failed:\n{_tail(str(exc))}"
                ) from exc
        if self.record.resources:
            # what an interrupted ``up`` created outside Pulumi's state: swept by name
            from mrspec.aws.boto_provision import BotoProvisioner

            BotoProvisioner(self.record, self.store, on_output=self.on_output).destroy()

    def _destroy(self, stack: Any) -> None:
        from pulumi import automation as auto

        try:
            stack.destroy(on_output=self._echo, color="never")
        except auto.errors.CommandError as exc:
            if "pending operation" not in str(exc):
                raise
            stack.refresh(on_output=self._echo, color="never", clear_pending_creates=True)
            stack.destroy(on_output=self._echo, color="never")

    def remove(self) -> None:
        from pulumi import automation as auto

        try:
            stack = self._stack(create=False)
        except auto.errors.StackNotFoundError:
            return
        stack.workspace.remove_stack(self.record.stack)

    def exists(self) -> bool:
        from pulumi import automation as auto

        try:
            self._stack(create=False)
        except auto.errors.StackNotFoundError:
            return False
        return True


def _tail(text: str, lines: int = 25) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(kept)
