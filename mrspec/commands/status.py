"""``mrspec status``: the progress of recorded runs (running, detached, kept), read from
AWS: execution status, per-phase item counts, elapsed time, cost so far."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mrspec.commands.destroy import job_name, state_dir_option


@click.command(
    "status",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.argument("job", required=False)
@click.option("--run", "run_id", help="Only this run (its id is in `mrspec runs`).")
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the runs' status as JSON.")
def command(job: str | None, run_id: str | None, state_dir: Path | None, as_json: bool) -> int:
    """Show each recorded run's progress: phases (succeeded/running/pending/failed
    tasks), time since its execution started and its cost so far.

    JOB (a spec file or job name) limits it to that job's runs; without JOB or --run,
    every recorded run. It only reads: `mrspec attach --run ID` follows a run to its end.

    \b
    Exit codes: 0 shown, 2 no such run.
    Examples:
      mrspec status
      mrspec status specs/wordcount/job.yaml
      mrspec status --run lq2x8a1b2c --json
    """
    from mrspec.aws.run import AwsRunOptions
    from mrspec.aws.state import StateStore
    from mrspec.aws.state import state_dir as resolve_state_dir
    from mrspec.aws.status import run_status
    from mrspec.errors import MrspecError

    store = StateStore(resolve_state_dir(state_dir))
    name = job_name(job) if job else None
    records = [r for r in store.runs(name) if run_id is None or r.run_id == run_id]
    if run_id is not None and not records:
        raise MrspecError(
            f"no run {run_id!r} in {store.root}",
            hint=f"`mrspec runs` lists the live runs; `mrspec logs --run {run_id}` prints "
            "what a finished run saved",
        )
    options = AwsRunOptions(state_dir=state_dir)
    statuses = [run_status(r, store, options) for r in records]
    if as_json:
        click.echo(json.dumps({"state_dir": str(store.root), "runs": statuses}, indent=2))
        return 0
    if not statuses:
        click.echo(f"no recorded runs (state directory {store.root})")
    for status in statuses:
        _print(status, state_dir)
    return 0


def _print(status: dict[str, Any], state_dir: Path | None) -> None:
    from mrspec.units import format_duration

    click.echo(
        f"{status['job']} run {status['run_id']} ({status['stack']}): {status['status']}"
        + (f", execution {status['execution_status']}" if status["execution_status"] else "")
    )
    for phase in status["phases"]:
        done = phase["succeeded"] + phase["failed"] + phase["timed_out"] + phase["aborted"]
        failed = phase["failed"] + phase["timed_out"] + phase["aborted"]
        click.echo(
            f"  {phase['phase']:<8} {_bar(done, phase['total'])} {done}/{phase['total']}  "
            f"running {phase['running']}, pending {phase['pending']}"
            + (f", FAILED {failed}" if failed else "")
        )
    if status["elapsed_s"] is not None:
        cost = status["cost_so_far_usd"]
        estimate = status["estimate_usd"]
        click.echo(
            f"  elapsed {format_duration(status['elapsed_s'])}, cost so far "
            + (f"${cost:.4f}" if cost is not None else "not yet logged")
            + (f" (estimate ${estimate:.4f})" if estimate is not None else "")
        )
    suffix = f" --state-dir {state_dir}" if state_dir else ""
    click.echo(f"  attach: mrspec attach --run {status['run_id']}{suffix}")


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // total if total else 0
    return "[" + "#" * filled + "." * (width - filled) + "]"
