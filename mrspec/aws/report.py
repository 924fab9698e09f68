"""What an AWS run shows: live phase bars while it runs, then one summary (or JSON).

The summary mirrors the local engine's: tasks, records, bytes, counters (from the output's
``_SUCCESS`` manifest, written last by the commit step), duration per phase, the output
location, the stack's teardown status and, for failures, the failed tasks' errors and the
log groups to read.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from mrspec.aws.watch import Snapshot, TaskFailure
from mrspec.plan.model import JobPlan
from mrspec.spec.model import JobSpec, split_s3_uri
from mrspec.units import format_duration, format_size


@dataclass(frozen=True)
class RunReport:
    job: str
    run_id: str
    stack: str
    output: str
    plan: JobPlan | None
    snapshot: Snapshot | None
    collected: dict[str, Any]  # the output manifest (empty unless the run committed)
    phase_s: dict[str, float]
    teardown: str
    destroy_command: str
    estimate_usd: float | None
    outcome: str  # succeeded | failed | interrupted | error
    failures: tuple[TaskFailure, ...] = ()
    log_groups: tuple[str, ...] = ()
    actual_usd: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        manifest = self.collected
        return {
            "job": self.job,
            "run_id": self.run_id,
            "stack": self.stack,
            "outcome": self.outcome,
            "output": self.output,
            "plan": self.plan.to_json() if self.plan else None,
            "execution_status": self.snapshot.status if self.snapshot else None,
            "phases": [p.to_json() for p in self.snapshot.phases] if self.snapshot else [],
            "counters": manifest.get("counters", {}),
            "user_counters": manifest.get("user_counters", {}),
            "parts": len(manifest.get("parts", [])),
            "durations_s": {k: round(v, 3) for k, v in self.phase_s.items()},
            "teardown": self.teardown,
            "destroy_command": self.destroy_command if self.teardown != "destroyed" else "",
            "estimate_usd": self.estimate_usd,
            "actual_usd": self.actual_usd,
            "failures": [
                {"phase": f.phase, "error": f.error, "cause": f.cause, "source": f.source}
                for f in self.failures
            ],
            "log_groups": list(self.log_groups),
        }


def _console(console: Any, stderr: bool) -> Any:
    if console is not None:
        return console
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def render_report(report: RunReport, console: Any = None, json_output: bool = False) -> None:
    if json_output:
        text = json.dumps(report.to_json(), indent=2, sort_keys=True)
        if console is not None:
            console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            sys.stdout.write(text + "\n")
        return
    out = _console(console, stderr=False)
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("job", f"{report.job} (run {report.run_id}, stack {report.stack or '-'})")
    table.add_row("outcome", report.outcome)
    if report.plan is not None:
        table.add_row(
            "tasks",
            f"{len(report.plan.map_tasks)} map, {len(report.plan.reduce_tasks)} reduce "
            f"over {len(report.plan.objects)} objects ({format_size(report.plan.input_bytes)})",
        )
    if report.snapshot is not None:
        for phase in report.snapshot.phases:
            table.add_row(
                f"{phase.phase} phase",
                f"{phase.succeeded}/{phase.total} succeeded, {phase.unsuccessful} failed",
            )
    counters = report.collected.get("counters", {})
    if counters:
        table.add_row(
            "records",
            f"{counters.get('map_input_records', 0)} in, {counters.get('output_records', 0)} out "
            f"({format_size(int(counters.get('output_bytes', 0)))})",
        )
        for name, value in sorted(report.collected.get("user_counters", {}).items()):
            table.add_row(f"  {name}", str(value))
    if report.phase_s:
        table.add_row(
            "durations",
            ", ".join(f"{k} {format_duration(v)}" for k, v in report.phase_s.items()),
        )
    if report.outcome == "succeeded":
        table.add_row("output", f"{report.output} (manifest: _SUCCESS)")
    for failure in report.failures:
        table.add_row(f"{failure.phase} error", f"{failure.error}: {failure.cause}")
    if report.outcome != "succeeded" and report.log_groups:
        table.add_row("logs", ", ".join(report.log_groups))
    table.add_row("teardown", report.teardown)
    if report.teardown != "destroyed" and report.destroy_command and report.teardown != "not needed":
        table.add_row("remove with", report.destroy_command)
    if report.estimate_usd is not None:
        cost = f"estimate ${report.estimate_usd:.4f}"
        if report.actual_usd is not None:
            cost += f", actual ${report.actual_usd:.4f}"
        table.add_row("cost", cost)
    out.print(table)


class ProgressView:
    """One rich progress bar per phase, fed by snapshots; silent when disabled."""

    def __init__(self, console: Any = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self._console = console
        self._progress: Any = None
        self._bars: dict[str, Any] = {}

    def __enter__(self) -> ProgressView:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description:<8}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=_console(self._console, stderr=True),
                transient=False,
            )
            self._progress.start()
        return self

    def update(self, current: Snapshot) -> None:
        if self._progress is None:
            return
        for phase in current.phases:
            detail = f"running {phase.running}, pending {phase.pending}"
            if phase.unsuccessful:
                detail += f", FAILED {phase.unsuccessful}"
            bar = self._bars.get(phase.phase)
            if bar is None:
                bar = self._progress.add_task(phase.phase, total=phase.total or None, detail=detail)
                self._bars[phase.phase] = bar
            self._progress.update(bar, completed=phase.done, total=phase.total or None, detail=detail)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


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


def failures_from_bucket(session: Any, layout: Any, limit: int = 3) -> list[TaskFailure]:
    """The errors the handlers recorded under the run's failures prefix."""
    s3 = session.client("s3")
    listed = s3.list_objects_v2(Bucket=layout.bucket, Prefix=layout.failures_prefix)
    found: list[TaskFailure] = []
    for obj in sorted(listed.get("Contents", []), key=lambda o: o["Key"])[:limit]:
        body = s3.get_object(Bucket=layout.bucket, Key=obj["Key"])["Body"].read()
        try:
            data = json.loads(body)
        except ValueError:
            data = {"error": "Error", "cause": body.decode("utf-8", "replace")}
        found.append(
            TaskFailure(
                phase=str(data.get("phase", "")),
                error=str(data.get("error") or data.get("errorType") or "Error"),
                cause=_task_cause(data),
                source=f"s3://{layout.bucket}/{obj['Key']}",
            )
        )
    return found


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


