"""The actual cost of a finished run, priced with the same data as the estimate.

The apply driver gathers what AWS measured (each invocation's duration and INIT from the
functions' REPORT log lines, the state transitions of the stack's phases; see
``mrspec.aws.readback.actual_cost``) into a :class:`RunMeasurements`; :func:`actual_cost`
turns it into the same :class:`~mrspec.cost.usage.CostBreakdown` the estimate has, so the
run summary can put the two side by side. S3 request kinds are the labels of
``mrspec.cost.usage.S3_REQUESTS``.

The task results are not a source: the commit deletes them with the work prefix before
the driver prices the run, and they carry no request counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mrspec.cost.model import EXPRESS_DURATION_STEP_MS, EXPRESS_MEMORY_STEP_MB
from mrspec.cost.pricing import PriceBook
from mrspec.cost.usage import CostBreakdown, LambdaUsage, S3Requests, Usage, price_usage

if TYPE_CHECKING:
    from mrspec.aws.model import StackModel


@dataclass(frozen=True)
class RunMeasurements:
    # logical function name -> each invocation's duration in ms (retries included)
    invocation_ms: Mapping[str, Sequence[float]]
    # logical function name -> each INIT phase's duration in ms (cold starts)
    init_ms: Mapping[str, Sequence[float]] = field(default_factory=dict)
    # S3 requests by kind: (tier "put" | "get", count)
    s3_requests: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    sfn_transitions: int = 0  # STANDARD: parent + STANDARD children
    express_child_ms: Sequence[float] = ()  # each EXPRESS child's duration
    express_child_memory_mb: float = 64
    shuffle_byte_seconds: float = 0.0  # bytes held in S3 x seconds held
    log_bytes: float = 0.0
    hours_per_month: float = 730


def actual_usage(m: RunMeasurements, stack: StackModel) -> Usage:
    lambdas = []
    for fn in stack.functions:
        runs = m.invocation_ms.get(fn.logical_name, ())
        inits = m.init_ms.get(fn.logical_name, ())
        if not runs and not inits:
            continue
        lambdas.append(
            LambdaUsage(
                function=fn.logical_name,
                architecture=fn.architecture,
                memory_mb=fn.memory_mb,
                ephemeral_storage_mb=fn.ephemeral_storage_mb,
                requests=len(runs),
                billed_ms=sum(math.ceil(ms) for ms in (*runs, *inits)),
            )
        )
    memory = max(
        EXPRESS_MEMORY_STEP_MB,
        math.ceil(m.express_child_memory_mb / EXPRESS_MEMORY_STEP_MB) * EXPRESS_MEMORY_STEP_MB,
    )
    step = EXPRESS_DURATION_STEP_MS
    express_ms = sum(math.ceil(ms / step) * step for ms in m.express_child_ms)
    tiers = {"put", "get"}
    requests = []
    for kind, (tier, count) in m.s3_requests.items():
        if tier not in tiers:
            raise ValueError(f"S3 request tier must be 'put' or 'get', not {tier!r}")
        requests.append(S3Requests(kind, "put" if tier == "put" else "get", count))
    return Usage(
        lambdas=tuple(lambdas),
        sfn_transitions=m.sfn_transitions,
        sfn_express_requests=len(m.express_child_ms),
        sfn_express_gb_s=express_ms / 1000 * memory / 1024,
        s3_requests=tuple(requests),
        s3_storage_gb_month=m.shuffle_byte_seconds / 1024**3 / 3600 / m.hours_per_month,
        log_bytes=m.log_bytes,
    )


def actual_cost(
    m: RunMeasurements, stack: StackModel, book: PriceBook, monthly_gb_s_before: float = 0.0
) -> CostBreakdown:
    """The run's cost from measurements, with the estimate's price data and rules."""
    return price_usage(
        actual_usage(m, stack), book.region(stack.region), book.free_tier, monthly_gb_s_before
    )
