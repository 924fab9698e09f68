"""Cost and time of a job on AWS: price data, the model, calibration, rendering.

    spec --plan_job--> JobPlan --lower--> StackModel
         + assumptions (defaults, --sample measurements, --assume overrides)
         + price data (bundled pricing.json, --pricing FILE, --refresh-pricing)
         --estimate--> Estimate (work, resources, cost lines, free tier, time, warnings)

Public API for other parts of mrspec:

- :func:`estimate_for_spec` -- the estimate ``mrspec plan`` prints, for ``apply``;
- :func:`mrspec.cost.guard.check_budget` -- refuse a run over ``limits.budget_usd``;
- :func:`mrspec.cost.actual.actual_cost` -- price a finished run's measurements.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mrspec.cost.estimate import Estimate
    from mrspec.cost.pricing import PriceBook
    from mrspec.plan.model import JobPlan
    from mrspec.spec.model import JobSpec


def estimate_for_spec(
    spec: JobSpec,
    plan: JobPlan | None = None,
    *,
    book: PriceBook | None = None,
    overrides: Mapping[str, float] | None = None,
    sample_size: int = 0,
    sample_spread: bool = False,
    spec_path: str = "",
) -> Estimate:
    """Plan (unless given), lower, optionally calibrate, and estimate ``spec``."""
    from mrspec.cost.assumptions import default_assumptions
    from mrspec.cost.estimate import estimate
    from mrspec.cost.pricing import load_pricing
    from mrspec.cost.stack import review_model
    from mrspec.plan.planner import plan_job

    plan = plan if plan is not None else plan_job(spec)
    book = book if book is not None else load_pricing()
    model = review_model(spec, plan)
    book.region(model.region)  # an unknown region fails before any sampling
    assumptions = default_assumptions()
    sample_bytes = 0
    if sample_size:
        from mrspec.cost.calibrate import calibrate

        calibration = calibrate(spec, plan, sample_size, sample_spread)
        assumptions = assumptions.with_values(calibration.assumption_values(), "measured")
        sample_bytes = calibration.sample_bytes
    if overrides:
        assumptions = assumptions.with_values(overrides, "override")
    return estimate(
        spec, plan, model, book, assumptions, spec_path=spec_path, sample_bytes=sample_bytes
    )


__all__ = ["estimate_for_spec"]
