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


def _spellings() -> list[str]:
    # every unit of both tables in three cases, plus near misses no table holds
    units_seen = sorted(set(units._SIZE_UNITS) | set(units._DURATION_UNITS) - {""})
    cased = [form for unit in units_seen for form in (unit, unit.upper(), unit.capitalize())]
    near_misses = ["ib", "kbb", "mins", "hr", "bytes", "gigs", "mi b", "µs", "k1"]
    return [f"{number}{sep}{unit}" for number in ("5", "1.5") for sep in ("", " ")
            for unit in (*cased, *near_misses)] + ["", "MiB", "5.", ".5MiB", "-5MiB"]


@pytest.mark.parametrize(
    ("definition", "parse"), [("size", parse_size), ("memory", parse_size),
                              ("timeout", parse_duration)]
)
def test_the_schema_accepts_exactly_what_the_parser_accepts(definition: str, parse: object) -> None:
    # An editor checks a spec against schema.json while `validate` parses it: a spelling
    # one accepts and the other refuses ("5Mi", "5MIB" before) would send a user in circles.
    # The schema side is judged by a JSON Schema validator, not by Python's re.
    import jsonschema

    schema = {"$ref": f"#/$defs/{definition}", "$defs": json.loads(SCHEMA.read_text())["$defs"]}
    disagreements = []
    for text in _spellings():
        schema_ok = jsonschema.Draft202012Validator(schema).is_valid(text)
        try:
            parse(text)  # type: ignore[operator]
            parser_ok = True
        except ValueError:
            parser_ok = False
        if schema_ok != parser_ok:
            disagreements.append((text, schema_ok, parser_ok))
    assert disagreements == []


def test_kubernetes_style_binary_units() -> None:
    assert parse_size("5Mi") == parse_size("5MiB") == parse_size("5mib") == 5 * 2**20
    assert parse_duration("5MIN") == parse_duration("5m") == 300
