"""Storage helpers shared by the local paths and S3 (``mrspec.storage``)."""

from __future__ import annotations

from mrspec.storage import is_hidden


def test_hidden_objects() -> None:
    assert is_hidden("s3://b/out/_SUCCESS") and is_hidden("/x/.part-0.crc")
    assert not is_hidden("s3://b/in/part_1.txt")
