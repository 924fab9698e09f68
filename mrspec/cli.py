"""The ``mrspec`` command line.

Each sub-command lives in its own module under ``mrspec.commands`` and is imported only
when it runs (or when ``--help`` lists it), so ``mrspec validate`` never pays for Pulumi
or boto3. Errors are translated to messages and exit codes here, once.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from typing import NoReturn

import click

from mrspec import __version__
from mrspec.errors import ExitCode, MrspecError

# name -> (module, one-line help). The help is duplicated here so that ``mrspec --help``
# does not import every command module.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("mrspec.commands.validate", "Check job specs: schema, limits, entrypoints."),
    "schema": ("mrspec.commands.schema", "Print the JSON Schema of the job spec format."),
    "plan": ("mrspec.commands.plan", "Show the work, resources, cost and time of a job."),
    "apply": ("mrspec.commands.apply", "Run a job on AWS (deploy, run, tear down) or --local."),
    "compile": ("mrspec.commands.compile", "Write a job's reviewable AWS artifacts to stacks/."),
    "destroy": ("mrspec.commands.destroy", "Remove cloud resources left by an interrupted run."),
    "runs": ("mrspec.commands.runs", "List the stacks mrspec still holds on AWS."),
    "status": ("mrspec.commands.status", "Show recorded runs' progress and cost so far."),
    "attach": ("mrspec.commands.attach", "Follow a detached run to its end and tear down."),
    "logs": ("mrspec.commands.logs", "Print a run's task logs (kept after teardown)."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command = module.command
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="mrspec")
def cli() -> None:
    """mrspec: serverless MapReduce on AWS from a reviewed YAML job spec.

    \b
    Typical use:
      mrspec validate specs/*/job.yaml          # in CI and pre-commit
      mrspec plan specs/wordcount/job.yaml      # tasks, resources, cost, time
      mrspec apply specs/wordcount/job.yaml --local   # run on this machine
      mrspec apply specs/wordcount/job.yaml     # deploy, run, tear down on AWS

    Exit codes: 0 ok, 1 job failed, 2 invalid input, 3 refused by a preflight
    check (or no AWS credentials/access), 4 teardown failed, 70 a bug in mrspec,
    130 interrupted.
    """


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, translating errors to exit codes."""
    args = sys.argv[1:] if argv is None else argv
    try:
        rv = cli.main(args=args, prog_name="mrspec", standalone_mode=False)
    except MrspecError as exc:
        _fail(args, exc.exit_code, f"error: {exc}", _error_document(exc))
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail(args, ExitCode.INTERRUPTED, "interrupted", {"error": "interrupted"})
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(int(ExitCode.INVALID) if exc.exit_code == 2 else exc.exit_code)
    except OSError as exc:
        if not exc.filename:  # a socket, a pipe: not the user's file, so treat it as a bug
            _internal(args, exc)
        # a path the user gave (or its folder) cannot be read or written: say which
        error = MrspecError(
            f"{exc.filename}: {exc.strerror or exc}",
            hint="check the path, that its folder exists and that you may write there",
        )
        _fail(args, ExitCode.INVALID, f"error: {error}", _error_document(error))
    except Exception as exc:  # a bug in mrspec: a short report, never a raw traceback
        _internal(args, exc)
    # Commands return an exit code (an int) or None for success.
    sys.exit(int(rv) if isinstance(rv, int) else 0)


def _internal(args: list[str], exc: BaseException) -> NoReturn:
    from mrspec.bugreport import bug_report

    text, document = bug_report(exc, args)
    _fail(args, ExitCode.INTERNAL, text, document)


def _error_document(exc: MrspecError) -> dict[str, object]:
    document: dict[str, object] = {
        "error": type(exc).__name__,
        "exit_code": int(exc.exit_code),
        "message": exc.message,
        "hint": exc.hint,
    }
    problems = getattr(exc, "problems", None)
    if problems:
        document["problems"] = [dataclasses.asdict(p) for p in problems]
    return document


def _wants_json(args: list[str]) -> bool:
    """``--json`` or ``--format json`` anywhere on the command line."""
    pairs = zip(args, [*args[1:], ""], strict=True)
    return "--json" in args or "--format=json" in args or ("--format", "json") in pairs


def _fail(args: list[str], code: ExitCode, text: str, document: dict[str, object]) -> NoReturn:
    """Exit with ``code``: the message on stderr and, under ``--json``, a JSON error
    document on stdout, so a script reading stdout never sees an empty string."""
    click.echo(text, err=True)
    if _wants_json(args):
        click.echo(json.dumps({"ok": False, "exit_code": int(code), **document}, indent=2))
    sys.exit(int(code))
