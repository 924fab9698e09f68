"""Preflight refusals of an AWS run: each one before anything is created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from test_driver_lifecycle import _input, _options, _spec, assert_nothing_left

from mrspec.aws import preflight
from mrspec.aws.driver import run_on_aws
from mrspec.errors import ExitCode, InputError, RefusedError


class _LambdaWithLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def get_account_settings(self) -> dict[str, Any]:
        return {"AccountLimit": {"ConcurrentExecutions": self.limit}}


class _SessionWithLambdaLimit:
    """Answers only GetAccountSettings, as an account with a low quota would."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def client(self, service: str) -> Any:
        assert service == "lambda"
        return _LambdaWithLimit(self.limit)


def test_max_concurrency_above_the_accounts_lambda_concurrency_is_refused(tmp_path: Path) -> None:
    spec = _spec(tmp_path)  # max_concurrency 2
    assert preflight.check_concurrency(_SessionWithLambdaLimit(10), spec) == 10
    with pytest.raises(RefusedError) as refused:
        preflight.check_concurrency(_SessionWithLambdaLimit(1), spec)
    assert refused.value.exit_code == ExitCode.REFUSED
    assert "limits.max_concurrency is 2" in str(refused.value)
    assert "at most 1 Lambda" in str(refused.value)


def test_a_missing_output_bucket_is_refused(emulated_aws: EmulatedAws, tmp_path: Path) -> None:
    _input(emulated_aws, {"a.txt": b"x\n"})
    emulated_aws.client("s3").delete_bucket(Bucket="out-bucket")
    with pytest.raises(RefusedError, match="output bucket 'out-bucket' does not exist"):
        run_on_aws(_spec(tmp_path), _options(tmp_path))
    assert emulated_aws.client("lambda").list_functions()["Functions"] == []


def test_an_unreadable_input_is_an_input_error(emulated_aws: EmulatedAws, tmp_path: Path) -> None:
    emulated_aws.client("s3").create_bucket(Bucket="out-bucket")
    with pytest.raises(InputError, match="cannot read the input prefix s3://in-bucket/data/"):
        run_on_aws(_spec(tmp_path), _options(tmp_path))
    assert emulated_aws.client("lambda").list_functions()["Functions"] == []


def test_an_empty_input_is_an_input_error(emulated_aws: EmulatedAws, tmp_path: Path) -> None:
    _input(emulated_aws, {})
    with pytest.raises(InputError, match="holds no data objects"):
        run_on_aws(_spec(tmp_path), _options(tmp_path))
    assert_nothing_left(emulated_aws)


def test_an_unknown_region_is_refused(emulated_aws: EmulatedAws, tmp_path: Path) -> None:
    from dataclasses import replace

    from mrspec.spec.model import AwsSpec

    spec = replace(_spec(tmp_path), aws=AwsSpec(region="mars-north-1"))
    with pytest.raises(RefusedError, match="'mars-north-1' is not a region"):
        run_on_aws(spec, _options(tmp_path, session=None))
