"""Price data: one JSON file inside the package (``pricing.json``), region-keyed, each
region with its source and date, plus the free tiers listed apart.

``load_pricing(path=None)`` reads the packaged file or a user's override
(``mrspec plan --pricing FILE``), validates it against :data:`PRICING_SCHEMA` with
jsonschema and returns a :class:`PriceBook`; ``PriceBook.region(name)`` gives the
:class:`RegionPrices` the cost model uses. Every problem is a :class:`MrspecError` naming
the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mrspec.errors import MrspecError

ARCHITECTURES = ("x86_64", "arm64")

_PRICE = {"type": "number", "minimum": 0}
_TIERS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["up_to", "price"],
        "additionalProperties": False,
        "properties": {"up_to": {"type": ["number", "null"], "exclusiveMinimum": 0}, "price": _PRICE},
    },
}
_REGION = {
    "type": "object",
    "required": ["source", "date", "lambda", "stepfunctions", "s3", "logs"],
    "additionalProperties": False,
    "properties": {
        "source": {"type": "string", "minLength": 1},
        "date": {"type": "string", "minLength": 4},
        "unconfirmed": {"type": "array", "items": {"type": "string"}},
        "lambda": {
            "type": "object",
            "required": ["requests_per_million", "duration_per_gb_s", "ephemeral_storage_per_gb_s"],
            "additionalProperties": False,
            "properties": {
                "requests_per_million": _PRICE,
                "duration_per_gb_s": {
                    "type": "object",
                    "required": list(ARCHITECTURES),
                    "additionalProperties": False,
                    "properties": {arch: _TIERS for arch in ARCHITECTURES},
                },
                "ephemeral_storage_per_gb_s": _PRICE,
            },
        },
        "stepfunctions": {
            "type": "object",
            "required": [
                "standard_per_1000_transitions",
                "express_requests_per_million",
                "express_duration_per_gb_s",
            ],
            "additionalProperties": False,
            "properties": {
                "standard_per_1000_transitions": _PRICE,
                "express_requests_per_million": _PRICE,
                "express_duration_per_gb_s": _TIERS,
            },
        },
        "s3": {
            "type": "object",
            "required": ["put_copy_post_list_per_1000", "get_per_1000", "storage_per_gb_month"],
            "additionalProperties": False,
            "properties": {
                "put_copy_post_list_per_1000": _PRICE,
                "get_per_1000": _PRICE,
                "storage_per_gb_month": _PRICE,
            },
        },
        "logs": {
            "type": "object",
            "required": ["ingestion_per_gb"],
            "additionalProperties": False,
            "properties": {"ingestion_per_gb": _PRICE},
        },
    },
}
_FREE_TIER_FIELDS = (
    "lambda_requests",
    "lambda_gb_s",
    "stepfunctions_standard_transitions",
    "s3_put_copy_post_list_requests",
    "s3_get_requests",
    "s3_storage_gb_month",
    "logs_ingestion_gb",
)
PRICING_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "mrspec price data",
    "type": "object",
    "required": ["schema_version", "currency", "source", "date", "regions", "free_tier"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": 1},
        "currency": {"const": "USD"},
        "source": {"type": "string", "minLength": 1},
        "date": {"type": "string", "minLength": 4},
        "gb_bytes": {"const": 1073741824},
        "regions": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+$"},
            "additionalProperties": _REGION,
        },
        "free_tier": {
            "type": "object",
            "required": list(_FREE_TIER_FIELDS),
            "properties": {
                **{name: {"type": "number", "minimum": 0} for name in _FREE_TIER_FIELDS},
                "source": {"type": "string"},
                "date": {"type": "string"},
                "note": {"type": "string"},
            },
            "additionalProperties": False,
        },
    },
}


@dataclass(frozen=True)
class Tier:
    up_to: float | None  # cumulative monthly quantity where this tier ends; None: no end
    price: float  # USD per unit


def tiered_cost(quantity: float, tiers: tuple[Tier, ...], already_used: float = 0.0) -> float:
    """Cost of ``quantity`` units on a tiered price, after ``already_used`` units this month."""
    start, end = already_used, already_used + quantity
    cost, lower = 0.0, 0.0
    for tier in tiers:
        upper = float("inf") if tier.up_to is None else tier.up_to
        overlap = min(end, upper) - max(start, lower)
        if overlap > 0:
            cost += overlap * tier.price
        lower = upper
    return cost


@dataclass(frozen=True)
class RegionPrices:
    region: str
    source: str
    date: str
    unconfirmed: tuple[str, ...]
    lambda_request: float  # per request
    lambda_gb_s: dict[str, tuple[Tier, ...]]  # architecture -> tiers (per GB-s)
    lambda_ephemeral_gb_s: float  # per GB-s above the free 512 MB
    sfn_transition: float  # per STANDARD state transition
    sfn_express_request: float  # per EXPRESS request
    sfn_express_gb_s: tuple[Tier, ...]
    s3_put: float  # per PUT/COPY/POST/LIST request
    s3_get: float  # per GET (and other) request
    s3_storage_gb_month: float
    logs_ingestion_gb: float


@dataclass(frozen=True)
class FreeTier:
    lambda_requests: float
    lambda_gb_s: float
    stepfunctions_standard_transitions: float
    s3_put_copy_post_list_requests: float
    s3_get_requests: float
    s3_storage_gb_month: float
    logs_ingestion_gb: float
    source: str = ""


@dataclass(frozen=True)
class PriceBook:
    path: str  # where the data came from ("<package>" for the bundled file)
    source: str
    date: str
    data: dict[str, Any]  # the validated document, for --refresh-pricing round trips
    free_tier: FreeTier

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(sorted(self.data["regions"]))

    def region(self, name: str) -> RegionPrices:
        regions = self.data["regions"]
        if name not in regions:
            raise MrspecError(
                f"no prices for region {name!r} in {self.path}",
                hint=f"known regions: {', '.join(self.regions)}; add the region to a copy of "
                "the price file and pass it with --pricing FILE",
            )
        return _region_prices(name, regions[name])


def _tiers(raw: list[dict[str, Any]]) -> tuple[Tier, ...]:
    return tuple(
        Tier(None if t["up_to"] is None else float(t["up_to"]), float(t["price"])) for t in raw
    )


def _region_prices(name: str, raw: dict[str, Any]) -> RegionPrices:
    lam, sfn, s3 = raw["lambda"], raw["stepfunctions"], raw["s3"]
    return RegionPrices(
        region=name,
        source=raw["source"],
        date=raw["date"],
        unconfirmed=tuple(raw.get("unconfirmed", ())),
        lambda_request=lam["requests_per_million"] / 1e6,
        lambda_gb_s={arch: _tiers(lam["duration_per_gb_s"][arch]) for arch in ARCHITECTURES},
        lambda_ephemeral_gb_s=float(lam["ephemeral_storage_per_gb_s"]),
        sfn_transition=sfn["standard_per_1000_transitions"] / 1000,
        sfn_express_request=sfn["express_requests_per_million"] / 1e6,
        sfn_express_gb_s=_tiers(sfn["express_duration_per_gb_s"]),
        s3_put=s3["put_copy_post_list_per_1000"] / 1000,
        s3_get=s3["get_per_1000"] / 1000,
        s3_storage_gb_month=float(s3["storage_per_gb_month"]),
        logs_ingestion_gb=float(raw["logs"]["ingestion_per_gb"]),
    )


def validate_pricing(data: Any, where: str) -> None:
    """Raise a MrspecError listing every schema problem of a price document."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(PRICING_SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    problems = [
        f"{where}: {'.'.join(str(p) for p in e.absolute_path) or '<document>'}: {e.message}"
        for e in errors
    ]
    if isinstance(data, dict) and not errors:
        for region, raw in data["regions"].items():
            tier_lists = [
                *(raw["lambda"]["duration_per_gb_s"][a] for a in ARCHITECTURES),
                raw["stepfunctions"]["express_duration_per_gb_s"],
            ]
            for tiers in tier_lists:
                bounds = [t["up_to"] for t in tiers]
                if bounds[-1] is not None or None in bounds[:-1] or bounds[:-1] != sorted(
                    bounds[:-1]
                ):
                    problems.append(
                        f"{where}: regions.{region}: tiers must rise and only the last may "
                        "have up_to null"
                    )
    if problems:
        raise MrspecError(
            "invalid price data:\n  " + "\n  ".join(problems),
            hint="compare with the bundled mrspec/cost/pricing.json; docs/plan.md describes "
            "every field",
        )


def load_pricing(path: str | Path | None = None) -> PriceBook:
    """The bundled price data, or the file at ``path`` (validated)."""
    if path is None:
        where = "bundled mrspec/cost/pricing.json"
        text = resources.files("mrspec.cost").joinpath("pricing.json").read_text("utf-8")
    else:
        where = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise MrspecError(
                f"cannot read price file {where}: {exc.strerror or exc}",
                hint="pass an existing JSON file to --pricing",
            ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MrspecError(
            f"{where}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}",
            hint="the price file is JSON; see the bundled mrspec/cost/pricing.json",
        ) from exc
    return price_book_from_data(data, where)


def price_book_from_data(data: Any, where: str) -> PriceBook:
    validate_pricing(data, where)
    free = data["free_tier"]
    return PriceBook(
        path=where,
        source=data["source"],
        date=data["date"],
        data=data,
        free_tier=FreeTier(
            **{name: float(free[name]) for name in _FREE_TIER_FIELDS},
            source=str(free.get("source", "")),
        ),
    )
