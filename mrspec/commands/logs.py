"""``mrspec logs``: a run's task logs, from CloudWatch while its stack is up, else the copy
the driver saved in the state directory before teardown (``mrspec.aws.runlogs``)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mrspec.commands.destroy import state_dir_option

if TYPE_CHECKING:
    from mrspec.aws.runlogs import Invocation, RunLogs
    from mrspec.aws.state import StateStore


@click.command(
    "logs",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--run", "run_id", required=True, help="The run (its id is in the summary).")
@click.option("--task", "task", help="Only this task: map:17, merge-1:3, reduce:0 or commit.")
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the logs as one JSON document.")
def command(run_id: str, task: str | None, state_dir: Path | None, as_json: bool) -> int:
    """Print a run's task logs: each failed task's error record and the log events of
    its attempts, then the latest events of the other tasks.

    While the run's stack is up the logs are read from CloudWatch; after teardown, from
    what the run saved in the state directory (failed tasks whole, the other tasks'
    last 200 events).

    \b
    Exit codes: 0 printed, 2 no such run or task (the message lists what there is).
    Examples:
      mrspec logs --run lq2x8a1b2c
      mrspec logs --run lq2x8a1b2c --task map:17 --json
    """
    from mrspec.aws.state import StateStore
    from mrspec.aws.state import state_dir as resolve_state_dir
    from mrspec.errors import MrspecError

    store = StateStore(resolve_state_dir(state_dir))
    logs = _read(store, run_id)
    if task is not None:
        chosen = logs.only(task)
        if not chosen.failed and not chosen.tail:
            known = ", ".join(logs.labels()[:20]) or "none"
            raise MrspecError(
                f"run {run_id} has no logs of task {task!r}",
                hint=f"tasks with logs: {known}",
            )
        logs = chosen
    if as_json:
        click.echo(json.dumps(logs.to_json(), indent=2, sort_keys=True))
    else:
        _print(logs)
    return 0


def _read(store: StateStore, run_id: str) -> RunLogs:
    """CloudWatch while the stack is recorded and its groups answer, else the saved copy."""
    from mrspec.aws import runlogs
    from mrspec.errors import MrspecError

    record = store.find(run_id)
    if record is not None:
        import boto3

        groups = runlogs.function_log_groups(r.name for r in record.resources if r.kind == "log_group")
        live = runlogs.from_cloudwatch(
            boto3.Session(region_name=record.region), record.job, run_id, groups
        )
        if live.failed or live.tail:
            return live
    saved = store.load_logs(run_id)
    if saved is not None:
        return runlogs.RunLogs.from_json(saved)
    raise MrspecError(
        f"no logs of run {run_id!r}: no live stack and nothing saved in {store.root}",
        hint="check the run id (in the run's summary; `mrspec runs` lists live stacks) and "
        "--state-dir",
    )


def _print(logs: RunLogs) -> None:
    where = "CloudWatch (the stack is up)" if logs.source == "cloudwatch" else "saved before teardown"
    click.echo(f"run {logs.run_id} of job {logs.job}: logs read {_time(logs.read_at)}, {where}")
    for failed in logs.failed:
        record = failed.record
        error = f"{record.get('error', 'Error')}: {record.get('message', '')}" if record else ""
        click.echo("")
        click.echo(f"== {failed.label} {failed.state}" + (f": {error}" if error else ""))
        for attempt in failed.attempts:
            _print_invocation(attempt)
        if record.get("traceback") and not failed.attempts:
            click.echo(str(record["traceback"]).rstrip())
    if logs.failed_left_out:
        click.echo(f"\n({logs.failed_left_out} more failed tasks not saved)")
    if logs.tail:
        click.echo("\n== the other tasks' latest events")
        for invocation in logs.tail:
            _print_invocation(invocation)


def _print_invocation(inv: Invocation) -> None:
    attempt = f" attempt {inv.attempt}" if inv.task_id is not None else ""
    click.echo(f"-- {inv.label}{attempt} ({inv.log_group} {inv.stream})")
    if inv.left_out:
        click.echo(f"   ... {inv.left_out} earlier events not kept")
    for event in inv.events:
        click.echo(f"   {_time(event.timestamp / 1000)} {event.message}")


def _time(unix_s: float) -> str:
    moment = datetime.datetime.fromtimestamp(unix_s, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")
