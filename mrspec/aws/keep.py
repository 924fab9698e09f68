"""Keeping a failed AWS run for ``mrspec apply JOB --resume ID`` (``--keep-failed``).

When a job fails (a task beyond its attempts, too many bad records: a ``JobFailedError``)
and ``--keep-failed`` is above 0, the driver keeps the stack instead of tearing it down:
the working bucket with the finished tasks' exchange objects and results, the functions,
roles, log groups and state machine (none of which costs anything idle; the bucket's
storage does, ``mrspec plan`` prices it per day). What the output must not hold goes
as on any failure: this run's parts are removed, and with them the results of the phase
that wrote them (the last step's reduce, or its map when it has none), so a resume runs
that phase again and nothing uncommitted is ever read as done. In a job with steps every
earlier step's work stays: its shuffle, its results and its intermediate parts (its
output, written in the shuffle format under its work prefix, ``runtime.layout``), which
the next step reads; a resume that runs such a step again rewrites them at the same keys.
The record's status becomes ``resumable`` with ``expires_at``:

- ``mrspec runs`` shows the expiry and the resume command, and flags expired runs;
- ``mrspec destroy --expired`` removes every kept run past its time;
- the working bucket's lifecycle rule (``aws.lower.WORK_BUCKET_EXPIRATION_DAYS``) deletes
  its objects at most that many days after they were written, whatever happens, so a
  forgotten run stops costing storage; ``--keep-failed`` cannot exceed it.

Ctrl-C and errors of mrspec itself tear down as before.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import replace
from datetime import UTC, datetime

from mrspec.aws.lower import WORK_BUCKET_EXPIRATION_DAYS
from mrspec.aws.run import AwsRun
from mrspec.errors import JobFailedError
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.layout import step_work_prefix
from mrspec.runtime.replace import discard
from mrspec.runtime.results import drop_results

MAX_KEEP_FAILED_S = WORK_BUCKET_EXPIRATION_DAYS * 86400


def keeps(run: AwsRun, failure: BaseException) -> bool:
    """Whether this failure keeps the run for a resume."""
    return (
        isinstance(failure, JobFailedError)
        and run.options.keep_failed_s > 0
        and bool(run.execution_arn)
        and run.plan is not None
        and not (run.last is not None and run.last.succeeded)
    )


def output_config(run: AwsRun) -> TaskConfig:
    """The config of the step that writes the output (the last; an earlier step's has no
    output prefix), with this run's part token: what removing this run's parts needs."""
    token = run.replacing.token if run.replacing else ""
    return replace(TaskConfig.from_spec(run.spec, len(run.spec.steps) - 1), part_token=token)


def remove_uncommitted(run: AwsRun) -> None:
    """This run's parts leave the output, and the results of the tasks that wrote them
    leave the working bucket; every other finished task's work stays for the resume
    (an earlier step's intermediate parts too: the step after it reads them)."""
    assert run.plan is not None and run.model is not None
    # the results first: a part left without its result only runs again; a result left
    # without its part would be taken as done. A failure here tears the run down.
    last = run.plan.steps[-1]  # its output phase's tasks wrote the parts
    work = step_work_prefix(run.model.layout.work_uri, last.step)
    drop_results(work, last.output_phase, last.output_parts)
    config = output_config(run)
    discard(config.output_prefix, config.part_token)


def resume_command(run: AwsRun) -> str:
    parts = ["mrspec", "apply", str(run.spec.source or run.spec.name), "--resume", run.run_id]
    if run.options.state_dir is not None:
        parts += ["--state-dir", str(run.options.state_dir)]
    if run.options.provisioner != "pulumi":
        parts += ["--provisioner", run.options.provisioner]
    return shlex.join(parts)


def when(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


def mark_resumable(run: AwsRun) -> None:
    """Record the kept run: resumable until now + ``--keep-failed``."""
    assert run.record is not None
    expires = time.time() + run.options.keep_failed_s
    run.record = run.store.save(
        replace(
            run.record, status="resumable", expires_at=expires, resume_command=resume_command(run)
        )
    )
    run.teardown = f"kept for a resume until {when(expires)}"


def resume_hint(run: AwsRun, destroy_command: str) -> str:
    """What the failure message adds: the exact resume command and how to remove the run."""
    assert run.record is not None
    return (
        "fix the cause, then resume (only the tasks that did not finish run again): "
        f"{resume_command(run)} (kept until {when(run.record.expires_at)}; "
        f"or remove it: {destroy_command})"
    )
