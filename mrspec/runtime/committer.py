"""Output preflight, the commit (``_SUCCESS`` manifest written last) and cleanup.

Every part is written once under a deterministic key by its task (a retried attempt
replaces its own key), so committing needs no renames: it checks the results, writes the
manifest listing exactly the parts a reader may trust, and removes the shuffle data.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from mrspec.runtime import replace
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.errors import BadRecordLimitError, TaskFailedError
from mrspec.runtime.replace import Replacement
from mrspec.runtime.results import load_results, manifest_uri
from mrspec.storage import join, storage_for

MANIFEST_VERSION = 1


def _listing_prefix(prefix: str) -> str:
    return prefix.rstrip("/") + "/"


def prepare_output(config: TaskConfig, *, overwrite: bool, token: str | None = None) -> Replacement:
    """Refuse a non-empty output unless ``overwrite``; nothing is removed here (see
    ``mrspec.runtime.replace``: the old output goes only after the new commit)."""
    return replace.prepare(config.output_prefix, overwrite=overwrite, token=token)


def sum_counters(results: Sequence[dict[str, Any]], field: str) -> dict[str, int]:
    total: Counter[str] = Counter()
    for result in results:
        total.update(result.get(field, {}))
    return dict(sorted(total.items()))


def check_bad_records(config: TaskConfig, results: Sequence[dict[str, Any]]) -> None:
    """Fail when the job-wide number of skipped records passes the limit."""
    total = 0
    for result in results:
        total += int(result.get("bad_record_count", 0))
        if total > config.max_bad_records:
            reported = result.get("bad_records") or [{}]
            last = reported[-1]
            raise BadRecordLimitError(
                f"{total} bad records in the job, more than limits.max_bad_records "
                f"({config.max_bad_records}); map task {result['task_id']} skipped "
                f"{last.get('uri')} at byte {last.get('offset')}: {last.get('error')}",
                hint="fix the mapper or the input, or raise limits.max_bad_records",
            )


def commit(
    config: TaskConfig,
    *,
    work_prefix: str,
    map_results: Sequence[dict[str, Any]] | None,
    reduce_results: Sequence[dict[str, Any]] | None,
    started: float,
    timings: dict[str, float] | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    if map_results is None:
        map_results = load_results(work_prefix, "map")
    if config.map_only:
        reduce_results = []
    elif reduce_results is None:
        reduce_results = load_results(work_prefix, "reduce")
    check_bad_records(config, map_results)
    writers = map_results if config.map_only else reduce_results
    expected = len(map_results) if config.map_only else config.partitions
    if len(writers) != expected or len({r["task_id"] for r in writers}) != expected:
        raise TaskFailedError(
            f"commit: {len(writers)} of {expected} {'map' if config.map_only else 'reduce'} "
            "task results are present; refusing to write a manifest for partial output"
        )
    parts = sorted((o for r in writers for o in r["outputs"]), key=lambda o: o["uri"])
    results = [*map_results, *reduce_results]
    finished = time.time()
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "job": config.job_name,
        "spec_digest": config.spec_digest,
        "output_format": config.output_format,
        "parts": [{"uri": p["uri"], "size": p["size"], "records": p["records"]} for p in parts],
        "records": sum(p["records"] for p in parts),
        "bytes": sum(p["size"] for p in parts),
        "counters": sum_counters(results, "counters"),
        "user_counters": sum_counters(results, "user_counters"),
        "bad_records": [b for r in map_results for b in r.get("bad_records", [])],
        "tasks": {"map": len(map_results), "reduce": len(reduce_results)},
        "timings": {
            "started": started,
            "finished": finished,
            "seconds": round(finished - started, 3),
            **(timings or {}),
        },
        **(extra or {}),
    }
    uri = manifest_uri(config.output_prefix)
    storage_for(uri).write(uri, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    cleanup(config, work_prefix=work_prefix, remove_output=False)
    return manifest


def cleanup(config: TaskConfig, *, work_prefix: str, remove_output: bool) -> None:
    for folder in ("shuffle", "results"):
        location = _listing_prefix(join(work_prefix, folder))
        storage = storage_for(location)
        storage.delete([o.uri for o in storage.list(location)])
    if remove_output and config.output_prefix:
        # only this run's parts: an output being replaced stays whole
        replace.discard(config.output_prefix, config.part_token)
