"""Sizes and durations as specs and options write them: ``64MiB``, ``500MB``, ``90s``, ``1d``.

Bare integers are bytes for sizes and seconds for durations. Binary units (KiB, MiB,
GiB, TiB) are powers of 1024, decimal units (KB, MB, GB, TB) powers of 1000; ``K``,
``M``, ``G`` alone and Kubernetes' ``Ki``, ``Mi``, ``Gi``, ``Ti`` are accepted as the binary
units, as in most tools. Units are read in any case (``64mib``, ``5MIN``).

The JSON Schema's patterns (``SIZE_PATTERN``, ``DURATION_PATTERN``, copied into
``schema.json``) are built from the unit tables below, so an editor checking a spec against
the schema accepts exactly what the parser accepts.
"""

from __future__ import annotations

import re

_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "t": 1024**4,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
    "ti": 1024**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_DURATION_UNITS: dict[str, int] = {
    "": 1,
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "d": 86400,  # the commands' longer waits (--keep-failed 1d)
}
_NUMBER_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")



def _unit_pattern(units: dict[str, int]) -> str:
    """A JSON Schema pattern for a number with one of ``units``, in any case. ECMA-262
    patterns have no case-insensitive flag, so each letter becomes a class (``[mM]``);
    longer units come first so an alternation never stops at a prefix."""
    spellings = sorted((unit for unit in units if unit), key=lambda unit: (-len(unit), unit))
    classes = ["".join(f"[{c}{c.upper()}]" for c in unit) for unit in spellings]
    return r"^\s*\d+(\.\d+)?\s*(" + "|".join(classes) + r")?\s*$"


SIZE_PATTERN = _unit_pattern(_SIZE_UNITS)
DURATION_PATTERN = _unit_pattern(_DURATION_UNITS)


def parse_size(value: int | str) -> int:
    """Return a size in bytes; raise ``ValueError`` with a readable message."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 64MiB, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {value}")
        return value
    match = _NUMBER_UNIT.match(str(value))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(
            f"{value!r} is not a size; write bytes (1048576) or a number with a unit "
            "(64MiB, 1GiB, 500MB)"
        )
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_duration(value: int | str) -> int:
    """Return a duration in whole seconds; raise ``ValueError`` with a readable message."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 90s, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value}")
        return value
    match = _NUMBER_UNIT.match(str(value))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _DURATION_UNITS:
        raise ValueError(
            f"{value!r} is not a duration; write seconds (90) or a number with a unit "
            "(90s, 5m, 1h, 1d)"
        )
    return int(float(match.group(1)) * _DURATION_UNITS[unit])


def format_size(n: float) -> str:
    """Human-readable binary size: ``1.5 GiB``, ``640 B``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """Human-readable duration: ``850 ms``, ``12.3 s``, ``4m 05s``, ``1h 02m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes}m {secs:02d}s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}h {rest // 60:02d}m"
