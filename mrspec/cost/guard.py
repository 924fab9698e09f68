"""The budget guard: ``apply`` (AWS runs; local runs excepted) calls :func:`check_budget`
before it deploys anything, and refuses to start a run whose estimate passes
``limits.budget_usd``."""

from __future__ import annotations

from mrspec.cost.estimate import Estimate
from mrspec.cost.render import usd
from mrspec.errors import RefusedError
from mrspec.spec.model import JobSpec


def check_budget(spec: JobSpec, estimate: Estimate) -> None:
    """Raise ``RefusedError`` (exit code 3) when the estimate exceeds the spec's budget.

    No budget in the spec (``limits.budget_usd`` unset) means no limit. The message says
    by how much, in dollars and percent, and how to proceed.
    """
    budget = spec.limits.budget_usd
    total = estimate.cost.total_usd
    if budget is None or total <= budget:
        return
    over = total - budget
    share = f" ({over / budget:.0%} over)" if budget > 0 else ""
    raise RefusedError(
        f"job {spec.name!r}: the estimated cost {usd(total)} exceeds limits.budget_usd "
        f"{usd(budget)} by {usd(over)}{share}",
        hint="run `mrspec plan` to see where the cost comes from; raise limits.budget_usd "
        "in the spec, or make the job cheaper (memory, bin_size, partitions)",
    )
