"""What the driver reads back from a run's AWS resources: the output's ``_SUCCESS``
manifest, the failure records the handlers wrote in the working bucket, the functions'
CloudWatch log events (the last logged exception, each invocation's REPORT line, and the
events per task that ``mrspec.aws.runlogs`` keeps) and the run's actual cost.

Every read here is of a run's own resources or the job's output; nothing is written.
``mrspec.aws.report`` only renders what these reads return.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mrspec.aws.watch import TaskFailure
from mrspec.spec.model import split_s3_uri


def read_output_manifest(session: Any, output_prefix: str) -> dict[str, Any]:
    """The ``_SUCCESS`` manifest the commit step wrote (empty when there is none)."""
    bucket, prefix = split_s3_uri(output_prefix)
    key = f"{prefix.rstrip('/')}/_SUCCESS" if prefix.strip("/") else "_SUCCESS"
    s3 = session.client("s3")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return {}
    data = json.loads(body)
    return data if isinstance(data, dict) else {}


def failure_records(session: Any, layout: Any, limit: int = 100) -> list[dict[str, Any]]:
    """The failure records the handlers wrote under the run's failures prefix (the task's
    phase, id, attempt, error, message and traceback), in key order, at most ``limit``;
    each carries the ``source`` it was read from."""
    s3 = session.client("s3")
    listed = s3.list_objects_v2(Bucket=layout.bucket, Prefix=layout.failures_prefix)
    records: list[dict[str, Any]] = []
    for obj in sorted(listed.get("Contents", []), key=lambda o: o["Key"])[:limit]:
        body = s3.get_object(Bucket=layout.bucket, Key=obj["Key"])["Body"].read()
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {"error": "Error", "cause": body.decode("utf-8", "replace")}
        records.append({**data, "source": f"s3://{layout.bucket}/{obj['Key']}"})
    return records


def failures_from_bucket(session: Any, layout: Any, limit: int = 3) -> list[TaskFailure]:
    """The errors the handlers recorded under the run's failures prefix."""
    return [
        TaskFailure(
            phase=str(data.get("phase", "")),
            error=str(data.get("error") or data.get("errorType") or "Error"),
            cause=_task_cause(data),
            source=str(data["source"]),
        )
        for data in failure_records(session, layout, limit)
    ]


def _task_cause(data: dict[str, Any]) -> str:
    message = str(data.get("message") or data.get("cause") or data.get("errorMessage") or "")
    if "task_id" in data:
        message = f"task {data['task_id']} (attempt {data.get('attempt', '?')}): {message}"
    return message[:2000]


def failures_from_logs(session: Any, log_group: str, phase: str) -> list[TaskFailure]:
    """The last error a function logged (Lambda's Python runtime logs the exception and its
    traceback): the fallback when neither the service nor the handlers say more."""
    logs = session.client("logs")
    try:
        events = logs.filter_log_events(logGroupName=log_group, limit=200).get("events", [])
    except logs.exceptions.ResourceNotFoundException:
        return []
    for event in reversed(events):
        lines = str(event.get("message", "")).strip().splitlines()
        for line in reversed(lines):
            found = _EXCEPTION_LINE.match(line.strip())
            if found:
                error, cause = found.group(1), found.group(2)
                return [TaskFailure(phase, error, cause.strip(), f"CloudWatch Logs {log_group}")]
    return []


# "ValueError: message" ending a traceback, or Lambda's "[ERROR] ValueError: message".
_EXCEPTION_LINE = re.compile(r"^(?:\[ERROR\]\s*)?([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failure)):\s?(.*)$")


def actual_cost(session: Any, model: Any) -> float | None:
    """The run's cost from what Lambda measured, priced like the estimate.

    Lambda time comes from the functions' ``REPORT`` log lines (``Duration`` and, for cold
    starts, ``Init Duration``); state transitions are those of a run without retries. Log
    delivery can lag a few seconds behind a run, so the figure is a close lower bound,
    shown next to the estimate. None when no REPORT line was found.
    """
    from mrspec.cost.actual import RunMeasurements
    from mrspec.cost.actual import actual_cost as price_run
    from mrspec.cost.pricing import load_pricing

    durations: dict[str, list[float]] = {}
    inits: dict[str, list[float]] = {}
    for function in model.functions:
        group = model.log_group(function.log_group).name
        runs, starts = _report_lines(session, group)
        durations[function.logical_name], inits[function.logical_name] = runs, starts
    if not any(durations.values()):
        return None
    standard_children = sum(
        p.child_transitions * (p.items or 0) for p in model.phases if p.execution_type == "STANDARD"
    )
    express_ms = [
        ms for p in model.phases if p.execution_type == "EXPRESS" for ms in durations.get(p.function, [])
    ]
    measured = RunMeasurements(
        invocation_ms=durations,
        init_ms=inits,
        sfn_transitions=model.state_machine.parent_transitions + standard_children,
        express_child_ms=express_ms,
    )
    return price_run(measured, model, load_pricing()).total_usd


_REPORT_DURATION = re.compile(r"(?<!Billed )(?<!Init )Duration: ([0-9.]+) ms")
_REPORT_INIT = re.compile(r"Init Duration: ([0-9.]+) ms")


def log_events(session: Any, log_group: str, max_pages: int = 50) -> list[dict[str, Any]]:
    """The events of ``log_group`` (``logStreamName``, ``timestamp``, ``message``), at most
    ``max_pages`` pages of FilterLogEvents (up to 10,000 events or 1 MB each); empty when
    the group does not exist."""
    logs = session.client("logs")
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"logGroupName": log_group}
    for _ in range(max_pages):
        try:
            page = logs.filter_log_events(**kwargs)
        except logs.exceptions.ResourceNotFoundException:
            break
        events.extend(page.get("events", []))
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    return events


def _report_lines(session: Any, log_group: str) -> tuple[list[float], list[float]]:
    """(Duration, Init Duration) in ms of each invocation logged in ``log_group``."""
    durations: list[float] = []
    inits: list[float] = []
    for event in log_events(session, log_group):
        message = str(event.get("message", ""))
        if not message.startswith("REPORT "):
            continue
        found = _REPORT_DURATION.search(message)
        if found:
            durations.append(float(found.group(1)))
        init = _REPORT_INIT.search(message)
        if init:
            inits.append(float(init.group(1)))
    return durations, inits
