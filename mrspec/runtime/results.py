"""Task results under a run's work prefix: storing one, reading a phase's back.

Keys come from ``mrspec.runtime.layout``; a phase's results are read by key (task ids
0..n-1), in parallel, never by listing, so the reader learns exactly which are missing.
"""

from __future__ import annotations

import json
from typing import Any

from mrspec.runtime.exchange import parallel
from mrspec.runtime.layout import result_uri
from mrspec.storage import storage_for


def result_phase(result: dict[str, Any]) -> str:
    kind = str(result["kind"])
    return f"merge-{int(result['level'])}" if kind == "merge" else kind


def store_result(work_prefix: str, result: dict[str, Any]) -> None:
    uri = result_uri(work_prefix, result_phase(result), int(result["task_id"]))
    storage_for(uri).write(uri, json.dumps(result, separators=(",", ":")).encode())


def _load(uri: str) -> dict[str, Any] | None:
    storage = storage_for(uri)
    try:
        data: dict[str, Any] = json.loads(storage.read(uri))
    except FileNotFoundError:
        return None
    except Exception as exc:  # S3's NoSuchKey is a botocore ClientError
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            return None
        raise
    return data


def load_results(
    work_prefix: str, phase: str, count: int
) -> tuple[list[dict[str, Any]], list[int]]:
    """The results of tasks ``0..count-1`` of ``phase``: (those present, missing ids)."""
    uris = [result_uri(work_prefix, phase, i) for i in range(count)]
    found = parallel(_load, uris)
    present = [r for r in found if r is not None]
    missing = [i for i, r in enumerate(found) if r is None]
    return present, missing
