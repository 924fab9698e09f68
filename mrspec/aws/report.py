"""What an AWS run shows: live phase bars while it runs, then one summary (or JSON).

The summary mirrors the local engine's: tasks, records, bytes, counters (from the output's
``_SUCCESS`` manifest, written last by the commit step), duration per phase, the output
location, the stack's teardown status and, for failures, the failed tasks' errors and the
log groups to read. A job with steps shows each step's records and tasks, and its
counters are the totals over the steps (``_SUCCESS`` lists each step's), as locally.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from mrspec.aws.steps import phase_function
from mrspec.aws.watch import Snapshot, TaskFailure
from mrspec.local.report import step_line
from mrspec.plan.model import JobPlan
from mrspec.runtime.committer import steps_total
from mrspec.spec.model import JobSpec
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
    logs_command: str = ""  # prints the saved task logs ("" when none were saved)
    extra: dict[str, Any] = field(default_factory=dict)
    resume_command: str = ""  # a failed run kept for `apply --resume` (mrspec.aws.keep)
    kept_usd_per_day: float | None = None  # what keeping a failed run costs per day
    resumed: dict[str, list[int]] = field(default_factory=dict)  # a resume's tasks, by phase

    def counters(self) -> tuple[dict[str, int], dict[str, int]]:
        """(counters, user counters): the manifest's, or in a job with steps their totals
        over the steps (the manifest's own are the last step's), as the local summary."""
        steps = self.collected.get("steps") or []
        if not steps:
            return self.collected.get("counters", {}), self.collected.get("user_counters", {})
        return steps_total(steps)

    def to_json(self) -> dict[str, Any]:
        manifest = self.collected
        counters, user_counters = self.counters()
        return {
            "job": self.job,
            "run_id": self.run_id,
            "stack": self.stack,
            "outcome": self.outcome,
            "output": self.output,
            "plan": self.plan.to_json() if self.plan else None,
            "execution_status": self.snapshot.status if self.snapshot else None,
            "phases": [p.to_json() for p in self.snapshot.phases] if self.snapshot else [],
            "counters": counters,
            "user_counters": user_counters,
            **({"steps": manifest["steps"]} if manifest.get("steps") else {}),
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
            "logs_command": self.logs_command,
            "resume_command": self.resume_command,
            "kept_usd_per_day": self.kept_usd_per_day,
            "resumed_tasks": {k: list(v) for k, v in self.resumed.items()},
        }


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.6f}"


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
        table.add_row("tasks", _tasks_line(report.plan))
    if report.snapshot is not None:
        for phase in report.snapshot.phases:
            table.add_row(
                f"{phase.phase} phase",
                f"{phase.succeeded}/{phase.total} succeeded, {phase.unsuccessful} failed",
            )
    counters, user_counters = report.counters()
    for step in report.collected.get("steps") or []:
        table.add_row("records" if step["step"] == 0 else "", step_line(step))
    if counters and not report.collected.get("steps"):
        table.add_row(
            "records",
            f"{counters.get('map_input_records', 0)} in, {counters.get('output_records', 0)} out "
            f"({format_size(int(counters.get('output_bytes', 0)))})",
        )
    for name, value in sorted(user_counters.items()):
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
    if report.outcome != "succeeded" and report.logs_command:
        table.add_row("logs", f"{report.logs_command} (saved before teardown)")
    elif report.outcome != "succeeded" and report.log_groups:
        table.add_row("logs", ", ".join(report.log_groups))
    if report.resumed:
        table.add_row("resumed", resumed_text(report.resumed))
    table.add_row("teardown", report.teardown)
    if report.resume_command:
        table.add_row("resume with", report.resume_command)
    if report.kept_usd_per_day is not None and report.outcome != "succeeded":
        table.add_row(
            "keeping it costs",
            f"about {_usd(report.kept_usd_per_day)}/day (the working bucket's storage; "
            "--keep-failed 0 tears a failed run down)",
        )
    if report.teardown != "destroyed" and report.destroy_command and report.teardown != "not needed":
        table.add_row("remove with", report.destroy_command)
    if report.estimate_usd is not None:
        cost = f"estimate ${report.estimate_usd:.4f}"
        if report.actual_usd is not None:
            cost += f", actual ${report.actual_usd:.4f}"
        table.add_row("cost", cost)
    out.print(table)


def _tasks_line(plan: JobPlan) -> str:
    """Tasks over every step (``in 2 steps`` when there are several), and the input."""
    steps = plan.steps
    maps = sum(len(s.map_tasks) for s in steps)
    reduces = sum(len(s.reduce_tasks) for s in steps)
    several = f" in {len(steps)} steps" if len(steps) > 1 else ""
    return (f"{maps} map, {reduces} reduce{several} over {len(plan.objects)} objects "
            f"({format_size(plan.input_bytes)})")


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


def _function_of(phase: str) -> str:
    """The function a phase ran on (``steps[1].merge-1`` -> ``merge1``), or the name as
    it is when it is no phase of the stack's."""
    try:
        return phase_function(phase)
    except ValueError:
        return phase


def failure_hint(last: Snapshot, log_groups: Sequence[str], logs_command: str) -> str:
    """Where to read more: ``mrspec logs`` (saved before teardown), and the failed phases'
    log groups while the stack is up."""
    failed = {_function_of(p.phase) for p in last.phases if p.unsuccessful}
    names = [g for g in log_groups if any(g.endswith(f"-{function}") for function in failed)]
    names = names or list(log_groups)
    where = f" (CloudWatch: {', '.join(names)})" if names else ""
    return f"`{logs_command}` prints the failed tasks' errors and logs{where}"


def resumed_text(resumed: dict[str, list[int]]) -> str:
    """What a resume runs again, by phase, leaving out the phases that had finished (in a
    job with steps most of them): ``2 steps[1].reduce task(s) run again``."""
    again = [f"{len(ids)} {phase}" for phase, ids in resumed.items() if ids]
    return (", ".join(again) + " task(s) run again") if again else "no task to run again"
