"""Rendering an estimate: a rich terminal report and a markdown pull-request comment.

Both show the same sections in the same order (docs/plan.md explains each line):
work, phases (each phase's largest task), resources, cost per service with the total and
the budget, free tier (apart), time, limits, assumptions, warnings, price data. ``--json`` is ``Estimate.to_json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mrspec.aws.state import DEFAULT_KEEP_FAILED
from mrspec.cost.estimate import Estimate
from mrspec.cost.model import PhaseTiming
from mrspec.units import format_duration, format_size

if TYPE_CHECKING:
    from rich.console import Console


def usd(value: float) -> str:
    """Dollars: cents from one cent up, otherwise three significant digits."""
    if value == 0:
        return "$0.00"
    if abs(value) >= 0.01:
        return f"${value:,.2f}"
    return f"${value:.6f}" if abs(value) >= 0.0000005 else "<$0.000001"


def quantity(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"


def _value(value: float) -> str:
    return f"{value:g}"


def work_rows(e: Estimate) -> list[tuple[str, str]]:
    rows = [
        ("input objects", f"{e.input_objects:,}"),
        ("input bytes", f"{e.input_bytes:,} ({format_size(e.input_bytes)})"),
        ("splits", f"{e.splits:,}"),
        ("map tasks (bins)", f"{e.map_tasks:,}"),
        ("partitions", f"{e.partitions:,}" if e.partitions else "0 (map-only job)"),
        ("reduce tasks", f"{e.reduce_tasks:,}"),
    ]
    phases = {p.name: p for p in e.phases}
    for step in e.timing.steps():  # each step's ("steps[1].map waves" in a job with steps)
        for pt in (step.map, step.reduce):
            if pt is None:
                continue
            phase = phases[pt.name]
            rows.append(_waves_row(pt, phase.execution_type))
    if e.params:
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in e.params.items())
        rows.append(("params", shown))
    return rows


def _waves_row(pt: PhaseTiming, execution_type: str) -> tuple[str, str]:
    return (f"{pt.name} waves", f"{pt.waves:,} at concurrency {pt.concurrency:,} "
            f"({execution_type} children)")


PHASE_HEADER = ("phase", "tasks", "timeout", "memory", "GETs", "PUTs", "LISTs", "task time",
                "peak", "payload")


def phase_rows(e: Estimate) -> list[tuple[str, ...]]:
    """One row per phase: its limits, then its largest task's predicted figures."""
    rows: list[tuple[str, ...]] = []
    for p in e.predictions:
        t = p.per_task
        rows.append((
            p.name, f"{p.tasks:,}", format_duration(p.timeout_s), f"{p.memory_mb:,} MB",
            f"{t.get_requests:,}", f"{t.put_requests:,}", f"{t.list_requests:,}",
            format_duration(t.seconds), f"{t.peak_memory_mb:,.0f} MB", format_size(t.payload_bytes),
        ))
    return rows


LIMIT_HEADER = ("limit", "value", "limit", "ok")


def limit_rows(e: Estimate) -> list[tuple[str, ...]]:
    return [
        (c.name, f"{quantity(round(c.value, 2))} {c.unit}", f"{quantity(c.limit)} {c.unit}",
         "ok" if c.ok else "OVER")
        for c in e.limits
    ]


def budget_line(e: Estimate) -> str:
    """The spec's limits.budget_usd against the estimate (apply refuses a run over it)."""
    if e.budget_usd is None:
        return "budget: none (limits.budget_usd is not set)"
    verdict = "within" if e.within_budget else "OVER: apply refuses this run"
    return (f"budget: {usd(e.budget_usd)} (limits.budget_usd), estimate "
            f"{usd(e.total_usd)}: {verdict}")


