"""Sizes and durations as specs write them (``mrspec.units``)."""

from __future__ import annotations

import json
from pathlib import Path

import mrspec
from mrspec import units

SCHEMA = Path(mrspec.__file__).parent / "spec" / "schema.json"


def test_the_schema_patterns_are_the_units_patterns() -> None:
    # schema.json holds copies of the patterns (JSON Schema has no way to import them):
    # this test is what keeps the two from drifting apart
    defs = json.loads(SCHEMA.read_text())["$defs"]
    assert defs["size"]["pattern"] == units.SIZE_PATTERN
    assert defs["memory"]["pattern"] == units.SIZE_PATTERN
    assert defs["timeout"]["pattern"] == units.DURATION_PATTERN
