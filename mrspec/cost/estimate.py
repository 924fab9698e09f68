"""The estimate of one job: work, phases, resources, cost, time, limits and warnings.

``estimate(spec, plan, stack, book, assumptions)`` is pure: it predicts every phase
(``mrspec.cost.phases``), runs the model (``mrspec.cost.model``), prices the usage
(``mrspec.cost.usage``) and checks the result against AWS limits
(``mrspec.cost.limits``), reading the compiled ``StackModel`` for the stack's sizes.
:meth:`Estimate.to_json` is the stable ``--json`` document
(``schema_version`` 1, documented in docs/plan.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mrspec.cost.assumptions import Assumptions
from mrspec.cost.limits import (
    MAX_DISTRIBUTED_MAP_CONCURRENCY,
    MAX_EXPRESS_S,
    MAX_LAMBDA_TIMEOUT_S,
    MAX_STATE_PAYLOAD,
    LimitCheck,
    check_hard_limits,
)
from mrspec.cost.model import KeptFailed, Timing, estimate_timing, estimate_usage, kept_failed
from mrspec.cost.phases import PhasePrediction, predict_phases
from mrspec.cost.pricing import PriceBook, RegionPrices
from mrspec.cost.stack import ResourceLine, phase_of, resource_lines
from mrspec.cost.usage import CostBreakdown, Usage, price_usage
from mrspec.plan.items import item_bytes
from mrspec.plan.model import JobPlan
from mrspec.spec.model import JobSpec, is_s3_uri

if TYPE_CHECKING:
    from mrspec.aws.model import Phase, StackModel

SCHEMA_VERSION = 1
NEAR = 0.8  # share of a limit that earns a warning


@dataclass(frozen=True)
class PricingInfo:
    path: str
    source: str
    date: str
    region: str
    region_source: str
    region_date: str
    unconfirmed: tuple[str, ...]  # price fields of the region marked unconfirmed

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "source": self.source,
            "date": self.date,
            "region": self.region,
            "region_source": self.region_source,
            "region_date": self.region_date,
            "unconfirmed": list(self.unconfirmed),
        }


@dataclass(frozen=True)
class Estimate:
    job: str
    spec_path: str
    spec_digest: str
    region: str
    architecture: str
    input_objects: int
    input_bytes: int
    splits: int
    map_tasks: int
    partitions: int
    reduce_tasks: int
    phases: tuple[Phase, ...]
    resources: tuple[ResourceLine, ...]
    timing: Timing
    usage: Usage
    cost: CostBreakdown
    assumptions: Assumptions
    warnings: tuple[str, ...]
    pricing: PricingInfo
    sample_bytes: int = 0  # bytes measured by --sample (0: not calibrated)
    predictions: tuple[PhasePrediction, ...] = ()  # map, merge levels, reduce, commit
    limits: tuple[LimitCheck, ...] = ()
    budget_usd: float | None = None  # the spec's limits.budget_usd
    listing_seconds: float = 0.0  # how long listing the input took
    params: Mapping[str, Any] = field(default_factory=dict)  # the spec's, with --param
    kept_failed: KeptFailed | None = None  # what keeping a failed run costs per day

    @property
    def total_usd(self) -> float:
        return self.cost.total_usd

    @property
    def within_budget(self) -> bool | None:
        return None if self.budget_usd is None else self.cost.total_usd <= self.budget_usd

    @property
    def failed_limits(self) -> tuple[LimitCheck, ...]:
        return tuple(c for c in self.limits if not c.ok)

    def budget_json(self) -> dict[str, Any] | None:
        if self.budget_usd is None:
            return None
        return {"budget_usd": self.budget_usd, "estimate_usd": round(self.total_usd, 6),
                "ok": self.within_budget}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "job": self.job,
            "spec": self.spec_path,
            "spec_digest": self.spec_digest,
            "params": dict(self.params),
            "region": self.region,
            "architecture": self.architecture,
            "input_objects": self.input_objects,
            "input_bytes": self.input_bytes,
            "listing_seconds": round(self.listing_seconds, 3),
            "splits": self.splits,
            "map_tasks": self.map_tasks,
            "partitions": self.partitions,
            "reduce_tasks": self.reduce_tasks,
            "waves": {
                "map": self.timing.map.waves,
                "reduce": self.timing.reduce.waves if self.timing.reduce else 0,
            },
            "phases": [p.to_json() for p in self.predictions],
            "limits": [c.to_json() for c in self.limits],
            "budget": self.budget_json(),
            "resources": [r.to_json() for r in self.resources],
            "cost": self.cost.to_json(),
            "free_tier": self.cost.free_tier_json(),
            "time": self.timing.to_json(),
            "keep_failed": self.kept_failed.to_json() if self.kept_failed else None,
            "assumptions": self.assumptions.to_json(),
            "calibration": {"sample_bytes": self.sample_bytes} if self.sample_bytes else None,
            "warnings": list(self.warnings),
            "pricing": self.pricing.to_json(),
        }

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"


def estimate(
    spec: JobSpec,
    plan: JobPlan,
    stack: StackModel,
    book: PriceBook,
    assumptions: Assumptions,
    *,
    spec_path: str = "",
    sample_bytes: int = 0,
    fan_in: int | None = None,
) -> Estimate:
    """The estimate of ``spec``'s run of ``plan`` on ``stack``, its lowered StackModel;
    ``fan_in`` replaces the exchange's (see ``predict_phases``: to compare with the
    design without merges)."""
    prices = book.region(stack.region)
    predictions = predict_phases(spec, plan, stack, assumptions, fan_in=fan_in)
    timing = estimate_timing(predictions, assumptions)
    usage = estimate_usage(plan, stack, assumptions, timing, spec.input.prefixes, predictions)
    cost = price_usage(
        usage, prices, book.free_tier, assumptions["monthly_gb_s_before_run"]
    )
    limits = check_hard_limits(spec, predictions, stack, assumptions)
    warnings = check_limits(spec, plan, stack, timing, assumptions)
    warnings += _limit_warnings(limits, assumptions)
    warnings += _budget_warnings(spec, cost.total_usd)
    warnings += _price_warnings(prices, cost)
    return Estimate(
        job=spec.name,
        spec_path=spec_path,
        spec_digest=spec.digest,
        region=stack.region,
        architecture=stack.architecture,
        input_objects=len(plan.objects),
        listing_seconds=plan.listing_seconds,
        input_bytes=plan.input_bytes,
        splits=len(plan.splits),
        map_tasks=len(plan.map_tasks),
        partitions=plan.partitions,
        reduce_tasks=len(plan.reduce_tasks),
        phases=stack.phases,
        resources=resource_lines(stack),
        timing=timing,
        usage=usage,
        cost=cost,
        assumptions=assumptions,
        warnings=tuple(warnings),
        pricing=PricingInfo(
            path=book.path,
            source=book.source,
            date=book.date,
            region=prices.region,
            region_source=prices.source,
            region_date=prices.date,
            unconfirmed=prices.unconfirmed,
        ),
        sample_bytes=sample_bytes,
        predictions=predictions,
        limits=limits,
        budget_usd=spec.limits.budget_usd,
        params=dict(spec.params),
        kept_failed=kept_failed(plan, assumptions, prices.s3_storage_gb_month),
    )


# Failed checks the warnings of check_limits already state in their own words.
_WARNED_BY_CHECK_LIMITS = frozenset(
    f"{phase} {what}" for phase in ("map", "reduce")
    for what in ("task time", "EXPRESS child duration", "Distributed Map concurrency")
) | {"map task payload", "account Lambda concurrency", "Lambda 15-minute limit (map)",
     "Lambda 15-minute limit (reduce)"}


def _limit_warnings(limits: tuple[LimitCheck, ...], a: Assumptions) -> list[str]:
    out = []
    for check in limits:
        if check.ok or check.name in _WARNED_BY_CHECK_LIMITS:
            continue
        phase = check.name.split(" ", 1)[0]
        if check.name.endswith("task memory") and phase in ("map", "reduce") and a[
            f"{phase}_peak_memory_mb"
        ]:
            continue  # the sample's measured peak is warned about already
        out.append(f"{check.message()} (apply refuses this run)")
    return out


def _budget_warnings(spec: JobSpec, total: float) -> list[str]:
    from mrspec.cost.render import usd

    budget = spec.limits.budget_usd
    if budget is None or total <= budget:
        return []
    return [
        f"the estimate {usd(total)} exceeds limits.budget_usd {usd(budget)}: apply refuses "
        "this run; raise the budget or make the job cheaper"
    ]


def _price_warnings(prices: RegionPrices, cost: CostBreakdown) -> list[str]:
    if not prices.unconfirmed:
        return []
    return [
        f"prices marked unconfirmed in the price data for {prices.region}: "
        f"{', '.join(prices.unconfirmed)}; check them or refresh with --refresh-pricing"
    ]


def check_limits(
    spec: JobSpec, plan: JobPlan, stack: StackModel, timing: Timing, a: Assumptions
) -> list[str]:
    """Warnings: timeouts, memory, start-up-dominated bins, payloads, concurrency."""
    out: list[str] = []
    if not all(is_s3_uri(p) for p in spec.input.prefixes):
        out.append(
            "the input is local: the AWS estimate assumes the same objects in S3 "
            "(upload them before `mrspec apply`)"
        )
    phase_timings = []
    for i, step in enumerate(timing.steps()):  # each step's map and reduce ("steps[1].map")
        phase_timings.append((i, "map", step.map))
        if step.reduce is not None:
            phase_timings.append((i, "reduce", step.reduce))
    for i, kind, pt in phase_timings:
        name = pt.name
        phase = phase_of(stack, name)
        assert phase is not None
        fn = stack.function(phase.function)
        if pt.longest_task_s > fn.timeout_s:
            out.append(
                f"a {name} task would run about {pt.longest_task_s:.0f} s, past its timeout of "
                f"{fn.timeout_s} s: "
                + (f"{spec.smaller_map_input(i)} or raise {spec.setting(i, 'map.memory')}"
                   if kind == "map" else f"raise {spec.setting(i, 'reduce.partitions')} or "
                   f"{spec.setting(i, 'reduce.memory')}")
            )
        elif pt.longest_task_s > NEAR * fn.timeout_s:
            out.append(
                f"a {name} task would run about {pt.longest_task_s:.0f} s, near its timeout "
                f"of {fn.timeout_s} s"
            )
        if fn.timeout_s > MAX_LAMBDA_TIMEOUT_S:
            out.append(f"the {name} timeout {fn.timeout_s} s passes Lambda's 900 s limit")
        if phase.execution_type == "EXPRESS" and pt.longest_task_s > MAX_EXPRESS_S:
            out.append(
                f"{name} children are EXPRESS workflows (at most 300 s) but a task would run "
                f"about {pt.longest_task_s:.0f} s"
            )
        peak = a[f"{kind}_peak_memory_mb"]
        if peak and peak > NEAR * fn.memory_mb:
            out.append(
                f"{name} tasks peaked at {peak:.0f} MB in the sample, "
                f"{'over' if peak > fn.memory_mb else 'near'} the {fn.memory_mb} MB cap"
            )
        if phase.max_concurrency > MAX_DISTRIBUTED_MAP_CONCURRENCY:
            out.append(
                f"{name} MaxConcurrency {phase.max_concurrency} passes the Distributed Map "
                f"limit of {MAX_DISTRIBUTED_MAP_CONCURRENCY}"
            )
        if phase.max_concurrency > a["account_lambda_concurrency"] and pt.tasks > a[
            "account_lambda_concurrency"
        ]:
            out.append(
                f"{name} MaxConcurrency {phase.max_concurrency} is above the account's Lambda "
                f"concurrency ({a['account_lambda_concurrency']:.0f}, assumed): Lambda will "
                "throttle; the estimate uses the account limit"
            )
    work = [s - a["task_overhead_s"] for s in timing.map.task_seconds]
    startup = a["task_overhead_s"] + a["child_start_s"]
    if len(work) > 1 and sum(work) / len(work) < startup:
        out.append(
            f"map tasks are so small that start-up dominates (about {sum(work) / len(work):.2f} s "
            f"of work against {startup:.2f} s of start-up each): raise {spec.setting(0, 'map.bin_size')}"
        )
    # an item too big to inline is a reference to its manifest shard (plan.items)
    largest_item = max((item_bytes(t) for t in plan.map_tasks), default=0)
    if largest_item > NEAR * MAX_STATE_PAYLOAD:
        out.append(
            f"the largest map task item is {largest_item} bytes, "
            f"{'over' if largest_item > MAX_STATE_PAYLOAD else 'near'} Step Functions' "
            f"256 KiB payload limit: raise input.split_size or lower {spec.setting(0, 'map.bin_size')}"
        )
    return out
