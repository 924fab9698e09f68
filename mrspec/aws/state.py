"""mrspec's local stack-state directory: where live runs are remembered.

Layout of the state directory (``$MRSPEC_STATE_DIR``, default ``~/.mrspec/state``)::

    <state dir>/
      runs/<stack>.json   # one record per stack mrspec created and has not yet removed
      context/<stack>.json  # what attaching to its execution needs (mrspec.aws.context)
      logs/<run id>.json  # a run's task logs, saved before teardown (mrspec.aws.runlogs)
      pulumi/             # the Pulumi file backend (PULUMI_BACKEND_URL=file://...)

A run record is written *before* anything is created on AWS and deleted only after the
stack is destroyed and removed, so an interrupted run is always listed by ``mrspec runs``
and removable by ``mrspec destroy``. A failed run kept for a resume (``--keep-failed``,
``mrspec.aws.keep``) is ``resumable`` until ``expires_at``, with its resume command. Records carry the resource names, so the boto3
provisioner can delete them without any other state. Saved logs outlive the record: they
are what is left to read after a run's stack is gone.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from mrspec.errors import MrspecError

STATE_DIR_ENV = "MRSPEC_STATE_DIR"
DEFAULT_STATE_DIR = Path("~/.mrspec/state")

# How long a failed run stays resumable unless `apply --keep-failed` says otherwise (0:
# torn down at once; the most is mrspec.aws.keep.MAX_KEEP_FAILED_S); plan quotes it.
DEFAULT_KEEP_FAILED = "24h"

RunStatus = Literal[
    "deploying",
    "running",
    "detached",
    "succeeded",
    "failed",
    "interrupted",
    "kept",
    "resumable",  # failed, kept with its finished tasks' outputs for `apply --resume`
    "destroying",
]


def state_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The state directory: the override, else ``$MRSPEC_STATE_DIR``, else the default."""
    chosen = override or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR
    return Path(chosen).expanduser().resolve()


def new_run_id() -> str:
    """A short, time-sortable, unique run id fitting ``mrspec.aws.model.RUN_ID_RE``:
    the UTC time in seconds as 6 base-36 digits plus 4 random hex digits."""
    seconds = int(time.time())
    digits = ""
    while seconds:
        seconds, rest = divmod(seconds, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
    return digits[-6:].rjust(6, "0") + secrets.token_hex(2)


@dataclass(frozen=True)
class Resource:
    """One cloud resource of a stack, by kind and physical name (or ARN)."""

    kind: str  # bucket | role | function | log_group | state_machine
    name: str


@dataclass(frozen=True)
class RunRecord:
    job: str
    run_id: str
    stack: str
    region: str
    provisioner: str  # "pulumi" | "boto3"
    created_at: float  # unix seconds
    status: RunStatus = "deploying"
    spec_path: str = ""
    output: str = ""
    execution_arn: str = ""
    resources: tuple[Resource, ...] = ()
    updated_at: float = field(default=0.0)
    # a failed run kept for `apply --resume` (status "resumable"): until when (unix
    # seconds; `mrspec runs` flags it after, `mrspec destroy --expired` removes it) and
    # the command that resumes it
    expires_at: float = 0.0
    resume_command: str = ""

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.created_at)

    @property
    def expired(self) -> bool:
        """A kept failed run past its ``--keep-failed`` time."""
        return self.status == "resumable" and 0 < self.expires_at <= time.time()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["resources"] = [asdict(r) for r in self.resources]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        resources = tuple(Resource(str(r["kind"]), str(r["name"])) for r in data.get("resources", ()))
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "resources"}
        return cls(resources=resources, **fields)


class StateStore:
    """Run records under ``<state dir>/runs``; each write is atomic (write + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def pulumi_backend(self) -> Path:
        return self.root / "pulumi"

    def ensure(self) -> None:
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            self.pulumi_backend.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MrspecError(
                f"cannot create mrspec's state directory {self.root}: {exc.strerror}",
                hint=f"choose a writable one with --state-dir or ${STATE_DIR_ENV}",
            ) from exc

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def _path(self, stack: str) -> Path:
        return self.runs_dir / f"{stack}.json"

    def save(self, record: RunRecord) -> RunRecord:
        self.ensure()
        record = replace(record, updated_at=time.time())
        _write_json(self._path(record.stack), record.to_json())
        return record

    def save_logs(self, run_id: str, document: dict[str, Any]) -> Path:
        """Keep a run's task logs (``mrspec.aws.runlogs.RunLogs.to_json``)."""
        self.ensure()
        self.logs_dir.mkdir(exist_ok=True)
        path = self.logs_dir / f"{run_id}.json"
        _write_json(path, document)
        return path

    def load_logs(self, run_id: str) -> dict[str, Any] | None:
        path = self.logs_dir / f"{run_id}.json"
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise MrspecError(
                f"unreadable saved logs {path}: {exc}", hint="inspect or delete the file"
            ) from exc
        return data if isinstance(data, dict) else None

    def find(self, run_id: str) -> RunRecord | None:
        """The live record of run ``run_id``, if its stack is still recorded."""
        return next((r for r in self.runs() if r.run_id == run_id), None)

    def load(self, stack: str) -> RunRecord | None:
        path = self._path(stack)
        if not path.exists():
            return None
        return RunRecord.from_json(json.loads(path.read_text()))

    def delete(self, stack: str) -> None:
        self._path(stack).unlink(missing_ok=True)
        (self.root / "context" / f"{stack}.json").unlink(missing_ok=True)

    def save_context(self, stack: str, document: dict[str, Any]) -> None:
        """What attaching to the stack's execution needs (``mrspec.aws.context``)."""
        self.ensure()
        (self.root / "context").mkdir(exist_ok=True)
        _write_json(self.root / "context" / f"{stack}.json", document)

    def load_context(self, stack: str) -> dict[str, Any] | None:
        path = self.root / "context" / f"{stack}.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None

    def runs(self, job: str | None = None) -> Iterator[RunRecord]:
        """Every recorded run (of ``job`` when given), oldest first."""
        if not self.runs_dir.is_dir():
            return
        records = []
        for path in self.runs_dir.glob("*.json"):
            try:
                record = RunRecord.from_json(json.loads(path.read_text()))
            except (ValueError, KeyError, TypeError) as exc:
                raise MrspecError(
                    f"unreadable run record {path}: {exc}",
                    hint="inspect or delete the file; the stack it names may still exist on AWS",
                ) from exc
            if job is None or record.job == job:
                records.append(record)
        yield from sorted(records, key=lambda r: (r.created_at, r.stack))


def _write_json(path: Path, document: dict[str, Any]) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
