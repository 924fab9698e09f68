"""``mrspec plan job.yaml``: the work, the resources, the cost and the time of a job.

Lists the input, cuts splits and bins, lowers the spec to its StackModel and estimates
the AWS cost per service and the wall time, stating every assumption. Nothing is
created and nothing is run, except the job's own functions on a local sample with
``--sample``. docs/plan.md explains every line of the output.

The command reads as its three stages: :func:`load` (the spec, the prices, the old spec
to compare), :func:`estimate` (listing the input, the estimate and the comparison) and
:func:`render` (JSON, markdown or the terminal report).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from mrspec.cost.compare import Comparison
    from mrspec.cost.estimate import Estimate
    from mrspec.cost.pricing import PriceBook
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
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Set the job parameter NAME (from the spec's params:) to VALUE (repeatable).")
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
    params: tuple[str, ...],
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
    options = PlanOptions.checked(
        fmt="json" if as_json and fmt in (None, "json") else (fmt or "table"),
        as_json=as_json, pricing_file=pricing_file, refresh_pricing=refresh_pricing,
        save_pricing=save_pricing, sample=sample, sample_spread=sample_spread, assume=assume,
        params=params, compare_file=compare_file, base_ref=base_ref, listing_file=listing_file,
        save_listing=save_listing,
    )
    loaded = load(spec_file, options)
    new, comparison = estimate(loaded, options)
    render(options.fmt, new, comparison)
    return 0


@dataclass(frozen=True)
class PlanOptions:
    fmt: str  # "table" | "json" | "markdown"
    pricing_file: str | None = None
    refresh_pricing: bool = False
    save_pricing: str | None = None
    sample_size: int = 0
    sample_spread: bool = False
    overrides: Mapping[str, float] = field(default_factory=dict)
    params: tuple[str, ...] = ()  # --param NAME=VALUE, applied to the spec being planned
    compare_file: str | None = None
    base_ref: str | None = None
    listing_file: str | None = None  # --listing: the input's objects from a file
    save_listing: str | None = None

    @classmethod
    def checked(
        cls, *, fmt: str, as_json: bool, sample: str | None, assume: tuple[str, ...], **rest: Any
    ) -> PlanOptions:
        """The options, after refusing the combinations that contradict each other."""
        from mrspec.cost.assumptions import parse_overrides
        from mrspec.errors import MrspecError

        if as_json and fmt != "json":
            raise MrspecError("--json and --format markdown/table contradict each other")
        if rest["compare_file"] and rest["base_ref"]:
            raise MrspecError("use either --compare or --base-ref, not both")
        if rest["save_pricing"] and not rest["refresh_pricing"]:
            raise MrspecError("--save-pricing needs --refresh-pricing")
        if rest["listing_file"] and rest["save_listing"]:
            raise MrspecError("use either --listing or --save-listing, not both")
        overrides = parse_overrides(assume)
        return cls(fmt=fmt, sample_size=_size(sample) if sample else 0, overrides=overrides,
                   **rest)


@dataclass(frozen=True)
class Loaded:
    spec_file: str
    spec: JobSpec
    book: PriceBook
    old_spec: JobSpec | None = None  # --compare / --base-ref
    old_label: str = ""


def load(spec_file: str, options: PlanOptions) -> Loaded:
    """The spec, the prices (refreshed and saved when asked) and the old spec to compare.

    The old version is read before any listing, so a bad ref or a missing file fails
    first. ``--param`` overrides apply to the new spec only: the comparison shows them.
    """
    from mrspec.cost.pricing import load_pricing
    from mrspec.spec.loader import load_spec
    from mrspec.spec.params import with_overrides

    spec = with_overrides(load_spec(spec_file), options.params)
    book = load_pricing(options.pricing_file)
    notes: list[str] = []
    if options.refresh_pricing:
        from mrspec.cost.refresh import refresh_prices

        book, notes = refresh_prices(book, [spec.aws.region])
        if options.save_pricing:
            with open(options.save_pricing, "w", encoding="utf-8") as fh:
                json.dump(book.data, fh, indent=2)
                fh.write("\n")
            notes.append(f"wrote refreshed prices to {options.save_pricing}")
    for note in notes:
        click.echo(note, err=True)
    if options.compare_file:
        return Loaded(spec_file, spec, book, load_spec(options.compare_file), options.compare_file)
    if options.base_ref:
        from mrspec.cost.compare import old_spec_from_git

        old = old_spec_from_git(spec_file, options.base_ref)
        return Loaded(spec_file, spec, book, old, f"{options.base_ref}:{spec_file}")
    return Loaded(spec_file, spec, book)


def estimate(loaded: Loaded, options: PlanOptions) -> tuple[Estimate, Comparison | None]:
    """The spec's estimate (listing its input) and, with an old spec, the comparison."""
    from mrspec.cost import estimate_for_spec

    old = loaded.old_spec
    versions = [loaded.spec] if old is None else [loaded.spec, old]
    plans = _load_plans(versions, options.listing_file)
    if options.save_listing:
        _save_listing(options.save_listing, versions, plans)
    new = estimate_for_spec(
        loaded.spec, plans[0], book=loaded.book, overrides=options.overrides,
        sample_size=options.sample_size, sample_spread=options.sample_spread,
        spec_path=loaded.spec_file,
    )
    if old is None:
        return new, None
    from mrspec.cost.compare import compare

    old_estimate = estimate_for_spec(old, plans[1], book=loaded.book,
                                     overrides=options.overrides, spec_path=loaded.old_label)
    return new, compare(old_estimate, new, loaded.old_label, loaded.spec_file)


def render(fmt: str, new: Estimate, comparison: Comparison | None = None) -> None:
    """Print the estimate (and comparison) as JSON, markdown or the terminal report."""
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
