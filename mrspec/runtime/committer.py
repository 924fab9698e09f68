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
from dataclasses import dataclass
from typing import Any

import mrspec.runtime.replace as replace
from mrspec.plan.model import JobPlan
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.errors import BadRecordLimitError, TaskFailedError
from mrspec.runtime.exchange import Totals
from mrspec.runtime.layout import is_shard_folder, manifest_uri, phase_name
from mrspec.runtime.replace import Replacement
from mrspec.runtime.results import load_results
from mrspec.storage import storage_for

MANIFEST_VERSION = 1
DELETE_BATCH = 1000  # keys per DeleteObjects request


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
    """Fail when the job-wide number of skipped records passes the limit (map results)."""
    check_totals(config, Totals.sum(Totals.of_result(r) for r in results))


def check_totals(config: TaskConfig, totals: Totals) -> None:
    if totals.bad_record_count <= config.max_bad_records:
        return
    last = (totals.bad_records or ({},))[-1]
    raise BadRecordLimitError(
        f"{totals.bad_record_count} bad records in the job, more than limits.max_bad_records "
        f"({config.max_bad_records}); for example {last.get('uri')} at byte "
        f"{last.get('offset')}: {last.get('error')}",
        hint="fix the mapper or the input, or raise limits.max_bad_records",
    )


@dataclass(frozen=True)
class RunShape:
    """What the commit expects of a run: from the plan (locally) or the execution input."""

    map_tasks: int
    merge_tasks: tuple[int, ...] = ()  # tasks per merge level

    @property
    def level(self) -> int:
        return len(self.merge_tasks)

    @property
    def producers(self) -> int:
        """Tasks of the level the reducers read."""
        return self.merge_tasks[-1] if self.merge_tasks else self.map_tasks

    def to_json(self) -> dict[str, Any]:
        return {"map_tasks": self.map_tasks, "merge_tasks": list(self.merge_tasks)}

    @classmethod
    def of_plan(cls, plan: JobPlan) -> RunShape:
        return cls(len(plan.map_tasks), tuple(len(m.tasks) for m in plan.merge_levels))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunShape:
        return cls(int(data["map_tasks"]), tuple(int(n) for n in data.get("merge_tasks", ())))


def _require(work_prefix: str, phase: str, count: int, given: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Every result of a phase, or a refusal naming the missing ones."""
    if given is None:
        found, missing = load_results(work_prefix, phase, count)
    else:
        ids = {int(r["task_id"]) for r in given}
        found, missing = list(given), sorted(set(range(count)) - ids)
    if missing or len(found) != count:
        raise TaskFailedError(
            f"commit: {count - len(missing)} of {count} {phase} task results are present "
            f"(missing task ids include {missing[:10]}); refusing to write a manifest "
            "for partial output"
        )
    return sorted(found, key=lambda r: int(r["task_id"]))


def _producer_totals(shape: RunShape, producers: Sequence[dict[str, Any]]) -> Totals:
    if shape.level == 0:
        return Totals.sum(Totals.of_result(r) for r in producers)
    totals = Totals.sum(Totals.from_json(r["totals"]) for r in producers)
    if totals.tasks != shape.map_tasks:
        raise TaskFailedError(
            f"commit: the last merge level covers {totals.tasks} of {shape.map_tasks} map "
            "tasks; refusing to write a manifest for partial output"
        )
    return totals


def commit(
    config: TaskConfig,
    *,
    work_prefix: str,
    shape: RunShape,
    producers: Sequence[dict[str, Any]] | None = None,
    reduce_results: Sequence[dict[str, Any]] | None = None,
    started: float,
    timings: dict[str, float] | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    """Check every result is there, write ``_SUCCESS`` last, remove the work objects.

    Reads the results of the last exchange level (map tasks when no merge level, at
    most F of them) and of the reducers, by key: requests and memory grow with
    (merge or map producers) + R, never with M x R. ``producers`` and
    ``reduce_results``, when given (the local engine holds them), replace the reads.
    """
    phase = phase_name(shape.level)
    producers = _require(work_prefix, phase, shape.producers, producers)
    totals = _producer_totals(shape, producers)
    check_totals(config, totals)
    if config.map_only:
        reduce_results, writers = [], producers
    else:
        reduce_results = _require(work_prefix, "reduce", config.partitions, reduce_results)
        writers = reduce_results
    parts = sorted((o for r in writers for o in r["outputs"]), key=lambda o: o["uri"])
    counters: Counter[str] = Counter(totals.counters)
    user: Counter[str] = Counter(totals.user_counters)
    for result in reduce_results:
        counters.update(result.get("counters", {}))
        user.update(result.get("user_counters", {}))
    tasks: dict[str, Any] = {"map": shape.map_tasks, "reduce": len(reduce_results)}
    if shape.merge_tasks:
        tasks["merge"] = list(shape.merge_tasks)
    finished = time.time()
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "job": config.job_name,
        "spec_digest": config.spec_digest,
        "output_format": config.output_format,
        "parts": [{"uri": p["uri"], "size": p["size"], "records": p["records"]} for p in parts],
        "records": sum(p["records"] for p in parts),
        "bytes": sum(p["size"] for p in parts),
        "counters": dict(sorted(counters.items())),
        "user_counters": dict(sorted(user.items())),
        "bad_records": list(totals.bad_records),
        "tasks": tasks,
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
    # one listing of the work prefix; work objects are those under a shard folder
    # (mrspec.runtime.layout), deleted while listing, DELETE_BATCH keys at a time, so
    # memory stays flat in M
    location = _listing_prefix(work_prefix)
    storage = storage_for(location)
    batch: list[str] = []
    for info in storage.list(location):
        if is_shard_folder(info.uri[len(location) :].split("/", 1)[0]):
            batch.append(info.uri)
        if len(batch) == DELETE_BATCH:
            storage.delete(batch)
            batch = []
    storage.delete(batch)
    if remove_output and config.output_prefix:
        # only this run's parts: an output being replaced stays whole
        replace.discard(config.output_prefix, config.part_token)
