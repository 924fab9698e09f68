"""``mrspec compile``: write a job's reviewable AWS artifacts to ``stacks/<job-name>/``.

    statemachine.asl.json   the state machine definition exactly as AWS receives it
    stack.json              the resource model (StackModel.to_json)
    iam/<role>.json         each role's trust policy and inline policies
    iam/bucket-policy.json  the working bucket's policy

Artifacts use a fixed run id (``review``) and the docs' example account, so they change
only when the spec (or mrspec) changes. Local input/output folders, which AWS cannot
read, appear as ``s3://LOCAL-INPUT-<n>/`` and ``s3://LOCAL-OUTPUT/`` unless ``--input`` /
``--output`` give real ``s3://`` locations. ``--check`` writes nothing and exits 1 when
the committed artifacts differ from what the specs compile to (for CI).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mrspec.aws.model import StackModel


def render_artifacts(model: StackModel) -> dict[str, str]:
    """Relative path -> file text of every review artifact of ``model``."""
    from mrspec.aws.model import dump_json

    files = {
        "statemachine.asl.json": model.state_machine.definition_json(),
        "stack.json": model.to_json_text(),
    }
    for role in model.roles:
        doc = {
            "role": role.name,
            "assume_role_policy": role.trust.to_json(),
            "inline_policies": {p.name: p.document.to_json() for p in role.policies},
        }
        if role.managed_policies:
            doc["managed_policies"] = {p.name: p.document.to_json() for p in role.managed_policies}
        files[f"iam/{role.logical_name}.json"] = dump_json(doc)
    bucket = model.work_bucket
    files["iam/bucket-policy.json"] = dump_json(
        {"bucket": bucket.name, "policy": bucket.policy.to_json()}
    )
    return files


def compile_spec(
    spec_path: Path,
    *,
    input_prefixes: tuple[str, ...] = (),
    output_prefix: str | None = None,
) -> tuple[str, dict[str, str], bool, list[str]]:
    """(job name, artifacts, whether placeholders stand in for local locations, the IAM
    report: each policy container's size against its limit, and any widened grants)."""
    from mrspec.aws.lower import REVIEW_ACCOUNT_ID, REVIEW_RUN_ID, lower
    from mrspec.spec.loader import load_spec
    from mrspec.spec.model import is_s3_uri

    spec = load_spec(spec_path)
    model = lower(
        spec,
        run_id=REVIEW_RUN_ID,
        account_id=REVIEW_ACCOUNT_ID,
        input_prefixes=input_prefixes or None,
        output_prefix=output_prefix,
        placeholders=True,
    )
    used = (*model.layout.input_prefixes, model.layout.output_prefix)
    placeholders = any(not is_s3_uri(p) or "LOCAL-" in p for p in used)
    from mrspec.aws.policy_fit import policy_sizes

    report = [f"  iam {size.describe()}" for size in policy_sizes(model.roles)]
    report += [f"  iam: {line}" for line in model.iam_widened]
    return spec.name, render_artifacts(model), placeholders, report


def _existing_files(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@click.command("compile")
@click.argument("specs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("stacks"),
    show_default=True,
    help="Folder receiving <job-name>/ artifact folders.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if artifacts are stale.")
@click.option(
    "--input",
    "input_prefixes",
    multiple=True,
    metavar="S3_URI",
    help="Input prefix to compile against instead of the spec's (repeatable).",
)
@click.option("--output", "output_prefix", metavar="S3_URI", help="Output prefix override.")
def command(
    specs: tuple[Path, ...],
    out_dir: Path,
    check: bool,
    input_prefixes: tuple[str, ...],
    output_prefix: str | None,
) -> int:
    """Write each job's state machine, resource model and IAM policies to OUT/<job-name>/."""
    from mrspec.errors import MrspecError
    from mrspec.spec.model import is_s3_uri

    for given in (*input_prefixes, *([output_prefix] if output_prefix else [])):
        if not is_s3_uri(given):
            raise MrspecError(
                f"--input/--output take s3:// URIs, not {given!r}",
                hint="pass the S3 locations the job will read and write on AWS",
            )
    stale: list[str] = []
    seen: dict[str, Path] = {}
    for spec_path in specs:
        name, files, placeholders, iam_report = compile_spec(
            spec_path, input_prefixes=input_prefixes, output_prefix=output_prefix
        )
        if name in seen:
            raise MrspecError(
                f"{spec_path} and {seen[name]} both name the job {name!r}; their artifacts "
                f"would share {out_dir / name}",
                hint="give each job spec a unique name",
            )
        seen[name] = spec_path
        folder = out_dir / name
        if check:
            for rel, text in files.items():
                target = folder / rel
                if not target.is_file():
                    stale.append(f"{target}: missing")
                elif target.read_text(encoding="utf-8") != text:
                    stale.append(f"{target}: differs")
            for rel in sorted(_existing_files(folder) - set(files)):
                stale.append(f"{folder / rel}: not produced by the spec any more")
            continue
        for rel, text in files.items():
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                target.write_text(text, encoding="utf-8")
        for rel in sorted(_existing_files(folder) - set(files)):
            (folder / rel).unlink()
        note = " (local input/output shown as s3://LOCAL-... placeholders)" if placeholders else ""
        click.echo(f"compiled {spec_path} -> {folder}/{note}")
        for line in iam_report:
            click.echo(line)
    if stale:
        for line in stale:
            click.echo(line, err=True)
        click.echo(
            f"{len(stale)} artifact file(s) are stale; run: mrspec compile --out {out_dir} "
            + " ".join(str(s) for s in specs),
            err=True,
        )
        return 1
    if check:
        click.echo(f"ok: artifacts of {len(specs)} spec(s) are up to date")
    return 0
