"""``mrspec.builtins`` as plain functions: results against Python's own sum/min/max over
the same values, the values they refuse, and hot keys folded a chunk at a time."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from mrspec import builtins
from mrspec.builtins import CHUNK, BuiltinValueError
from mrspec.spec.loader import validate_file

PYTHON = {"sum": sum, "min": min, "max": max}


def values(seed: int, n: int) -> list[Any]:
    rng = random.Random(seed)
    # ints (some huge) and floats exact in binary, so every order of additions agrees
    return [
        rng.choice([rng.randint(-1000, 1000), rng.randint(-8, 8) / 4, 10**30 + rng.randint(0, 9)])
        for _ in range(n)
    ]


@pytest.mark.parametrize("name", ["sum", "min", "max"])
@pytest.mark.parametrize("n", [1, 2, 17, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
def test_results_equal_pythons_on_mixed_ints_and_floats(name: str, n: int) -> None:
    data = values(n, n)
    fn = getattr(builtins, name)
    assert list(fn("k", iter(data))) == [("k", PYTHON[name](data))]


@pytest.mark.parametrize("name", ["sum", "min", "max"])
def test_no_values_no_pair(name: str) -> None:
    assert list(getattr(builtins, name)("k", iter([]))) == []


@pytest.mark.parametrize("name", ["sum", "min", "max"])
@pytest.mark.parametrize("bad", [None, "3", [1], {"a": 1}, 3j])
def test_refused_values_name_the_key_the_value_and_its_type(name: str, bad: Any) -> None:
    data = [1, 2.5, *([0] * CHUNK), bad, 4]  # the bad value in the second chunk
    with pytest.raises(BuiltinValueError) as caught:
        list(getattr(builtins, name)("the key", data))
    message = str(caught.value)
    assert f"mrspec.builtins:{name}" in message
    assert "'the key'" in message
    assert f"of type {type(bad).__name__} ({bad!r})" in message
    assert isinstance(caught.value, TypeError)


@pytest.mark.parametrize("name", ["min", "max"])
def test_min_and_max_refuse_nan(name: str) -> None:
    with pytest.raises(BuiltinValueError, match="other than NaN"):
        list(getattr(builtins, name)("k", [1.0, math.nan]))


def test_sum_takes_nan_and_infinities() -> None:
    [(_, total)] = builtins.sum("k", [1, math.nan, 2.0])
    assert math.isnan(total)
    assert list(builtins.sum("k", [math.inf, 1])) == [("k", math.inf)]
    assert list(builtins.max("k", [math.inf, 1])) == [("k", math.inf)]


def test_bools_count_as_0_and_1_as_in_python() -> None:
    flags = [True, False, True, 1, 2.5]
    assert list(builtins.sum("k", flags)) == [("k", sum(flags))]
    assert list(builtins.max("k", [False, True])) == [("k", True)]
    assert list(builtins.min("k", [True, 0])) == [("k", 0)]


def test_ties_keep_the_first_value_seen_as_python_does() -> None:
    [(_, low)] = builtins.min("k", [1.0, 1, 2])
    [(_, high)] = builtins.max("k", [*([0] * CHUNK), 2, 2.0])
    assert type(low) is float and type(high) is int  # min/max keep the first of equals


def test_aggregator_lookup() -> None:
    assert builtins.aggregator("mrspec.builtins:sum") is builtins.SUM
    assert builtins.aggregator("mrspec.builtins:count") is None
    assert builtins.aggregator("wordcount:sum") is None
    assert builtins.aggregator(None) is None
    assert sorted(builtins.AGGREGATORS) == ["max", "min", "sum"]


def test_a_spec_naming_built_ins_is_valid_without_their_module(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text("def mapper(line):\n    yield line, 1\n")
    (tmp_path / "in").mkdir()
    spec_file = tmp_path / "job.yaml"
    spec_file.write_text(
        "apiVersion: mrspec/v1\nname: b\ninput:\n  prefix: in/\n"
        "map:\n  entrypoint: job:mapper\n  combiner: mrspec.builtins:max\n"
        "reduce:\n  entrypoint: mrspec.builtins:min\noutput:\n  prefix: out/\n"
    )
    spec, problems = validate_file(spec_file)
    assert problems == []
    assert spec is not None and spec.map.combiner == "mrspec.builtins:max"


def test_the_lambda_package_ships_the_built_ins_and_their_fast_path() -> None:
    from mrspec.aws.package import runtime_module_files

    shipped = runtime_module_files()
    assert "mrspec/builtins.py" in shipped
    assert "mrspec/runtime/aggregate.py" in shipped
