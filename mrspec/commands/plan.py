"""``mrspec plan job.yaml``: the work, the resources, the cost and the time of a job.

Lists the input, cuts splits and bins, lowers the spec to its StackModel and estimates
the AWS cost per service and the wall time, stating every assumption. Nothing is
created and nothing is run, except the job's own functions on a local sample with
``--sample``. docs/plan.md explains every line of the output.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from mrspec.errors import MrspecError
    from mrspec.plan.model import JobPlan
    from mrspec.spec.model import JobSpec


def _size(value: str) -> int:
    from mrspec.units import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(
    "plan",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON (same as --format json).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default=None,
    help="Output format: a terminal table (default), JSON, or markdown for a pull request.",
)
@click.option("--pricing", "pricing_file", type=click.Path(dir_okay=False),
              help="Price data file to use instead of the bundled one.")
@click.option("--refresh-pricing", is_flag=True,
              help="Fetch the region's prices from the AWS Price List API (needs credentials).")
@click.option("--save-pricing", type=click.Path(dir_okay=False),
              help="With --refresh-pricing: write the refreshed price data here.")
@click.option("--sample", "sample", metavar="SIZE",
              help="Run the job's functions on SIZE bytes of the input (e.g. 16MiB) and use "
              "the measured CPU, shuffle, output and memory figures.")
@click.option("--sample-spread", is_flag=True,
              help="Take the sample from splits spread over the whole input, not the first ones.")
@click.option("--assume", "assume", multiple=True, metavar="NAME=VALUE",
              help="Override an assumption (repeatable), e.g. --assume shuffle_ratio=0.5.")
@click.option("--compare", "compare_file", type=click.Path(dir_okay=False),
              help="Show the changes from another version of the spec.")
@click.option("--base-ref", metavar="GIT_REF",
              help="Show the changes from the spec as it was at a git ref (e.g. origin/main).")
@click.option("--listing", "listing_file", type=click.Path(dir_okay=False),
              help="Read the input's object list (uri, size) from this file instead of "
              "listing S3: plans without cloud access.")
@click.option("--save-listing", type=click.Path(dir_okay=False),
              help="Write the input's object list to this file, for --listing later.")
def command(
    spec_file: str,
    as_json: bool,
    fmt: str | None,
    pricing_file: str | None,
    refresh_pricing: bool,
    save_pricing: str | None,
    sample: str | None,
    sample_spread: bool,
    assume: tuple[str, ...],
    compare_file: str | None,
    base_ref: str | None,
    listing_file: str | None,
    save_listing: str | None,
) -> int:
    """Show what a job will create, how its work is cut, what it costs and how long it takes.

    \b
    Examples:
      mrspec plan specs/wordcount/job.yaml
      mrspec plan job.yaml --sample 16MiB          # calibrate on real input
      mrspec plan job.yaml --format markdown --base-ref origin/main   # PR comment
      mrspec plan job.yaml --json | jq .cost.total_usd
      mrspec plan job.yaml --save-listing job.listing.jsonl   # with AWS credentials
      mrspec plan job.yaml --listing job.listing.jsonl        # later, without them
    """
    from mrspec.cost import estimate_for_spec
    from mrspec.cost.assumptions import parse_overrides
    from mrspec.cost.pricing import load_pricing
    from mrspec.errors import MrspecError
    from mrspec.spec.loader import load_spec

    if as_json and fmt not in (None, "json"):
        raise MrspecError("--json and --format markdown/table contradict each other")
    fmt = "json" if as_json else (fmt or "table")
    if compare_file and base_ref:
        raise MrspecError("use either --compare or --base-ref, not both")
    if save_pricing and not refresh_pricing:
        raise MrspecError("--save-pricing needs --refresh-pricing")
    if listing_file and save_listing:
        raise MrspecError("use either --listing or --save-listing, not both")
    overrides = parse_overrides(assume)
    sample_size = _size(sample) if sample else 0

    spec = load_spec(spec_file)
    book = load_pricing(pricing_file)
    notes: list[str] = []
    if refresh_pricing:
        from mrspec.cost.refresh import refresh_prices

        book, notes = refresh_prices(book, [spec.aws.region])
        if save_pricing:
            with open(save_pricing, "w", encoding="utf-8") as fh:
                json.dump(book.data, fh, indent=2)
                fh.write("\n")
            notes.append(f"wrote refreshed prices to {save_pricing}")
    for note in notes:
        click.echo(note, err=True)

    # The old version first: a bad ref or a missing file fails before any listing.
    old_spec, old_label = None, ""
    if compare_file:
        old_spec, old_label = load_spec(compare_file), compare_file
    elif base_ref:
        from mrspec.cost.compare import old_spec_from_git

        old_spec, old_label = old_spec_from_git(spec_file, base_ref), f"{base_ref}:{spec_file}"
    versions = [spec] if old_spec is None else [spec, old_spec]
    plans = _load_plans(versions, listing_file)
    if save_listing:
        _save_listing(save_listing, versions, plans)
    new = estimate_for_spec(
        spec, plans[0], book=book, overrides=overrides, sample_size=sample_size,
        sample_spread=sample_spread, spec_path=spec_file,
    )
    comparison = None
    if old_spec is not None:
        from mrspec.cost.compare import compare

        old = estimate_for_spec(
            old_spec, plans[1], book=book, overrides=overrides, spec_path=old_label
        )
        comparison = compare(old, new, old_label, spec_file)

    if fmt == "json":
        document: dict[str, Any] = new.to_json()
        if comparison is not None:
            document["comparison"] = comparison.to_json()
        click.echo(json.dumps(document, indent=2))
    elif fmt == "markdown":
        from mrspec.cost.render import render_markdown

        if comparison is not None:
            from mrspec.cost.compare import render_comparison_markdown

            click.echo(render_comparison_markdown(comparison))
        click.echo(render_markdown(new), nl=False)
    else:
        from rich.console import Console

        from mrspec.cost.render import render_terminal

        console = Console()
        render_terminal(new, console)
        if comparison is not None:
            from mrspec.cost.compare import render_comparison_text

            console.print(render_comparison_text(comparison), highlight=False, markup=False)
    return 0


def _load_plans(specs: list[JobSpec], listing_file: str | None) -> list[JobPlan]:
    """Each spec's JobPlan, its input listed from S3/disk or read from a saved listing.

    Listing S3 needs credentials; without them the error also says how to plan offline."""
    from mrspec.plan.planner import plan_job

    if listing_file:
        from mrspec.storage.listing import read_listing

        listing = read_listing(listing_file)
        return [plan_job(s, lambda _prefix: listing) for s in specs]
    try:
        return [plan_job(s) for s in specs]
    except Exception as exc:
        if not _lacks_credentials(exc):
            raise
        raise _offline_hint(exc, specs) from None


def _lacks_credentials(exc: BaseException | None) -> bool:
    """Whether botocore found no credentials (raw, or under the storage's own error)."""
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    while exc is not None:
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return True
        exc = exc.__cause__
    return False


def _offline_hint(exc: Exception, specs: list[JobSpec]) -> MrspecError:
    """The no-credentials error with the way to plan without them; a MrspecError keeps
    its class (and so its exit code), a raw botocore error becomes an InputError."""
    from mrspec.errors import InputError, MrspecError

    inputs = ", ".join(p for s in specs for p in s.input.prefixes if p.startswith("s3://"))
    offline = ("plan from a saved listing with --listing FILE; write one where credentials "
               "exist with: mrspec plan SPEC --save-listing FILE (docs/plan.md, 'Planning "
               "offline')")
    if isinstance(exc, MrspecError):
        hint = offline + (f"; or give this machine credentials: {exc.hint}" if exc.hint else "")
        return type(exc)(f"no AWS credentials to list the input {inputs}", hint=hint)
    return InputError(f"no AWS credentials to list the input {inputs}", hint=offline)


def _save_listing(path: str, specs: list[JobSpec], plans: list[JobPlan]) -> None:
    from mrspec.storage.listing import write_listing

    prefixes = [p for s in specs for p in s.input.prefixes]
    count = write_listing(path, prefixes, (o for plan in plans for o in plan.objects))
    click.echo(f"wrote the listing of {count} input object(s) to {path}", err=True)
