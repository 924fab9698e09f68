"""Resuming a failed local run: what it keeps, where, and when a resume is refused.

A local run works in ``<work base>/mrspec-<job>-<run id>`` (the base is ``--work-dir``'s
parent, default the system's temporary folder). When the job fails (a task beyond its
attempts, too many bad records) the engine removes this run's parts from the output, as before, and the
reduce results that went with them, but keeps the work folder: the map and merge tasks'
results and exchange objects, and ``resume.json`` (:class:`KeptRun`). ``mrspec apply JOB
--local --resume ID`` plans again and, when the input, the partitioning and the task
manifests are the same (``mrspec.plan.codec.resume_digests``), runs only the tasks
without a result, with the job's current code; a successful resume removes the folder.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mrspec.errors import MrspecError, RefusedError

RESUME_FILE = "resume.json"


@dataclass(frozen=True)
class KeptRun:
    job: str
    run_id: str
    work_dir: str
    digests: Mapping[str, str] = field(default_factory=dict)
    overwrite: bool = False
    part_token: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "run_id": self.run_id,
            "work_dir": self.work_dir,
            "digests": dict(self.digests),
            "overwrite": self.overwrite,
            "part_token": self.part_token,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KeptRun:
        return cls(
            job=str(data["job"]),
            run_id=str(data["run_id"]),
            work_dir=str(data["work_dir"]),
            digests={str(k): str(v) for k, v in dict(data.get("digests") or {}).items()},
            overwrite=bool(data.get("overwrite", False)),
            part_token=str(data.get("part_token", "")),
        )


def work_dir_of(job: str, run_id: str, base: str | None) -> str:
    return os.path.join(base or tempfile.gettempdir(), f"mrspec-{job}-{run_id}")


def keep(kept: KeptRun) -> None:
    path = os.path.join(kept.work_dir, RESUME_FILE)
    with open(path + ".tmp", "w") as out:
        json.dump(kept.to_json(), out, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def load(job: str, run_id: str, base: str | None) -> KeptRun:
    folder = work_dir_of(job, run_id, base)
    path = os.path.join(folder, RESUME_FILE)
    try:
        with open(path) as source:
            return KeptRun.from_json(json.load(source))
    except FileNotFoundError:
        raise MrspecError(
            f"--resume {run_id}: no kept run of job {job} at {folder}",
            hint="use the run id the failed run printed (with the same --work-dir); a run "
            "that succeeded, or was resumed to success, keeps nothing",
        ) from None
    except (ValueError, KeyError) as exc:
        raise MrspecError(f"{path}: unreadable ({exc})", hint="delete the folder") from exc


def check(kept: KeptRun, digests: Mapping[str, str]) -> None:
    """Refuse a resume whose plan differs from the kept run's in what its results depend on."""
    changed = [name for name, value in digests.items() if kept.digests.get(name) != value]
    if changed:
        raise RefusedError(
            f"cannot resume run {kept.run_id} of job {kept.job}: the "
            f"{' and the '.join(changed)} changed since it ran, so its finished tasks' "
            "results do not belong to this plan",
            hint="run the job afresh (without --resume); delete the kept folder "
            f"{kept.work_dir} when it is no longer needed",
        )


def resume_command(spec_path: str, run_id: str, work_base: str | None) -> str:
    parts = ["mrspec", "apply", spec_path, "--local", "--resume", run_id]
    if work_base:
        parts += ["--work-dir", work_base]
    return shlex.join(parts)
