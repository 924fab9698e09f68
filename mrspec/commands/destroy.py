"""``mrspec destroy``: remove the AWS stacks that interrupted or ``--keep`` runs left.

Stacks are found in mrspec's state directory (``mrspec runs`` lists them). Each is
destroyed with the provisioner that created it, then forgotten. The job's output prefix
is never part of a stack, so this never deletes results.
"""

from __future__ import annotations

from pathlib import Path

import click

from mrspec.errors import ExitCode

STATE_DIR_HELP = "mrspec's state directory [default: $MRSPEC_STATE_DIR or ~/.mrspec/state]."
# the --state-dir option of every command that reads the run records
state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MRSPEC_STATE_DIR",
    help=STATE_DIR_HELP,
)


def job_name(job: str) -> str:
    """A spec file's job name, or the argument itself when it is a job name."""
    path = Path(job)
    if path.is_file():
        from mrspec.spec.loader import load_spec

        return load_spec(path).name
    if path.suffix in (".yaml", ".yml") or "/" in job:
        from mrspec.errors import MrspecError

        raise MrspecError(
            f"{job}: no such spec file",
            hint="pass the job's spec file or its name; `mrspec runs` lists what is left",
        )
    return job


@click.command(
    "destroy",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.argument("job", required=False)
@click.option("--all", "all_runs", is_flag=True, help="Destroy every stack mrspec holds.")
@click.option("--run", "run_id", help="Destroy only this run of the job (see `mrspec runs`).")
@click.option(
    "--expired",
    is_flag=True,
    help="Destroy the failed runs kept for a resume whose --keep-failed time has passed "
    "(of JOB, or of every job).",
)
@state_dir_option
def command(
    job: str | None, all_runs: bool, run_id: str | None, state_dir: Path | None, expired: bool = False
) -> int:
    """Remove the AWS resources left by interrupted, --keep or kept failed runs of JOB.

    JOB is the job's spec file (or just its name). Every recorded stack of the job is
    destroyed: buckets emptied and deleted, functions, roles, log groups and the state
    machine removed. The output prefix is never touched.

    \b
    Exit codes: 0 nothing left, 4 something could not be removed (the message says what).
    Examples:
      mrspec destroy specs/wordcount/job.yaml
      mrspec destroy wordcount --run k3x9a1b2c3
      mrspec destroy --all
      mrspec destroy --expired        # failed runs kept past their --keep-failed time
    """
    from mrspec.aws.provisioner import provisioner_for
    from mrspec.aws.state import StateStore
    from mrspec.aws.state import state_dir as resolve_state_dir
    from mrspec.errors import MrspecError, TeardownError

    if (job is None) != all_runs and not (expired and not all_runs):
        raise click.UsageError("name a JOB (spec file or job name) or pass --all, not both")
    store = StateStore(resolve_state_dir(state_dir))
    name = None if job is None else job_name(str(job))
    records = [r for r in store.runs(name) if run_id is None or r.run_id == run_id]
    if expired:
        records = [r for r in records if r.expired]
    if not records:
        what = ("an expired kept run of " if expired else "") + (
            "any job" if name is None else f"job {name!r}"
        )
        run = f" with run id {run_id!r}" if run_id else ""
        click.echo(f"nothing to destroy: no stack of {what}{run} in {store.root}", err=True)
        return int(ExitCode.OK)
    failed: list[str] = []
    for record in records:
        click.echo(f"destroying {record.stack} (job {record.job}, run {record.run_id}) ...", err=True)
        try:
            provisioner = provisioner_for(record, store)
            provisioner.destroy()
            provisioner.remove()
        except MrspecError as exc:
            failed.append(f"{record.stack}: {exc.message}")
            continue
        store.delete(record.stack)
        click.echo(f"destroyed {record.stack}", err=True)
    if failed:
        raise TeardownError(
            "could not remove every stack:\n  " + "\n  ".join(failed),
            hint="fix the cause (permissions, a resource in use) and run the same command again",
        )
    return int(ExitCode.OK)