def _report_lines(session: Any, log_group: str, max_pages: int = 50) -> tuple[list[float], list[float]]:
    """(Duration, Init Duration) in ms of each invocation logged in ``log_group``."""
    logs = session.client("logs")
    durations: list[float] = []
    inits: list[float] = []
    kwargs: dict[str, Any] = {"logGroupName": log_group}
    for _ in range(max_pages):
        try:
            page = logs.filter_log_events(**kwargs)
        except logs.exceptions.ResourceNotFoundException:
            break
        for event in page.get("events", []):
            message = str(event.get("message", ""))
            if not message.startswith("REPORT "):
                continue
            found = _REPORT_DURATION.search(message)
            if found:
                durations.append(float(found.group(1)))
            init = _REPORT_INIT.search(message)
            if init:
                inits.append(float(init.group(1)))
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    return durations, inits


def failure_message(spec: JobSpec, last: Snapshot, failures: Sequence[TaskFailure]) -> str:
    """What failed: per phase, how many tasks; each known task error."""
    if last.status == "RUNNING":
        lines = [f"job {spec.name} failed: a task failed; the execution was stopped"]
    else:
        lines = [f"job {spec.name} failed (execution {last.status})"]
    for phase in last.phases:
        if phase.unsuccessful:
            lines.append(
                f"  {phase.phase}: {phase.unsuccessful} of {phase.total} tasks failed "
                f"(up to {spec.limits.max_attempts} attempts each)"
            )
    for failure in failures:
        lines.append(f"  {failure.phase} task error: {failure.error}: {failure.cause}")
    if not failures and (last.error or last.cause):
        lines.append(f"  error: {last.error}: {last.cause[:2000]}")
    return "\n".join(lines)


def failure_hint(last: Snapshot, log_groups: Sequence[str], keep: bool) -> str:
    """Where to read more: the failed phases' log groups."""
    failed = [p.phase for p in last.phases if p.unsuccessful]
    names = [g for g in log_groups if any(g.endswith(f"-{phase}") for phase in failed)]
    names = names or list(log_groups)
    if not names:
        return "read the functions' CloudWatch logs"
    after = "" if keep else " (rerun with --keep to read them after the run)"
    return "read the task logs in CloudWatch: " + ", ".join(names) + after
