"""The provisioner boundary: the protocol, what a deployed stack gives back, one factory.

The driver talks to a :class:`Provisioner`, bound to one stack (one job run):

- ``up(model, package)`` creates or updates every resource and returns :class:`StackOutputs`;
- ``destroy()`` deletes every resource of the stack (idempotent; the working bucket is
  emptied first, the user's output prefix is never part of a stack);
- ``remove()`` forgets the stack's state once it is destroyed;
- ``exists()`` says whether any state (and so maybe resources) remains.

Two implementations import this module and nothing of each other's but the sweep:
``mrspec.aws.provision.PulumiProvisioner`` (the Automation API; what users run) and
``mrspec.aws.boto_provision.BotoProvisioner`` (plain boto3 creating exactly the model's
resources; the emulated-AWS tests and users without the Pulumi CLI). :func:`make_provisioner`
is the one place that maps a name to a class; each is imported only when chosen, so the
boto3 path never imports Pulumi.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mrspec.errors import RefusedError

if TYPE_CHECKING:
    from mrspec.aws.state import RunRecord, StateStore

PROVISIONERS = ("pulumi", "boto3")


@dataclass(frozen=True)
class StackOutputs:
    """What the driver needs to run a job on a deployed stack."""

    working_bucket: str
    state_machine_arn: str
    functions: Mapping[str, str] = field(default_factory=dict)  # role (map, reduce, ...) -> name
    log_groups: tuple[str, ...] = ()


class Provisioner(Protocol):
    """One stack's lifecycle. See the module docstring."""

    name: str

    def up(self, model: Any, package: Path) -> StackOutputs: ...

    def destroy(self) -> None: ...

    def remove(self) -> None: ...

    def exists(self) -> bool: ...


# Builds the provisioner of a recorded stack; the driver and ``mrspec destroy`` use it.
ProvisionerFactory = Callable[["RunRecord", "StateStore"], Provisioner]


def make_provisioner(
    name: str, record: RunRecord, store: StateStore, *, session: Any = None
) -> Provisioner:
    """The provisioner called ``name`` for ``record``'s stack (``session``: boto3's only)."""
    if name == "pulumi":
        from mrspec.aws.provision import PulumiProvisioner

        return PulumiProvisioner(record, store)
    if name == "boto3":
        from mrspec.aws.boto_provision import BotoProvisioner

        return BotoProvisioner(record, store, session=session)
    raise RefusedError(
        f"unknown provisioner {name!r} (run record of {record.stack})",
        hint=f"use one of {', '.join(PROVISIONERS)}",
    )


def provisioner_for(record: RunRecord, store: StateStore) -> Provisioner:
    """The provisioner a run record names (the default factory)."""
    return make_provisioner(record.provisioner, record, store)
