"""``mrspec validate FILE...``: check job specs without touching any cloud.

One line per problem, ``path/to/job.yaml:LINE:COL: field.path: message``, the format
editors and CI annotate; a summary on stderr; exit code 0 when every file is valid and
2 otherwise. Only the spec loader is imported: no Pulumi, no boto3.
"""

from __future__ import annotations

import json

import click

from mrspec.errors import ExitCode, Problem


@click.command(
    "validate",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document with every file's result."
)
@click.option(
    "--github",
    is_flag=True,
    help="Print problems as GitHub Actions annotations (::error file=...,line=...::).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print problems only, no summary line.")
def command(files: tuple[str, ...], as_json: bool, github: bool, quiet: bool) -> int:
    """Check job specs: schema, Lambda limits, S3 names, entrypoints.

    Every problem of every FILE is reported at once, one per line:

    \b
      specs/wordcount/job.yaml:14:11: map.memory: Lambda memory must be 128 to 10,240 MB, got 20,000

    Entrypoints are checked statically: the module file must exist under code.path and
    define the function at top level; your code is parsed, never run.

    \b
    Exit codes: 0 every file is valid, 2 at least one is not.
    Examples:
      mrspec validate specs/*/job.yaml
      mrspec validate --json job.yaml | jq '.files[].problems'
      mrspec validate --github specs/*/job.yaml     # in a GitHub Actions step
    """
    from mrspec.spec.loader import validate_file

    results = []
    invalid = 0
    total = 0
    for file in files:
        spec, problems = validate_file(file)
        total += len(problems)
        invalid += spec is None
        results.append((file, spec, problems))

    if as_json:
        document = {
            "valid": invalid == 0,
            "files": [
                {
                    "file": file,
                    "valid": spec is not None,
                    "name": spec.name if spec is not None else None,
                    "problems": [
                        {"line": p.line, "column": p.column, "path": p.path, "message": p.message}
                        for p in problems
                    ],
                }
                for file, spec, problems in results
            ],
        }
        click.echo(json.dumps(document, indent=2))
    else:
        for _, _, problems in results:
            for problem in problems:
                click.echo(_annotation(problem) if github else problem.format())
    if not quiet:
        click.echo(_summary(len(files), invalid, total), err=True)
    return int(ExitCode.INVALID) if invalid else int(ExitCode.OK)


def _annotation(problem: Problem) -> str:
    """A GitHub Actions workflow command; its data escapes %, CR and LF (and , : in
    properties) the way the Actions toolkit does."""

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    where = problem.path or "<document>"
    return (
        f"::error file={prop(problem.file)},line={problem.line},col={problem.column},"
        f"title={prop('mrspec validate')}::{data(f'{where}: {problem.message}')}"
    )


def _summary(files: int, invalid: int, problems: int) -> str:
    noun = "spec" if files == 1 else "specs"
    if not invalid:
        return f"{files} {noun} valid"
    plural = "" if problems == 1 else "s"
    return f"{invalid} of {files} {noun} invalid ({problems} problem{plural})"
