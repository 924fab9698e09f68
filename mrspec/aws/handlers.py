"""Lambda entry points: thin adapters from Step Functions events to ``mrspec.runtime``.

Runs inside Lambda: standard library, boto3 (through ``mrspec.storage``) and mrspec's
runtime only. The job's ``TaskConfig`` is ``mrspec_task_config.json`` at the package root
(written by ``mrspec.aws.package``; a job with steps adds ``mrspec_task_config.step-1.json``
and so on, one per later step); the job's modules sit at the root too.

Events (built by the state machine, see ``mrspec.aws.asl``)::

    map / merge / reduce:  {"phase": "map" | "merge" | "reduce", ["step": s,]
                    "task": <MapTask | MergeTask | ReduceTask JSON>, "work": "s3://...",
                    "attempt": <$$.State.RetryCount>, "run": <execution input>}
    commit:        {"action": "commit", ["step": last,] "work": ..., "started": <ISO time>,
                    "run": ...}
    failure:       {"action": "report_failure", "phase": "map" | "merge-<n>" | "reduce"
                    | "steps[<s>].map" ..., "work": ..., "error": ..., "cause": ...}

``step`` is there only in a job with steps: the handler loads that step's config and
labels its phase ``steps[<s>].<phase>`` (``runtime.layout.step_phase``). The execution
input (``run``) carries the run's shape, ``{"exchange": {"map_tasks": M, "merge_tasks":
[...]}}`` (of the last step), and in a job with steps every step's (``"steps": [...]``),
so the commit knows how many results to expect without reading the manifests.

A task that raises records ``{work}/failures/<phase>-<id>.json`` (its error type, message
and traceback tail) before re-raising, and clears it when a retry succeeds. When a phase
fails, ``report_failure`` re-raises the recorded error under the task's own error type, so
the execution's ``error`` is, say, ``ValueError`` and its ``cause`` names the task and
message instead of ``States.ExceedToleratedFailureThreshold``. The commit checks the same
records and that every task of the last exchange level and every reducer left a result,
which also catches engines (moto) that let a Distributed Map succeed with failed children.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from mrspec.errors import JobFailedError
from mrspec.runtime import retry
from mrspec.runtime.failures import FailureRecord
from mrspec.runtime.layout import failure_uri, failures_folder, manifest_uri, step_label

if TYPE_CHECKING:
    from mrspec.runtime.config import TaskConfig

TASK_CONFIG_FILE = "mrspec_task_config.json"
TASK_CONFIG_ENV = "MRSPEC_TASK_CONFIG"  # overrides the config file's location
SCRATCH_ENV = "MRSPEC_SCRATCH_DIR"  # default: the system temp dir (/tmp in Lambda)
MAX_TRACEBACK_CHARS = 4000
MAX_RESPONSE_BYTES = 200_000  # a state's payload must stay under 256 KiB


class PhaseFailedError(JobFailedError):
    """A phase failed and no task recorded why (a timeout or a crashed runtime)."""


def package_root() -> Path:
    """The folder holding ``mrspec/`` (``/var/task`` in Lambda)."""
    return Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=4)
def _load_config(path: str) -> TaskConfig:
    from mrspec.runtime.config import TaskConfig

    return TaskConfig.from_json(Path(path).read_bytes())


def config_file(step: int) -> str:
    """The packaged config of step ``step`` (step 0: the one every job has)."""
    return TASK_CONFIG_FILE if step == 0 else f"mrspec_task_config.step-{step}.json"


STEP_CONFIG_FILE = re.compile(r"mrspec_task_config\.step-[0-9]+\.json")  # config_file(s > 0)


def _config_path(step: int) -> str:
    override = os.environ.get(TASK_CONFIG_ENV)
    if override:  # a later step's config lies beside it
        return override if step == 0 else str(Path(override).with_name(config_file(step)))
    return str(package_root() / config_file(step))


def task_config(event: dict[str, Any] | None = None, step: int | None = None) -> TaskConfig:
    """The packaged config of the event's step (or ``step``), with this run's part token
    (set when it replaces an output); the run's account becomes the expected owner of
    every bucket the task touches."""
    import dataclasses

    if step is None:
        step = int((event or {}).get("step") or 0)
    config = _load_config(_config_path(step))
    run = (event or {}).get("run")
    run = run if isinstance(run, dict) else {}
    if run.get("bucket_owner"):
        from mrspec.storage.s3 import S3Storage, expect_bucket_owner

        expect_bucket_owner(S3Storage.shared().client.meta.events, str(run["bucket_owner"]))
    token = str(run.get("part_token") or "")
    return dataclasses.replace(config, part_token=token) if token else config


def _log(**fields: Any) -> None:
    print(json.dumps({"mrspec": fields}, default=str), flush=True)


def _scratch_root() -> str:
    return os.environ.get(SCRATCH_ENV) or tempfile.gettempdir()


def _record_failure(work: str, phase: str, task_id: int, attempt: int, exc: BaseException) -> None:
    from mrspec.storage import storage_for

    record = FailureRecord(
        phase=phase,
        task_id=task_id,
        attempt=attempt,
        error=type(exc).__name__,
        message=str(exc),
        traceback="".join(traceback.format_exception(exc))[-MAX_TRACEBACK_CHARS:],
        time=time.time(),
    )
    uri = failure_uri(work, phase, task_id)
    try:
        storage_for(uri).write(uri, json.dumps(record.to_json(), indent=2).encode())
    except Exception as write_error:  # never hide the task's own error behind this one
        _log(event="failure_record_not_written", uri=uri, error=repr(write_error))


def _clear_failure(work: str, phase: str, task_id: int) -> None:
    from mrspec.storage import storage_for

    uri = failure_uri(work, phase, task_id)
    storage_for(uri).delete([uri])


def _run_task(kind: str, event: dict[str, Any]) -> dict[str, Any]:
    from mrspec.runtime.dispatch import run_task, task_label

    work = str(event["work"])
    attempt = int(event.get("attempt") or 0) + 1
    config = task_config(event)
    phase, task_id = task_label(kind, event["task"])
    if "step" in event:  # a job with steps: its failures and logs name the step
        phase = step_label(int(event["step"]), phase)
    _log(event="task_started", phase=phase, task_id=task_id, attempt=attempt)
    try:
        with tempfile.TemporaryDirectory(prefix=f"mrspec-{kind}-", dir=_scratch_root()) as tmp:
            result = run_task(
                kind, event["task"], config, work_prefix=work, scratch_dir=tmp, attempt=attempt
            )
    except Exception as exc:
        _record_failure(work, phase, task_id, attempt, exc)
        _log(event="task_failed", phase=phase, task_id=task_id, error=type(exc).__name__)
        # the state machine skips retries by error name (mrspec.runtime.retry)
        substitute = retry.reported(exc)
        if substitute is not exc:
            raise substitute from exc
        raise
    if attempt > 1:
        _clear_failure(work, phase, task_id)
    _log(event="task_finished", phase=phase, task_id=task_id, seconds=result.seconds)
    return _bounded(result.to_json())  # the Lambda response: the result's JSON form


def _bounded(result: dict[str, Any]) -> dict[str, Any]:
    """The result, trimmed to what fits a Step Functions payload."""
    if len(json.dumps(result)) <= MAX_RESPONSE_BYTES:
        return result
    keep = ("kind", "task_id", "attempt", "counters", "bad_record_count", "seconds")
    return {k: result[k] for k in keep if k in result}


def map_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Run one map task (a bin of splits)."""
    return _run_task("map", event)


