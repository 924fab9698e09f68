"""The map-side buffer (``mrspec.runtime.buffer``): stable partitioning."""

from __future__ import annotations

from mrspec.runtime.buffer import partition_of


def test_partitioning_is_stable() -> None:
    # CRC-32 of the UTF-8 bytes: fixed values, whatever the process or PYTHONHASHSEED
    assert [partition_of(k, 8) for k in ("the", "apple", "é", "")] == [6, 0, 6, 0]
    assert partition_of("the", 2**32) == 0x3C456DE6  # CRC-32 check value of b"the"
