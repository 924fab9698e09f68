"""Sizes and durations as specs write them (``mrspec.units``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mrspec
from mrspec import units
from mrspec.units import parse_duration, parse_size

SCHEMA = Path(mrspec.__file__).parent / "spec" / "schema.json"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("64MiB", 64 * 2**20), ("1GiB", 2**30), ("500MB", 500 * 10**6), (4096, 4096), ("1.5K", 1536)],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["12 parsecs", "MiB", "-5", True])
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), [("90s", 90), ("5m", 300), (42, 42), ("1h", 3600)])
def test_parse_duration(text: str | int, expected: int) -> None:
    assert parse_duration(text) == expected


def test_the_schema_patterns_are_the_units_patterns() -> None:
    # schema.json holds copies of the patterns (JSON Schema has no way to import them):
    # this test is what keeps the two from drifting apart
    defs = json.loads(SCHEMA.read_text())["$defs"]
    assert defs["size"]["pattern"] == units.SIZE_PATTERN
    assert defs["memory"]["pattern"] == units.SIZE_PATTERN
    assert defs["timeout"]["pattern"] == units.DURATION_PATTERN
