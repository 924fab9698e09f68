"""Refresh prices from the AWS Price List Query API (``mrspec plan --refresh-pricing``).

``refresh_prices(book, regions)`` asks ``pricing.get_products`` (served from us-east-1)
for the Lambda, Step Functions, S3 and CloudWatch products of each region, maps their
usage types onto the fields of the price file and returns an updated, validated
document plus notes on what was and was not found. Fields the API did not return keep
their old value and are named in the notes. Needs AWS credentials; without them the
error says so before any request.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mrspec.cost.pricing import PriceBook, price_book_from_data
from mrspec.errors import MrspecError

PRICING_API_REGION = "us-east-1"
_REGION_PREFIX = re.compile(r"^(?:[A-Z]{2,4}\d*-)?(?P<rest>.+)$")

Setter = Callable[[dict[str, Any], list[tuple[float, float | None, float]]], None]


def _first(dims: list[tuple[float, float | None, float]]) -> float:
    return sorted(dims, key=lambda d: d[0])[0][2]


def _tiers(dims: list[tuple[float, float | None, float]]) -> list[dict[str, Any]]:
    return [{"up_to": end, "price": price} for _, end, price in sorted(dims, key=lambda d: d[0])]


def _set(path: tuple[str, ...], convert: Callable[[list[tuple[float, float | None, float]]], Any]) -> Setter:
    def setter(region: dict[str, Any], dims: list[tuple[float, float | None, float]]) -> None:
        target = region
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = convert(dims)

    return setter


# service code -> usage type (without its region prefix) -> (price-file field, setter)
USAGE_TYPES: dict[str, dict[str, tuple[str, Setter]]] = {
    "AWSLambda": {
        "Request": ("lambda.requests_per_million",
                    _set(("lambda", "requests_per_million"), lambda d: round(_first(d) * 1e6, 10))),
        "Lambda-GB-Second": ("lambda.duration_per_gb_s.x86_64",
                             _set(("lambda", "duration_per_gb_s", "x86_64"), _tiers)),
        "Lambda-GB-Second-ARM": ("lambda.duration_per_gb_s.arm64",
                                 _set(("lambda", "duration_per_gb_s", "arm64"), _tiers)),
        "Lambda-Storage-Gb-Second": ("lambda.ephemeral_storage_per_gb_s",
                                     _set(("lambda", "ephemeral_storage_per_gb_s"), _first)),
    },
    "AmazonStates": {
        "StateTransition": ("stepfunctions.standard_per_1000_transitions",
                            _set(("stepfunctions", "standard_per_1000_transitions"),
                                 lambda d: round(_first(d) * 1000, 10))),
        "StepFunctions-Request": ("stepfunctions.express_requests_per_million",
                                  _set(("stepfunctions", "express_requests_per_million"),
                                       lambda d: round(_first(d) * 1e6, 10))),
        "StepFunctions-GB-Second": ("stepfunctions.express_duration_per_gb_s",
                                    _set(("stepfunctions", "express_duration_per_gb_s"), _tiers)),
    },
    "AmazonS3": {
        "Requests-Tier1": ("s3.put_copy_post_list_per_1000",
                           _set(("s3", "put_copy_post_list_per_1000"),
                                lambda d: round(_first(d) * 1000, 10))),
        "Requests-Tier2": ("s3.get_per_1000",
                           _set(("s3", "get_per_1000"), lambda d: round(_first(d) * 1000, 10))),
        "TimedStorage-ByteHrs": ("s3.storage_per_gb_month",
                                 _set(("s3", "storage_per_gb_month"), _first)),
    },
    "AmazonCloudWatch": {
        "DataProcessing-Bytes": ("logs.ingestion_per_gb", _set(("logs", "ingestion_per_gb"), _first)),
    },
}


def _products(client: Any, service: str, region: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {
        "ServiceCode": service,
        "Filters": [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}],
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    while True:
        page = client.get_products(**kwargs)
        for item in page.get("PriceList", []):
            yield json.loads(item) if isinstance(item, str) else item
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def _dimensions(product: dict[str, Any]) -> list[tuple[float, float | None, float]]:
    dims = []
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dim in term.get("priceDimensions", {}).values():
            end = dim.get("endRange", "Inf")
            dims.append((
                float(dim.get("beginRange", 0)),
                None if end in ("Inf", "", None) else float(end),
                float(dim["pricePerUnit"]["USD"]),
            ))
    return dims


def make_client() -> Any:
    """A Price List client, or a clear error when no AWS credentials are configured."""
    import boto3

    session = boto3.Session()
    if session.get_credentials() is None:
        raise MrspecError(
            "--refresh-pricing needs AWS credentials to call the AWS Price List API",
            hint="configure credentials (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY), or use the bundled prices or --pricing FILE",
        )
    return session.client("pricing", region_name=PRICING_API_REGION)


def refresh_prices(
    book: PriceBook, regions: Sequence[str], client: Any | None = None, today: str | None = None
) -> tuple[PriceBook, list[str]]:
    """An updated price book for ``regions`` and notes on what was refreshed."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = client if client is not None else make_client()
    data = copy.deepcopy(book.data)
    date = today or dt.date.today().isoformat()
    notes: list[str] = []
    for region in regions:
        if region not in data["regions"]:
            raise MrspecError(
                f"--refresh-pricing: region {region!r} is not in the price data",
                hint="add it to a copy of the price file first (the API fills in the values)",
            )
        entry = data["regions"][region]
        found: set[str] = set()
        for service, usage_types in USAGE_TYPES.items():
            try:
                for product in _products(client, service, region):
                    usage = product.get("product", {}).get("attributes", {}).get("usagetype", "")
                    match = _REGION_PREFIX.match(usage)
                    rest = match.group("rest") if match else usage
                    if rest in usage_types and rest not in found:
                        dims = _dimensions(product)
                        if dims:
                            _field, setter = usage_types[rest]
                            setter(entry, dims)
                            found.add(rest)
            except (BotoCoreError, ClientError) as exc:
                raise MrspecError(
                    f"--refresh-pricing: the AWS Price List API failed for {service} in "
                    f"{region}: {exc}",
                    hint="check the credentials' pricing:GetProducts permission",
                ) from exc
        refreshed = [f for types in USAGE_TYPES.values() for t, (f, _) in types.items() if t in found]
        missing = [f for types in USAGE_TYPES.values() for t, (f, _) in types.items()
                   if t not in found]
        entry["unconfirmed"] = [f for f in entry.get("unconfirmed", []) if f not in refreshed]
        if refreshed:
            entry["source"] = "AWS Price List Query API (pricing:GetProducts)"
            entry["date"] = date
        notes.append(f"{region}: refreshed {len(refreshed)} price(s)")
        if missing:
            notes.append(f"{region}: not returned by the API, kept: {', '.join(missing)}")
    data["date"] = date
    return price_book_from_data(data, f"{book.path} (refreshed {date})"), notes
