"""``mrspec apply job.yaml [--local]``: run a job on AWS, or on this machine with ``--local``.

Every option of the command is declared once, in ``ApplyOptions`` and the decorators
below; the AWS path (``mrspec.aws.driver.run_on_aws``) gets them as ``AwsRunOptions``.
Add AWS-only options here too (a decorator, a field of ``ApplyOptions``, the mapping).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from mrspec.aws.state import DEFAULT_KEEP_FAILED  # stdlib only: --local imports it too

if TYPE_CHECKING:
    from mrspec.spec.model import JobSpec


@dataclass(frozen=True)
class ApplyOptions:
    local: bool = False
    workers: int | None = None  # --local: worker processes (default: CPU count)
    overwrite: bool = False  # replace an existing output
    json: bool = False  # print the summary as JSON on stdout
    keep: bool = False  # AWS: keep the stack after the run (for debugging)
    output: str | None = None  # override the spec's output.prefix
    state_dir: str | None = None  # AWS: mrspec's stack-state directory
    provisioner: str = "pulumi"  # AWS: "pulumi" (Automation API) or "boto3"
    inputs: tuple[str, ...] = ()  # AWS: s3:// input prefixes replacing the spec's
    detach: bool = False  # AWS: return once the execution has started
    resume: str | None = None  # the failed run to go on from (--local, or kept on AWS)
    keep_failed: str = DEFAULT_KEEP_FAILED  # AWS: how long a failed run stays resumable
    work_dir: str | None = None  # --local: parent of the run's work folder
    params: tuple[str, ...] = ()  # --param NAME=VALUE overrides of the spec's params


@click.command(
    "apply",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--local", is_flag=True, help="Run on this machine instead of AWS.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="--local: task processes at once (default: the number of CPUs).",
)
@click.option("--overwrite", is_flag=True, help="Replace the output prefix if it holds objects.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout.")
@click.option("--keep", is_flag=True, help="AWS: keep the stack after the run (debugging).")
@click.option(
    "--resume",
    metavar="RUN_ID",
    default=None,
    help="Go on from this failed run (kept on AWS by --keep-failed, or --local's work "
    "folder), running only its tasks that did not finish, with the job's current code.",
)
@click.option(
    "--keep-failed",
    metavar="DURATION",
    default=DEFAULT_KEEP_FAILED,
    show_default=True,
    help="AWS: keep a failed run's stack and finished work this long for --resume "
    "(`mrspec plan` says what that costs per day; at most 7d); 0 tears it down at once.",
)
@click.option(
    "--work-dir",
    metavar="DIR",
    default=None,
    help="--local: where the run's work folder goes (default: the system's temporary "
    "folder); a failed run keeps it there for --resume.",
)
@click.option(
    "--detach",
    is_flag=True,
    help="AWS: return once the job has started; `mrspec attach --run ID` follows it.",
)
@click.option(
    "--output",
    metavar="PREFIX",
    default=None,
    help="Write the output here instead of the spec's output.prefix (path or s3:// URI).",
)
@click.option(
    "--input",
    "inputs",
    metavar="PREFIX",
    multiple=True,
    help="Read this prefix instead of the spec's input (repeatable; s3:// URI, or a local "
    "path with --local).",
)
@click.option(
    "--param",
    "params",
    metavar="NAME=VALUE",
    multiple=True,
    help="Set the job parameter NAME (from the spec's params:) to VALUE, read as the type "
    "of the spec's value (repeatable).",
)
@click.option(
    "--state-dir",
    metavar="DIR",
    envvar="MRSPEC_STATE_DIR",
    default=None,
    help="AWS: where mrspec records its stacks [default: $MRSPEC_STATE_DIR or ~/.mrspec/state].",
)
@click.option(
    "--provisioner",
    type=click.Choice(["pulumi", "boto3"]),
    default="pulumi",
    show_default=True,
    help="AWS: create the stack with the Pulumi CLI (Automation API) or plain boto3 calls.",
)
def command(
    spec_file: str,
    local: bool,
    workers: int | None,
    overwrite: bool,
    as_json: bool,
    keep: bool,
    output: str | None,
    inputs: tuple[str, ...] = (),
    params: tuple[str, ...] = (),
    state_dir: str | None = None,
    provisioner: str = "pulumi",
    detach: bool = False,
    resume: str | None = None,
    work_dir: str | None = None,
    keep_failed: str = DEFAULT_KEEP_FAILED,
) -> int:
    """Run a job: deploy, run and tear down on AWS, or run it here with --local.

    \b
    Examples:
      mrspec apply specs/wordcount/job.yaml --local
      mrspec apply job.yaml --local --workers 4 --overwrite
      mrspec apply job.yaml --local --resume lq2x8a1b2c   # after a failed local run
      mrspec apply job.yaml --local --json | jq .counters
      mrspec apply specs/topwords/job.yaml --local --param n=20
      mrspec apply job.yaml                      # on AWS
      mrspec apply job.yaml --detach             # start on AWS; `mrspec attach` later
      mrspec apply job.yaml --resume lq2x8a1b2c  # after a failed AWS run (see mrspec runs)

    On AWS a lost terminal (SIGHUP) once the job has started detaches too: the job goes
    on and `mrspec runs` says how to attach. A failed job is kept for --keep-failed and
    its error prints the `--resume` command.
    """
    from mrspec.spec.loader import load_spec
    from mrspec.spec.params import with_overrides

    options = ApplyOptions(
        local=local,
        workers=workers,
        overwrite=overwrite,
        json=as_json,
        keep=keep,
        output=output,
        state_dir=state_dir,
        provisioner=provisioner,
        inputs=inputs,
        detach=detach,
        resume=resume,
        work_dir=work_dir,
        params=params,
        keep_failed=keep_failed,
    )
    if not local and work_dir:
        raise click.UsageError("--work-dir is for --local runs (the work folder's parent)")
    if detach and local:
        raise click.UsageError("--detach runs on AWS only; a --local run holds the terminal")
    spec = with_overrides(load_spec(spec_file), options.params)
    spec = with_inputs(with_output(spec, options.output), options.inputs)
    if not options.local:
        return _run_aws(spec, options)
    _warn_aws_limits(spec)
    summary = _run_local(spec, options)
    if options.json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        from mrspec.local.report import print_summary

        print_summary(summary)
    return 0


def _run_aws(spec: JobSpec, options: ApplyOptions) -> int:
    """``apply`` on AWS: deploy, run and tear down (or detach) through the driver."""
    from pathlib import Path

    from mrspec.errors import MrspecError

    try:
        from mrspec.aws.driver import (  # type: ignore[import-not-found,unused-ignore]
            AwsRunOptions,
            run_on_aws,
        )
    except ImportError as exc:
        raise MrspecError(
            f"running on AWS is not available in this installation ({exc})",
            hint="run it on this machine with --local",
        ) from exc
    aws_options = AwsRunOptions(
        keep=options.keep,
        overwrite=options.overwrite,
        json_output=options.json,
        state_dir=Path(options.state_dir) if options.state_dir else None,
        provisioner=options.provisioner,
        input_prefixes=options.inputs,
        detach=options.detach,
        keep_failed_s=keep_failed_seconds(options.keep_failed),
        resume=options.resume,
    )
    rv = run_on_aws(spec, aws_options)
    return int(rv) if isinstance(rv, int) else 0


def keep_failed_seconds(text: str) -> int:
    """``--keep-failed``'s duration, within the working bucket's lifecycle rule."""
    from mrspec.aws.keep import MAX_KEEP_FAILED_S
    from mrspec.units import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--keep-failed") from exc
    if seconds > MAX_KEEP_FAILED_S:
        raise click.BadParameter(
            f"{text} is longer than {MAX_KEEP_FAILED_S // 86400}d, after which the working "
            "bucket's lifecycle rule removes the kept work",
            param_hint="--keep-failed",
        )
    return seconds


def with_output(spec: JobSpec, output: str | None) -> JobSpec:
    """The spec with ``--output`` applied (a local path made absolute)."""
    if output is None:
        return spec
    import os

    from mrspec.spec.model import is_s3_uri

    prefix = output if is_s3_uri(output) else os.path.abspath(output)
    return dataclasses.replace(spec, output=dataclasses.replace(spec.output, prefix=prefix))


def _warn_aws_limits(spec: JobSpec) -> None:
    """A local run rehearses the cloud run: say on stderr which AWS limits the plan
    passes (the AWS run would be refused); the local run itself goes ahead."""
    from mrspec.cost import estimate_for_spec
    from mrspec.errors import MrspecError

    try:
        failed = estimate_for_spec(spec).failed_limits
    except MrspecError:
        return  # the run itself reports what is wrong with the input
    for check in failed:
        click.echo(f"warning: on AWS, apply would refuse this run: {check.message()}", err=True)


def with_inputs(spec: JobSpec, inputs: tuple[str, ...]) -> JobSpec:
    """The spec with ``--input`` applied, checked as the spec's own prefixes are."""
    if not inputs:
        return spec
    import os

    from mrspec.errors import MrspecError
    from mrspec.spec import rules
    from mrspec.spec.model import is_s3_uri

    prefixes = []
    for text in inputs:
        problem = rules.location_problem(text)
        if problem:
            raise MrspecError(f"--input {text}: {problem}")
        prefix = text if is_s3_uri(text) else os.path.abspath(os.path.expanduser(text))
        kind = rules.overlap(spec.output.prefix, prefix)
        if kind is not None:
            raise MrspecError(
                f"--input {text} overlaps the output {spec.output.prefix}; a job must not "
                "read its own output",
                hint="pass --output with a prefix outside every input",
            )
        prefixes.append(prefix)
    return dataclasses.replace(spec, input=dataclasses.replace(spec.input, prefixes=tuple(prefixes)))


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run_local(spec: JobSpec, options: ApplyOptions) -> dict[str, Any]:
    from mrspec.local.engine import LocalOptions, run_local
    from mrspec.local.report import LiveProgress

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM stops like Ctrl-C
    try:
        with LiveProgress(enabled=sys.stderr.isatty() or not options.json) as progress:
            return run_local(
                spec,
                LocalOptions(
                    workers=options.workers,
                    overwrite=options.overwrite,
                    work_dir=options.work_dir,
                    resume=options.resume,
                ),
                progress.update,
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
