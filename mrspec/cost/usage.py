"""Billable usage of one run, as quantities (no prices), and its pricing.

The estimate (``mrspec.cost.model``) and the actual cost after a run
(``mrspec.cost.actual``) both produce a :class:`Usage`; :func:`price_usage` turns either
into cost lines with the same price data, so the two figures are comparable.
Free tiers are priced as separate lines, never subtracted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mrspec.cost.pricing import FreeTier, RegionPrices, tiered_cost

GIB = 1024**3
S3Tier = Literal["put", "get"]


@dataclass(frozen=True)
class LambdaUsage:
    function: str  # logical name: "map" | "reduce" | "commit"
    architecture: str
    memory_mb: int
    ephemeral_storage_mb: int
    requests: float
    billed_ms: float  # total billed duration, INIT included, each invocation rounded to 1 ms

    @property
    def gb_s(self) -> float:
        return self.billed_ms / 1000 * self.memory_mb / 1024

    @property
    def ephemeral_gb_s(self) -> float:
        extra_mb = max(0, self.ephemeral_storage_mb - 512)
        return self.billed_ms / 1000 * extra_mb / 1024


# The one table of S3 request kinds: each label (as the cost lines print it) and its price
# tier. The estimate (mrspec.cost.model) and the actual cost (mrspec.cost.actual) use it.
INPUT_LIST = "input LIST (planning)"
MANIFEST_PUT = "task manifest PUT"
SHUFFLE_PUT = "shuffle PUT (one object per map task)"
MERGE_PUT = "merged object PUT (merge tasks)"
OUTPUT_PUT = "output PUT"
RESULT_PUT = "task result PUT"
RESULT_WRITER_PUT = "ResultWriter PUT"
SUCCESS_PUT = "commit manifest PUT (_SUCCESS)"
FAILURE_LIST = "failure records LIST (commit)"
OUTPUT_LIST = "output LIST (preflight, commit check)"
CLEANUP_LIST = "cleanup LIST"
INPUT_GET = "input GET (ranged, + read-ahead)"
MANIFEST_GET = "task manifest GET (ItemReader)"
MERGE_GET = "exchange GET (merge tasks: heads and windows)"
SHUFFLE_GET = "segment GET (reduce tasks)"
MAP_RESULT_GET = "exchange head GET (reduce tasks)"
COMMIT_RESULT_GET = "task result GET (commit)"

S3_REQUESTS: dict[str, S3Tier] = {
    INPUT_LIST: "put",
    MANIFEST_PUT: "put",
    SHUFFLE_PUT: "put",
    MERGE_PUT: "put",
    OUTPUT_PUT: "put",
    RESULT_PUT: "put",
    RESULT_WRITER_PUT: "put",
    SUCCESS_PUT: "put",
    FAILURE_LIST: "put",
    OUTPUT_LIST: "put",
    CLEANUP_LIST: "put",
    INPUT_GET: "get",
    MANIFEST_GET: "get",
    MERGE_GET: "get",
    SHUFFLE_GET: "get",
    MAP_RESULT_GET: "get",
    COMMIT_RESULT_GET: "get",
}


@dataclass(frozen=True)
class S3Requests:
    kind: str  # a label of S3_REQUESTS
    tier: S3Tier  # "put": PUT/COPY/POST/LIST prices; "get": GET and other
    count: float
    optional: bool = False  # a line left out of the cost when its count is 0 (merge phases)


def s3_request(kind: str, count: float, optional: bool = False) -> S3Requests:
    """``count`` requests of ``kind``, at the tier the table gives it."""
    return S3Requests(kind, S3_REQUESTS[kind], count, optional)


@dataclass(frozen=True)
class Usage:
    lambdas: tuple[LambdaUsage, ...]
    sfn_transitions: float  # STANDARD state transitions (parent and STANDARD children)
    sfn_express_requests: float
    sfn_express_gb_s: float  # memory rounded up to 64 MB, duration to 100 ms
    s3_requests: tuple[S3Requests, ...]
    s3_storage_gb_month: float
    log_bytes: float

    def s3_count(self, tier: S3Tier) -> float:
        return sum(r.count for r in self.s3_requests if r.tier == tier)


@dataclass(frozen=True)
class CostLine:
    service: str  # "Lambda" | "Step Functions" | "S3" | "CloudWatch Logs"
    item: str
    quantity: float
    unit: str
    usd: float

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "item": self.item,
            "quantity": round(float(self.quantity), 6),
            "unit": self.unit,
            "usd": round(float(self.usd), 6),
        }


@dataclass(frozen=True)
class CostBreakdown:
    lines: tuple[CostLine, ...]
    free_tier: tuple[CostLine, ...]  # what the monthly free tier could cover, if unused

    @property
    def total_usd(self) -> float:
        return sum(line.usd for line in self.lines)

    @property
    def free_tier_usd(self) -> float:
        return sum(line.usd for line in self.free_tier)

    def by_service(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in self.lines:
            out[line.service] = out.get(line.service, 0.0) + line.usd
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "currency": "USD",
            "total_usd": round(self.total_usd, 6),
            "by_service": {k: round(v, 6) for k, v in self.by_service().items()},
            "lines": [line.to_json() for line in self.lines],
        }

    def free_tier_json(self) -> dict[str, Any]:
        return {
            "note": "monthly allowances shared by the whole account; not subtracted from the total",
            "could_cover_usd": round(self.free_tier_usd, 6),
            "lines": [line.to_json() for line in self.free_tier],
        }


def price_usage(
    usage: Usage, prices: RegionPrices, free: FreeTier, monthly_gb_s_before: float = 0.0
) -> CostBreakdown:
    """Cost lines for ``usage`` in one region; Lambda duration tiers per architecture."""
    lines: list[CostLine] = []
    for fn in usage.lambdas:
        lines.append(
            CostLine("Lambda", f"{fn.function} requests", fn.requests, "requests",
                     fn.requests * prices.lambda_request)
        )
    used_by_arch: dict[str, float] = {}
    for fn in usage.lambdas:
        before = monthly_gb_s_before + used_by_arch.get(fn.architecture, 0.0)
        usd = tiered_cost(fn.gb_s, prices.lambda_gb_s[fn.architecture], before)
        used_by_arch[fn.architecture] = used_by_arch.get(fn.architecture, 0.0) + fn.gb_s
        lines.append(
            CostLine("Lambda", f"{fn.function} duration ({fn.memory_mb} MB, {fn.architecture})",
                     fn.gb_s, "GB-s", usd)
        )
        if fn.ephemeral_gb_s > 0:
            lines.append(
                CostLine("Lambda", f"{fn.function} ephemeral storage above 512 MB",
                         fn.ephemeral_gb_s, "GB-s", fn.ephemeral_gb_s * prices.lambda_ephemeral_gb_s)
            )
    if usage.sfn_transitions:
        lines.append(
            CostLine("Step Functions", "STANDARD state transitions", usage.sfn_transitions,
                     "transitions", usage.sfn_transitions * prices.sfn_transition)
        )
    if usage.sfn_express_requests:
        lines.append(
            CostLine("Step Functions", "EXPRESS child requests", usage.sfn_express_requests,
                     "requests", usage.sfn_express_requests * prices.sfn_express_request)
        )
        lines.append(
            CostLine("Step Functions", "EXPRESS child duration", usage.sfn_express_gb_s, "GB-s",
                     tiered_cost(usage.sfn_express_gb_s, prices.sfn_express_gb_s))
        )
    for req in usage.s3_requests:
        price = prices.s3_put if req.tier == "put" else prices.s3_get
        lines.append(CostLine("S3", req.kind, req.count, "requests", req.count * price))
    lines.append(
        CostLine("S3", "shuffle storage (prorated)", usage.s3_storage_gb_month, "GB-month",
                 usage.s3_storage_gb_month * prices.s3_storage_gb_month)
    )
    log_gb = usage.log_bytes / GIB
    lines.append(
        CostLine("CloudWatch Logs", "log ingestion", log_gb, "GB", log_gb * prices.logs_ingestion_gb)
    )
    return CostBreakdown(tuple(lines), _free_tier_lines(usage, prices, free))


def _free_tier_lines(usage: Usage, prices: RegionPrices, free: FreeTier) -> tuple[CostLine, ...]:
    requests = sum(fn.requests for fn in usage.lambdas)
    lines: list[CostLine] = []
    covered = min(requests, free.lambda_requests)
    lines.append(CostLine("Lambda", "free requests (1M/month)", covered, "requests",
                          covered * prices.lambda_request))
    # The free GB-s are priced at each architecture's first tier, in function order.
    left = free.lambda_gb_s
    for fn in usage.lambdas:
        take = min(fn.gb_s, left)
        left -= take
        if take > 0:
            lines.append(CostLine("Lambda", f"free duration: {fn.function}", take, "GB-s",
                                  take * prices.lambda_gb_s[fn.architecture][0].price))
    covered = min(usage.sfn_transitions, free.stepfunctions_standard_transitions)
    lines.append(CostLine("Step Functions", "free state transitions", covered, "transitions",
                          covered * prices.sfn_transition))
    covered = min(usage.s3_count("put"), free.s3_put_copy_post_list_requests)
    lines.append(CostLine("S3", "free PUT/COPY/POST/LIST requests", covered, "requests",
                          covered * prices.s3_put))
    covered = min(usage.s3_count("get"), free.s3_get_requests)
    lines.append(CostLine("S3", "free GET requests", covered, "requests", covered * prices.s3_get))
    covered = min(usage.s3_storage_gb_month, free.s3_storage_gb_month)
    lines.append(CostLine("S3", "free storage", covered, "GB-month",
                          covered * prices.s3_storage_gb_month))
    covered = min(usage.log_bytes / GIB, free.logs_ingestion_gb)
    lines.append(CostLine("CloudWatch Logs", "free ingestion", covered, "GB",
                          covered * prices.logs_ingestion_gb))
    return tuple(lines)