def time_rows(e: Estimate) -> list[tuple[str, str]]:
    t = e.timing
    rows = [("driver (upload manifests, start, poll)", format_duration(t.driver_s))]
    for pt in t.phase_timings():  # every step's phases in run order
        rows.append(
            (f"{pt.name} phase", f"{format_duration(pt.phase_s)} ({pt.waves} wave(s) x "
             f"{format_duration(pt.longest_task_s)} longest task)")
        )
    rows.append(("commit", format_duration(t.commit_s)))
    rows.append(("total wall time", format_duration(t.total_s)))
    return rows


def pricing_line(e: Estimate) -> str:
    p = e.pricing
    return (
        f"prices: {p.region} from {p.path} (data {p.date}; region {p.region_date}: "
        f"{p.region_source})"
    )


def keep_failed_line(e: Estimate) -> str:
    """What waiting costs: keeping a failed run for ``apply --resume`` (``--keep-failed``)."""
    k = e.kept_failed
    if k is None:
        return ""
    return (
        f"keeping a failed run for --resume costs about {usd(k.usd_per_day)} per day: up to "
        f"{format_size(k.bytes)} in the working bucket at ${k.price_gb_month}/GB-month "
        "(S3 Standard); idle functions and the state machine cost nothing "
        f"(apply --keep-failed DURATION, default {DEFAULT_KEEP_FAILED}; 0 tears it down)"
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def render_terminal(e: Estimate, console: Console) -> None:
    from rich import box
    from rich.table import Table

    console.print(
        f"[bold]mrspec plan[/bold] {e.job}  ({e.spec_path or 'spec'})  "
        f"region {e.region}, {e.architecture}"
    )
    work = Table(title="Work", box=box.SIMPLE, show_header=False, title_justify="left")
    work.add_column("what")
    work.add_column("value", justify="right")
    for k, v in work_rows(e):
        work.add_row(k, v)
    # a measurement: on the terminal only, so markdown reports stay reproducible
    work.add_row("input listing", f"{e.listing_seconds:.2f} s")
    console.print(work)
    console.print(_rich_table("Phases (the largest task of each)", PHASE_HEADER, phase_rows(e)))

    if e.resources:
        res = Table(title="Resources to create", box=box.SIMPLE, title_justify="left")
        res.add_column("kind")
        res.add_column("name", overflow="fold")
        res.add_column("detail")
        for r in e.resources:
            res.add_row(r.kind, r.name, r.detail)
        console.print(res)

    cost = Table(title="Estimated cost (USD)", box=box.SIMPLE, title_justify="left")
    for col, justify in (("service", "left"), ("item", "left"), ("quantity", "right"),
                         ("unit", "left"), ("cost", "right")):
        cost.add_column(col, justify=justify)  # type: ignore[arg-type]
    by_service = e.cost.by_service()
    for service, subtotal in by_service.items():
        for line in e.cost.lines:
            if line.service == service:
                cost.add_row(service, line.item, quantity(line.quantity), line.unit, usd(line.usd))
        cost.add_row("", f"[italic]{service} subtotal[/italic]", "", "", usd(subtotal))
    cost.add_row("[bold]total[/bold]", "", "", "", f"[bold]{usd(e.cost.total_usd)}[/bold]")
    console.print(cost)
    console.print(budget_line(e), highlight=False, markup=False)
    if e.kept_failed is not None:
        console.print(keep_failed_line(e), highlight=False, markup=False)

    free = Table(title="Free tier (shown apart, not subtracted)", box=box.SIMPLE,
                 title_justify="left")
    for col in ("service", "allowance", "quantity", "unit", "worth"):
        free.add_column(col)
    for line in e.cost.free_tier:
        free.add_row(line.service, line.item, quantity(line.quantity), line.unit, usd(line.usd))
    free.add_row("", "could cover at most", "", "", usd(e.cost.free_tier_usd))
    console.print(free)

    time = Table(title="Estimated time", box=box.SIMPLE, show_header=False, title_justify="left")
    time.add_column("phase")
    time.add_column("time", justify="right")
    for k, v in time_rows(e):
        time.add_row(k, v)
    console.print(time)
    console.print(_rich_table("AWS limits (apply refuses a run over any)", LIMIT_HEADER,
                              limit_rows(e)))

    assumptions = Table(title="Assumptions", box=box.SIMPLE, title_justify="left")
    for col in ("name", "value", "unit", "source", "meaning"):
        assumptions.add_column(col)
    for a in e.assumptions:
        assumptions.add_row(a.name, _value(a.value), a.unit, a.source, a.description)
    console.print(assumptions)

    if e.warnings:
        console.print("[bold yellow]Warnings[/bold yellow]")
        for w in e.warnings:
            console.print(f"  [yellow]![/yellow] {w}", highlight=False)
    console.print(pricing_line(e), highlight=False)


def _rich_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Any:
    from rich import box
    from rich.table import Table

    # Rows are scanned by their label (a phase: "steps[1].reduce"), so the label column
    # never wraps nor shrinks to "step…"; one space between columns and none at the edges
    # leave the figures room in an 80-column terminal (rich's width when output is piped).
    table = Table(title=title, box=box.SIMPLE, title_justify="left", show_edge=False,
                  pad_edge=False, collapse_padding=True)
    label_width = max((len(row[0]) for row in rows), default=len(header[0]))
    table.add_column(header[0], justify="left", no_wrap=True, min_width=label_width)
    for col in header[1:]:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def _md_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return out


def render_markdown(e: Estimate) -> str:
    lines = [
        f"### mrspec plan: `{e.job}`",
        "",
        f"**Estimated cost {usd(e.cost.total_usd)}**, wall time about "
        f"{format_duration(e.timing.total_s)} ({e.region}, {e.architecture}).",
        "",
    ]
    lines += _md_table(("work", "value"), work_rows(e))
    lines += ["", "#### Phases (the largest task of each)", ""]
    lines += _md_table(PHASE_HEADER, phase_rows(e))
    lines += ["", "#### Cost", ""]
    rows: list[tuple[str, ...]] = [
        (line.service, line.item, quantity(line.quantity), line.unit, usd(line.usd))
        for line in e.cost.lines
    ]
    rows += [(f"**{s}**", "subtotal", "", "", usd(v)) for s, v in e.cost.by_service().items()]
    rows.append(("**total**", "", "", "", f"**{usd(e.cost.total_usd)}**"))
    lines += _md_table(("service", "item", "quantity", "unit", "cost"), rows)
    lines += [
        "",
        f"Free tier (not subtracted): could cover at most {usd(e.cost.free_tier_usd)} "
        "if the account's monthly allowances are unused.",
        "",
        budget_line(e).capitalize() + ".",
        "",
        *([_sentence(keep_failed_line(e)), ""] if e.kept_failed else []),
        "#### Time",
        "",
    ]
    lines += _md_table(("phase", "time"), time_rows(e))
    failed = [c for c in e.limits if not c.ok]
    lines += ["", f"AWS limits: {len(e.limits) - len(failed)} of {len(e.limits)} checks pass"
              + (f"; over: {', '.join(c.name for c in failed)}." if failed else ".")]
    if e.warnings:
        lines += ["", "#### Warnings", ""]
        lines += [f"- {w}" for w in e.warnings]
    if e.resources:
        lines += ["", "<details><summary>Resources to create</summary>", ""]
        lines += _md_table(("kind", "name", "detail"), [(r.kind, f"`{r.name}`", r.detail)
                                                       for r in e.resources])
        lines += ["", "</details>"]
    lines += ["", "<details><summary>AWS limits</summary>", ""]
    lines += _md_table(LIMIT_HEADER, limit_rows(e))
    lines += ["", "</details>"]
    lines += ["", "<details><summary>Assumptions</summary>", ""]
    lines += _md_table(
        ("name", "value", "unit", "source", "meaning"),
        [(a.name, _value(a.value), a.unit, a.source, a.description) for a in e.assumptions],
    )
    lines += ["", "</details>", "", f"<sub>{pricing_line(e)}</sub>", ""]
    return "\n".join(lines)
