"""``mrspec attach --run ID``: follow a run another ``apply`` started (``--detach``, or a
lost terminal), collect its summary and tear its stack down, as that ``apply`` would."""

from __future__ import annotations

from pathlib import Path

import click

from mrspec.commands.destroy import state_dir_option


@click.command(
    "attach",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--run", "run_id", required=True, help="The run to follow (see `mrspec runs`).")
@click.option(
    "--stop",
    is_flag=True,
    help="Ctrl-C stops the execution and tears down (default: Ctrl-C detaches again).",
)
@click.option("--keep", is_flag=True, help="Keep the stack after the run (debugging).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout.")
@state_dir_option
def command(run_id: str, stop: bool, keep: bool, as_json: bool, state_dir: Path | None) -> int:
    """Follow run ID with live progress until it ends, print its summary and remove its
    stack (unless --keep, or --keep was given to the apply that started it).

    Ctrl-C detaches (the job goes on; attach again later) unless --stop is given.

    \b
    Exit codes: as `mrspec apply`: 0 success, 1 the job failed, 2 no such run,
    4 teardown failed, 130 detached by Ctrl-C or interrupted.
    Examples:
      mrspec apply specs/wordcount/job.yaml --detach
      mrspec attach --run lq2x8a1b2c
    """
    from mrspec.aws.driver import attach_run
    from mrspec.aws.run import AwsRunOptions

    options = AwsRunOptions(
        keep=keep,
        json_output=as_json,
        state_dir=state_dir,
        stop_on_interrupt=stop,
    )
    return attach_run(run_id, options)
