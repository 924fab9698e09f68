"""One AWS run as the driver's stages see it: the options it was started with
(:class:`AwsRunOptions`), the state the stages fill in (:class:`AwsRun`) and the small
helpers every stage uses (progress lines, best-effort steps, timing)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mrspec.aws.iam import KmsKeys
from mrspec.aws.provisioner import (
    Provisioner,
    ProvisionerFactory,
    StackOutputs,
    make_provisioner,
)
from mrspec.aws.state import RunRecord, StateStore
from mrspec.aws.watch import Backoff, Snapshot, TaskFailure
from mrspec.errors import JobFailedError
from mrspec.plan.model import JobPlan
from mrspec.runtime.replace import Replacement
from mrspec.spec.model import JobSpec


@dataclass(frozen=True)
class AwsRunOptions:
    keep: bool = False  # leave the stack up (remove it later with `mrspec destroy`)
    overwrite: bool = False  # allow a non-empty output prefix
    state_dir: Path | None = None  # default: $MRSPEC_STATE_DIR or ~/.mrspec/state
    json_output: bool = False
    provisioner: str = "pulumi"  # "pulumi" | "boto3"
    # Tests inject their own provisioner (and session); both default to the real thing.
    provisioner_factory: ProvisionerFactory | None = None
    session: Any = None
    emulator: bool = False  # compile the moto-accepted variant of the state machine
    run_id: str | None = None
    poll: Backoff = field(default_factory=Backoff)
    on_progress: Callable[[Snapshot], None] | None = None
    # Builds the deployment zip into a folder; default: mrspec.aws.package.build_package.
    package_builder: Callable[[JobSpec, Path], Path] | None = None
    # s3:// locations replacing the spec's (a spec written for --local names folders).
    input_prefixes: tuple[str, ...] = ()
    output_prefix: str | None = None
    console: Any = None  # a rich Console; default: stderr for progress, stdout for results
    handle_signals: bool = True
    detach: bool = False  # return once the execution has started (attach later)
    # Ctrl-C while attached: detach (the job goes on) unless this is set; then it stops.
    stop_on_interrupt: bool = True
    # A failed job keeps its stack and finished tasks this long for `apply --resume`
    # (mrspec.aws.resume); 0 tears everything down. The CLI's default is 24 hours.
    keep_failed_s: int = 0
    resume: str | None = None  # the id of a kept failed run to go on from


@dataclass
class AwsRun:
    """The state of one run as the pipeline fills it in."""

    spec: JobSpec
    options: AwsRunOptions
    store: StateStore
    run_id: str
    session: Any = None
    account_id: str = ""
    plan: JobPlan | None = None
    model: Any = None  # mrspec.aws.model.StackModel
    package: Path | None = None
    record: RunRecord | None = None
    provisioner: Provisioner | None = None
    outputs: StackOutputs | None = None
    execution_arn: str = ""
    last: Snapshot | None = None
    failures: list[TaskFailure] = field(default_factory=list)
    phase_s: dict[str, float] = field(default_factory=dict)
    account_concurrency: int | None = None  # the account's Lambda limit, when readable
    estimate_usd: float | None = None
    actual_usd: float | None = None
    collected: dict[str, Any] = field(default_factory=dict)
    replacing: Replacement | None = None  # the output this run replaces (--overwrite)
    kms_keys: KmsKeys | None = None  # the SSE-KMS keys of the job's buckets (preflight)
    teardown: str = "not needed"  # "destroyed" | "kept" | "failed: ..." | "not needed"
    logs_saved: bool = False  # the task logs are in the state directory (mrspec logs)
    execution_started: float = 0.0  # unix seconds
    detached: str = ""  # why the run left its stack running: "--detach" | "SIGHUP" | "Ctrl-C"
    kept_for_resume: bool = False  # failed and kept for `apply --resume` (mrspec.aws.resume)
    resumed: dict[str, list[int]] = field(default_factory=dict)  # a resume's tasks, by phase
    kept_usd_per_day: float | None = None  # what keeping it failed costs (the plan's figure)


def best_effort(what: str, step: Callable[[], None]) -> None:
    try:
        step()
    except Exception as exc:  # reported; never hides the run's own outcome
        sys.stderr.write(f"warning: could not {what}: {exc}\n")


def say(run: AwsRun, text: str) -> None:
    """A progress line on stderr (not with --json, whose stdout is for scripts)."""
    if run.options.json_output:
        return
    if run.options.console is not None:
        run.options.console.print(text, markup=False, highlight=False)
    else:
        sys.stderr.write(text + "\n")


def build_package(spec: JobSpec, folder: Path) -> Path:
    from mrspec.aws import package

    return package.build_package(spec, folder, output_prefix=spec.output.prefix).path


def with_locations(spec: JobSpec, options: AwsRunOptions) -> JobSpec:
    if options.input_prefixes:
        spec = replace(spec, input=replace(spec.input, prefixes=tuple(options.input_prefixes)))
    if options.output_prefix:
        spec = replace(spec, output=replace(spec.output, prefix=options.output_prefix))
    return spec


def provisioner_of(run: AwsRun) -> Provisioner:
    assert run.record is not None
    if run.options.provisioner_factory is not None:
        return run.options.provisioner_factory(run.record, run.store)
    return make_provisioner(run.options.provisioner, run.record, run.store, session=run.session)


def outcome_of(failure: BaseException | None) -> str:
    if failure is None:
        return "succeeded"
    if isinstance(failure, KeyboardInterrupt):
        return "interrupted"
    if isinstance(failure, JobFailedError):
        return "failed"
    return "error"


@contextmanager
def timed(run: AwsRun, phase: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        run.phase_s[phase] = time.monotonic() - started