def merge_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Merge a group of exchange objects (one task of a merge level)."""
    return _run_task("merge", event)


def reduce_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Reduce one partition."""
    return _run_task("reduce", event)


def _recorded_failures(work: str, phase: str | None = None) -> list[FailureRecord]:
    from mrspec.storage import storage_for

    folder = failures_folder(work)
    storage = storage_for(folder)
    records = [FailureRecord.from_json(json.loads(storage.read(o.uri))) for o in storage.list(folder)]
    if phase is not None:
        records = [r for r in records if r.phase == phase]
    return sorted(records, key=lambda r: r.order)


def _error_class(name: str) -> type[JobFailedError]:
    """An exception class carrying the task's own error name (Lambda reports the class
    name as the error type)."""
    clean = re.sub(r"\W", "_", name) or "TaskFailedError"
    if not clean[0].isalpha():
        clean = f"E{clean}"
    return type(clean, (JobFailedError,), {})


def _raise_recorded(records: list[FailureRecord]) -> NoReturn:
    first = records[0]
    others = len(records) - 1
    message = (
        f"{first.phase} task {first.task_id} failed (attempt {first.attempt}): "
        f"{first.error}: {first.message}"
    )
    if others:
        message += f" (and {others} more failed task(s))"
    message += f"\n{first.traceback}"
    raise _error_class(first.error)(message)


def _parse_time(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()


def _commit(event: dict[str, Any]) -> dict[str, Any]:
    from mrspec.runtime.committer import RunShape, step_totals
    from mrspec.runtime.committer import commit as run_commit

    work = str(event["work"])
    config = task_config(event)
    failures = _recorded_failures(work)
    if failures:
        _raise_recorded(failures)
    # the run's shape comes with the execution input: no manifest is read or parsed
    shape = RunShape.from_json(event["run"]["exchange"])
    extra: dict[str, Any] = {"run_id": os.environ.get("MRSPEC_RUN_ID", "")}
    shapes = event["run"].get("steps") or []
    # a job with steps: each step's tasks and counters in _SUCCESS, as the local engine's
    # (the commit adds the last step's from the results it reads anyway)
    earlier = [
        step_totals(task_config(event, step), work_prefix=work, shape=RunShape.from_json(each))
        for step, each in enumerate(shapes[:-1])
    ] if shapes else None
    manifest = run_commit(
        config,
        work_prefix=work,
        shape=shape,
        started=_parse_time(event.get("started")),
        timings=None,
        extra=extra,
        earlier_steps=earlier,
    )
    written = manifest.to_json()
    kept = ("job", "records", "bytes", "tasks", "timings")
    summary: dict[str, Any] = {k: written[k] for k in kept if k in written}
    summary["manifest"] = manifest_uri(config.output_prefix)
    summary["parts"] = len(manifest.parts)
    summary["counters"] = written["counters"]
    summary["user_counters"] = written["user_counters"]
    return _bounded(summary)


def _report_failure(event: dict[str, Any]) -> NoReturn:
    work = str(event["work"])
    phase = str(event.get("phase", "map"))
    records = _recorded_failures(work, phase)
    if records:
        _raise_recorded(records)
    raise PhaseFailedError(
        f"the {phase} phase failed and no task recorded an error (a timeout or a crash?): "
        f"{event.get('error')}: {event.get('cause')}"
    )


def commit_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Commit a successful run, or turn a failed phase into the task's own error."""
    action = event.get("action", "commit")
    if action == "commit":
        return _commit(event)
    if action == "report_failure":
        _report_failure(event)
    raise ValueError(f"unknown commit action {action!r}")


__all__ = ["commit_handler", "map_handler", "merge_handler", "reduce_handler"]
