"""``python -m mrspec.cost.bigplan``: ``plan`` for a job far larger than any input here.

The listing comes from a fake storage that names ``--objects`` objects of
``--object-size`` each (nothing is read: planning needs names and sizes only), so the
plan, the per-phase predictions, the limit checks, the cost and the time are exactly
what ``mrspec plan`` prints for such an input in S3. The default is issue 18's target:
word count with a combiner over 10 TiB (81,920 objects of 128 MiB), 2,000 partitions,
concurrency 1,000. ``--no-merge`` predicts the same job with every reducer reading every
map output (the exchange without merge phases) to show what the limit checks say then.

    python -m mrspec.cost.bigplan --assume shuffle_ratio=0.0118 --format markdown
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mrspec.storage import ObjectInfo

ROOT = Path(__file__).resolve().parents[2]
WORDCOUNT = ROOT / "specs" / "wordcount" / "job.yaml"


class ListingOnly:
    """A storage that lists ``count`` objects of ``size`` bytes and reads nothing."""

    def __init__(self, count: int, size: int) -> None:
        self.count, self.size = count, size

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for index in range(self.count):
            yield ObjectInfo(f"{prefix}part-{index:06d}.txt", self.size)

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"a listing-only storage has no {name}()")


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from mrspec.cost.assumptions import default_assumptions, parse_overrides
    from mrspec.cost.estimate import estimate
    from mrspec.cost.pricing import load_pricing
    from mrspec.cost.render import render_markdown, render_terminal
    from mrspec.cost.stack import review_model
    from mrspec.plan.planner import plan_job
    from mrspec.spec.loader import load_spec
    from mrspec.units import parse_size

    parser = argparse.ArgumentParser(prog="python -m mrspec.cost.bigplan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=str(WORDCOUNT))
    parser.add_argument("--objects", type=int, default=81_920)
    parser.add_argument("--object-size", default="128MiB")
    parser.add_argument("--partitions", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=1_000)
    parser.add_argument("--assume", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--no-merge", action="store_true",
                        help="every reducer reads every map output (no merge phases)")
    parser.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    args = parser.parse_args(argv)

    spec = load_spec(args.spec)
    spec = dataclasses.replace(
        spec,
        input=dataclasses.replace(spec.input, prefixes=("s3://big-input/data/",)),
        output=dataclasses.replace(spec.output, prefix="s3://big-output/result/"),
        limits=dataclasses.replace(spec.limits, max_concurrency=args.concurrency,
                                   budget_usd=None),
        reduce=dataclasses.replace(spec.reduce, partitions=args.partitions) if spec.reduce
        else None,
    )
    storage = ListingOnly(args.objects, parse_size(args.object_size))
    started = time.perf_counter()
    plan = plan_job(spec, lambda _prefix: storage)  # type: ignore[arg-type,return-value]
    model = review_model(spec, plan)
    assumptions = default_assumptions()
    if args.assume:
        assumptions = assumptions.with_values(parse_overrides(args.assume), "override")
    e = estimate(spec, plan, model, load_pricing(), assumptions,
                 spec_path=f"{args.spec} ({args.objects:,} x {args.object_size} listed)",
                 fan_in=len(plan.map_tasks) if args.no_merge else None)
    print(f"planned and estimated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.format == "json":
        print(e.to_json_text(), end="")
    elif args.format == "markdown":
        print(render_markdown(e), end="")
    else:
        render_terminal(e, Console(width=120))
    return 1 if e.failed_limits else 0


if __name__ == "__main__":
    raise SystemExit(main())
