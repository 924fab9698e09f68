"""What ``mrspec apply --local`` shows: progress bars per phase, then the run summary."""

from __future__ import annotations

import re
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from mrspec.units import format_size

PHASES = ("map", "reduce", "commit")


class LiveProgress:
    """One bar per phase on stderr, fed by the engine's progress callback."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("{task.description:<7}"),  # steps[1].reduce is longer: fine
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self._bars: dict[str, TaskID] = {}

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def update(self, phase: str, event: str, done: int, total: int) -> None:
        # a job with steps names its phases steps[1].map, steps[1].merge-1, ...
        if phase.startswith("steps[") and "." in phase:
            kind = phase.split(".", 1)[1]
            if kind not in PHASES and not kind.startswith("merge-"):
                return
        elif phase not in PHASES and not phase.startswith("merge-"):
            return
        if event == "start":
            self._bars[phase] = self._progress.add_task(phase, total=total or 1)
        bar = self._bars.get(phase)
        if bar is None:
            return
        if event == "end":
            self._progress.update(bar, completed=total or 1)
        else:
            self._progress.update(bar, completed=done)


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.0f} MB"


def _memory_line(kind: str, memory: dict[str, Any]) -> str:
    peaks = sorted(memory["peak_bytes_per_task"])
    if not peaks:
        return f"{kind}: no tasks"
    median = peaks[len(peaks) // 2]
    cap = memory["cap_mb"] * 1024**2
    share = 100 * peaks[-1] / cap if cap else 0
    return (
        f"{kind}: peak {_mb(peaks[-1])} (median {_mb(median)}) of {memory['cap_mb']:,} MB cap "
        f"({share:.0f}%), {len(peaks)} task(s)"
    )


def _step_phase(timing_key: str) -> str:
    """``steps_1_merge_1_seconds`` -> ``steps[1].merge-1`` (``plan_seconds`` -> ``plan``)."""
    name = re.sub(r"^steps_([0-9]+)_", r"steps[\1].", timing_key[: -len("_seconds")])
    return name.replace("_", "-")


def step_line(step: dict[str, Any]) -> str:
    """One step's records and tasks: ``steps[1]: 120 in, 120 mapped, 10 out (4 map, 1 reduce)``."""
    c, tasks = step["counters"], step["tasks"]
    merged = f", {tasks['merge']:,} merge" if tasks["merge"] else ""
    return (
        f"steps[{step['step']}]: {c.get('map_input_records', 0):,} in, "
        f"{c.get('map_output_records', 0):,} mapped, {c.get('output_records', 0):,} out "
        f"({tasks['map']:,} map{merged}, {tasks['reduce']:,} reduce)"
    )


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    timings = summary["timings"]
    tasks = summary["tasks"]
    records = summary["records"]
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("job", f"{summary['job']} (local, {summary['workers']} workers)")
    inp = summary["input"]
    table.add_row(
        "input",
        f"{inp['objects']:,} object(s), {format_size(inp['bytes'])}, {inp['splits']:,} split(s)",
    )
    retried = (
        f", {tasks['retried_attempts']} retried attempt(s)" if tasks["retried_attempts"] else ""
    )
    merged = f", {tasks['merge']:,} merge" if tasks.get("merge") else ""
    table.add_row("tasks", f"{tasks['map']:,} map{merged}, {tasks['reduce']:,} reduce{retried}")
    if "steps" not in summary:
        table.add_row(
            "records",
            f"{records['input']:,} in, {records['map_output']:,} mapped, {records['output']:,} out",
        )
    for step in summary.get("steps", []):
        table.add_row("records" if step["step"] == 0 else "", step_line(step))
    merges = sorted(
        (k[: -len("_seconds")].replace("_", "-") for k in timings if k.startswith("merge_")),
        key=lambda name: int(name.rsplit("-", 1)[1]),
    )
    phases = ", ".join(
        f"{name} {timings[key]:.2f}s"
        for name in ("plan", "map", *merges, "reduce", "commit")
        if (key := f"{name.replace('-', '_')}_seconds") in timings
    )
    if "steps" in summary:
        phases = ", ".join(
            f"{_step_phase(k)} {v:.2f}s"
            for k, v in timings.items()
            if k.endswith("_seconds") and k != "seconds"
        )
    table.add_row("time", f"{timings['seconds']:.2f}s ({phases})")
    for index, (kind, memory) in enumerate(summary["memory"].items()):
        table.add_row("memory" if index == 0 else "", _memory_line(kind, memory))
    counters = summary["counters"]
    table.add_row("counters", ", ".join(f"{k}={v:,}" for k, v in counters.items()))
    if summary["user_counters"]:
        table.add_row(
            "user counters", ", ".join(f"{k}={v:,}" for k, v in summary["user_counters"].items())
        )
    bad = summary["bad_records"]
    if bad:
        shown = "; ".join(f"{b['uri']}@{b['offset']}: {b['error']}" for b in bad[:5])
        more = f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""
        table.add_row("skipped", f"{len(bad)} bad record(s): {shown}{more}")
    for warning in summary.get("warnings", []):
        table.add_row("warning", warning)
    out = summary["output"]
    table.add_row(
        "output",
        f"{out['prefix']} ({out['parts']} part(s), {format_size(out['bytes'])}, {out['format']}; "
        f"manifest {out['manifest'] or '_SUCCESS'})",
    )
    console.print(table)
