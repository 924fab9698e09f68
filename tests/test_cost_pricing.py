"""Price data (bundled file, --pricing overrides, refresh from the Price List API through
botocore's Stubber), the budget guard and the actual cost of a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mrspec.cost.actual import RunMeasurements, actual_cost
from mrspec.cost.guard import check_budget
from mrspec.cost.pricing import Tier, load_pricing, tiered_cost
from mrspec.cost.refresh import make_client, refresh_prices
from mrspec.cost.stack import review_model
from mrspec.errors import ExitCode, MrspecError, RefusedError
from tests.test_cost_model import fixture_x86, make_spec, run

REQUIRED_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1")


def test_bundled_prices_cover_the_required_regions_with_sources() -> None:
    book = load_pricing()
    for region in REQUIRED_REGIONS:
        prices = book.region(region)
        assert prices.source and prices.date
        assert prices.lambda_request == pytest.approx(0.20 / 1e6)
        assert len(prices.lambda_gb_s["arm64"]) == 3 and len(prices.lambda_gb_s["x86_64"]) == 3
    east = book.region("us-east-1")
    assert east.unconfirmed == ()
    assert east.s3_put == pytest.approx(0.005 / 1000) and east.s3_get == pytest.approx(0.0004 / 1000)
    assert book.free_tier.lambda_gb_s == 400_000 and book.free_tier.lambda_requests == 1_000_000


def test_unknown_region_is_a_clear_error() -> None:
    with pytest.raises(MrspecError, match="no prices for region 'mars-north-1'") as info:
        load_pricing().region("mars-north-1")
    assert "--pricing FILE" in (info.value.hint or "")


def test_tiers_apply_across_boundaries() -> None:
    tiers = (Tier(10, 1.0), Tier(30, 0.5), Tier(None, 0.25))
    assert tiered_cost(5, tiers) == 5
    assert tiered_cost(40, tiers) == 10 * 1.0 + 20 * 0.5 + 10 * 0.25
    assert tiered_cost(10, tiers, already_used=25) == 5 * 0.5 + 5 * 0.25


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_pricing_override_file_is_used(tmp_path: Path) -> None:
    data = load_pricing().data
    data["regions"]["us-east-1"]["s3"]["get_per_1000"] = 1.0
    book = load_pricing(_write(tmp_path, data))
    assert book.region("us-east-1").s3_get == pytest.approx(0.001)
    assert book.path.endswith("prices.json")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["regions"]["us-east-1"]["lambda"].pop("requests_per_million"),
         "regions.us-east-1.lambda: 'requests_per_million' is a required property"),
        (lambda d: d["regions"]["us-east-1"]["s3"].update(get_per_1000=-1),
         "regions.us-east-1.s3.get_per_1000: -1 is less than the minimum of 0"),
        (lambda d: d["regions"]["us-east-1"]["lambda"]["duration_per_gb_s"]["arm64"].reverse(),
         "tiers must rise"),
        (lambda d: d.update(currency="EUR"), "currency: 'USD' was expected"),
    ],
)
def test_invalid_price_files_are_reported_with_the_field(
    tmp_path: Path, mutate: Any, message: str
) -> None:
    data = load_pricing().data
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(MrspecError) as info:
        load_pricing(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_broken_json_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MrspecError, match=r"prices.json:1:8: not valid JSON"):
        load_pricing(_write(tmp_path, '{ "x": }'))
    with pytest.raises(MrspecError, match="cannot read price file"):
        load_pricing(tmp_path / "missing.json")


# ------------------------------------------------------------------- price refresh


def _product(usage: str, dims: list[tuple[str, str, str]]) -> str:
    return json.dumps({
        "product": {"attributes": {"usagetype": usage}},
        "terms": {"OnDemand": {"T1": {"priceDimensions": {
            f"D{i}": {"beginRange": b, "endRange": e, "pricePerUnit": {"USD": p}}
            for i, (b, e, p) in enumerate(dims)
        }}}},
    })


def _params(service: str, region: str, token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ServiceCode": service,
        "Filters": [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}],
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    if token:
        out["NextToken"] = token
    return out


def test_refresh_from_the_price_list_api_with_stubber() -> None:
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="y")
    region = "eu-central-1"
    with Stubber(client) as stub:
        # Lambda: two pages; the second carries the ARM tiers and a region prefix.
        stub.add_response("get_products", {
            "PriceList": [_product("EUC1-Request", [("0", "Inf", "0.0000002500")]),
                          _product("EUC1-Lambda-GB-Second", [
                              ("0", "6000000000", "0.0000170000"),
                              ("6000000000", "15000000000", "0.0000160000"),
                              ("15000000000", "Inf", "0.0000140000")])],
            "NextToken": "page2", "FormatVersion": "aws_v1"}, _params("AWSLambda", region))
        stub.add_response("get_products", {
            "PriceList": [_product("EUC1-Lambda-GB-Second-ARM", [
                ("0", "7500000000", "0.0000140000"),
                ("7500000000", "Inf", "0.0000120000")]),
                _product("EUC1-Lambda-Provisioned-GB-Second", [("0", "Inf", "9")])],
            "FormatVersion": "aws_v1"}, _params("AWSLambda", region, "page2"))
        stub.add_response("get_products", {
            "PriceList": [_product("EUC1-StateTransition", [("0", "Inf", "0.0000300000")])],
            "FormatVersion": "aws_v1"}, _params("AmazonStates", region))
        stub.add_response("get_products", {
            "PriceList": [_product("EUC1-Requests-Tier1", [("0", "Inf", "0.0000054000")]),
                          _product("EUC1-TimedStorage-ByteHrs", [
                              ("0", "51200", "0.0245000000"), ("51200", "Inf", "0.02")])],
            "FormatVersion": "aws_v1"}, _params("AmazonS3", region))
        stub.add_response("get_products", {"PriceList": [], "FormatVersion": "aws_v1"},
                          _params("AmazonCloudWatch", region))
        book, notes = refresh_prices(load_pricing(), [region], client=client, today="2026-11-23")
        stub.assert_no_pending_responses()
    prices = book.region(region)
    assert prices.lambda_request == pytest.approx(0.25 / 1e6)
    assert prices.lambda_gb_s["x86_64"][0] == Tier(6e9, 0.000017)
    assert prices.lambda_gb_s["arm64"] == (Tier(7.5e9, 0.000014), Tier(None, 0.000012))
    assert prices.sfn_transition == pytest.approx(0.00003)
    assert prices.s3_put == pytest.approx(0.0054 / 1000)
    assert prices.s3_storage_gb_month == pytest.approx(0.0245)
    assert prices.date == "2026-11-23" and "Price List" in prices.source
    # Refreshed fields are no longer marked unconfirmed; missing ones are reported.
    assert "stepfunctions.standard_per_1000_transitions" not in prices.unconfirmed
    assert "logs.ingestion_per_gb" in prices.unconfirmed
    assert any("logs.ingestion_per_gb" in n and "kept" in n for n in notes)
    # Untouched fields keep their old values.
    assert prices.logs_ingestion_gb == load_pricing().region(region).logs_ingestion_gb


def test_refresh_without_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(MrspecError, match="needs AWS credentials"):
        make_client()


# ------------------------------------------------------------------- budget guard


def test_budget_guard_refuses_with_the_excess() -> None:
    import dataclasses

    spec, objects, stack = fixture_x86()
    e = run(spec, objects, stack)
    total = e.cost.total_usd  # about $0.06
    check_budget(spec, e)  # no budget: no limit
    check_budget(dataclasses.replace(spec, limits=dataclasses.replace(spec.limits,
                                                                      budget_usd=1.0)), e)
    tight = dataclasses.replace(spec, limits=dataclasses.replace(spec.limits, budget_usd=0.05))
    with pytest.raises(RefusedError) as info:
        check_budget(tight, e)
    over = total - 0.05
    assert f"by ${over:.2f}" in str(info.value) and "limits.budget_usd $0.05" in str(info.value)
    assert info.value.exit_code == ExitCode.REFUSED


# ------------------------------------------------------------------- actual cost


def test_actual_cost_from_measurements_by_hand() -> None:
    import dataclasses

    spec = make_spec(arch="arm64", split=64 * 1024**2, bin_size=64 * 1024**2, map_memory=2048,
                     map_timeout=60, partitions=2, reduce_memory=1024, reduce_timeout=60)
    model = review_model(spec)
    # The sizes this arithmetic uses: map 2,048 MB with 1,024 MB of /tmp, reduce 1,024 MB
    # and commit 512 MB with the free 512 MB.
    eph = {"map": 1024, "merge": 512, "reduce": 512, "commit": 512}
    stack = dataclasses.replace(model, functions=tuple(
        dataclasses.replace(f, ephemeral_storage_mb=eph[f.logical_name]) for f in model.functions))
    assert [(f.logical_name, f.memory_mb, f.architecture) for f in stack.functions] == [
        ("map", 2048, "arm64"), ("merge", 1024, "arm64"), ("reduce", 1024, "arm64"),
        ("commit", 512, "arm64")]
    m = RunMeasurements(
        invocation_ms={"map": [1000.2, 2000.0, 2999.5], "reduce": [500.0], "commit": [800.0]},
        init_ms={"map": [400.1], "reduce": [300.0]},
        s3_requests={"shuffle PUT": ("put", 3), "input GET": ("get", 30)},
        sfn_transitions=3 + 4,
        express_child_ms=[1050, 2001, 3000, 520],
        shuffle_byte_seconds=2 * 1024**3 * 3600,  # 2 GB held for an hour
        log_bytes=1024**3 / 2,
    )
    cost = actual_cost(m, stack, load_pricing())
    arm = 0.0000133334
    # map: 1001 + 2000 + 3000 + 401 ms (each rounded up to 1 ms) at 2 GB
    map_gb_s = (1001 + 2000 + 3000 + 401) / 1000 * 2
    reduce_gb_s = (500 + 300) / 1000 * 1
    commit_gb_s = 0.8 * 0.5
    map_eph = (1001 + 2000 + 3000 + 401) / 1000 * (1024 - 512) / 1024
    # EXPRESS: 1,100 + 2,100 + 3,000 + 600 ms at 64 MB
    express_gb_s = 6.8 * 64 / 1024
    expected = (
        5 * 0.2e-6
        + (map_gb_s + reduce_gb_s + commit_gb_s) * arm
        + map_eph * 0.0000000309
        + 7 * 0.000025
        + 4 * 1e-6 + express_gb_s * 0.00001667
        + 3 * 0.000005 + 30 * 0.0000004
        + 2 / 730 * 0.023
        + 0.5 * 0.50
    )
    assert cost.total_usd == pytest.approx(expected)


def test_actual_cost_of_the_estimated_usage_equals_the_estimate() -> None:
    e = run(*fixture_x86())
    # The estimate's own usage, priced as measurements, gives the same figures.
    from mrspec.cost.usage import price_usage

    again = price_usage(e.usage, load_pricing().region("us-east-1"), load_pricing().free_tier)
    assert again.total_usd == pytest.approx(e.cost.total_usd)
