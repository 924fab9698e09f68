from __future__ import annotations

import pytest

from mrspec.aws.model import (
    MAX_BUCKET_NAME,
    MAX_FUNCTION_NAME,
    MAX_ROLE_NAME,
    Location,
    ResourceNames,
    job_name_part,
)


def test_names_fit_aws_limits_for_long_job_names() -> None:
    names = ResourceNames("a-very-long-job-name-" * 5, "abcdefghij")
    assert len(names.bucket) <= MAX_BUCKET_NAME
    assert names.bucket == names.bucket.lower()
    for logical in ("map", "reduce", "commit"):
        assert len(names.function(logical)) <= MAX_FUNCTION_NAME
    for logical in ("lambda", "states"):
        assert len(names.role(logical)) <= MAX_ROLE_NAME


def test_long_names_differing_only_at_the_end_stay_distinct() -> None:
    a = job_name_part("x" * 60 + "a")
    b = job_name_part("x" * 60 + "b")
    assert a != b


def test_names_are_deterministic() -> None:
    assert ResourceNames("WordCount", "r1").bucket == "mrspec-wordcount-r1"
    assert ResourceNames("wordcount", "r1").function("map") == "mrspec-wordcount-r1-map"


def test_bad_run_id_is_rejected() -> None:
    with pytest.raises(ValueError):
        ResourceNames("job", "UPPER")


def test_arns() -> None:
    loc = Location("eu-west-1", "123456789012")
    assert loc.function_arn("f") == "arn:aws:lambda:eu-west-1:123456789012:function:f"
    assert loc.state_machine_arn("s") == "arn:aws:states:eu-west-1:123456789012:stateMachine:s"
    assert loc.role_arn("r") == "arn:aws:iam::123456789012:role/r"
