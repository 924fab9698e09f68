"""``mrspec runs``: the stacks mrspec still holds (running, kept or left by an interrupted
run), read from mrspec's state directory: age, status and resources of each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mrspec.commands.destroy import state_dir_option

if TYPE_CHECKING:
    from mrspec.aws.state import RunRecord


@click.command(
    "runs",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def command(state_dir: Path | None, as_json: bool) -> int:
    """List the AWS stacks of mrspec runs that have not been removed yet.

    A stack appears here from the moment a run starts creating it until its teardown
    finishes; `mrspec attach --run ID` follows a running one (detached, or its terminal
    lost) to its end, `mrspec destroy JOB` removes leftovers.
    """
    from collections import Counter

    from mrspec.aws.state import StateStore
    from mrspec.aws.state import state_dir as resolve_state_dir
    from mrspec.units import format_duration

    store = StateStore(resolve_state_dir(state_dir))
    records = list(store.runs())
    if as_json:
        click.echo(
            json.dumps(
                {
                    "state_dir": str(store.root),
                    "runs": [
                        dict(r.to_json(), age_s=round(r.age_s, 1), expired=r.expired)
                        for r in records
                    ],
                },
                indent=2,
                sort_keys=True,
            )
        )
        return 0
    if not records:
        click.echo(f"no stacks left (state directory {store.root})")
        return 0
    from rich.console import Console
    from rich.table import Table

    # The table holds the short fields (folding, never cutting, a long one) so it stays
    # readable at 80 columns; each destroy command follows on a line of its own, whole,
    # so that it can be copied even when the terminal wraps it.
    table = Table(title=f"mrspec stacks in {store.root}", title_justify="left")
    for column in ("job", "run", "status", "age", "region", "resources"):
        table.add_column(column, overflow="fold")
    for r in records:
        kinds = Counter(res.kind for res in r.resources)
        resources = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "-"
        table.add_row(r.job, r.run_id, _status(r), format_duration(r.age_s), r.region, resources)
    Console(highlight=False).print(table)
    kept = [r for r in records if r.status == "resumable"]
    if kept:
        click.echo("failed runs kept for a resume (fix the cause first):")
        for r in kept:
            click.echo(f"  {r.stack}: {r.resume_command}")
    if any(r.expired for r in records):
        click.echo("some kept runs are past their --keep-failed time; remove them with: "
                   "mrspec destroy --expired")
    running = [r for r in records if r.status in ("running", "detached") and r.execution_arn]
    if running:  # "running" and no apply following it: its process died
        click.echo("to follow a detached (or orphaned running) one to its end:")
        for r in running:
            click.echo(f"  {r.stack}: mrspec attach --run {r.run_id}")
    click.echo("to remove them:")
    for r in records:
        click.echo(f"  {r.stack}: mrspec destroy {r.spec_path or r.job} --run {r.run_id}")
    return 0


def _status(record: RunRecord) -> str:
    """The status, and for a kept failed run until when (or that it expired)."""
    if record.status != "resumable":
        return record.status
    from mrspec.aws.keep import when

    if record.expired:
        return f"resumable, EXPIRED {when(record.expires_at)}"
    return f"resumable until {when(record.expires_at)}"
