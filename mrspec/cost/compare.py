"""Change review: the difference two versions of a spec make.

``old_spec_from_git(path, ref)`` reads the spec as it was at a git ref
(``git show REF:<path relative to the repo root>``) and loads it with its relative paths
resolved against today's folder, so ``--base-ref main`` compares like with like.
``compare(old, new)`` gives a :class:`Comparison` of resources, tasks, cost and time,
rendered as text/markdown or as JSON.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrspec.cost.estimate import Estimate
from mrspec.cost.render import usd
from mrspec.errors import MrspecError, SpecError
from mrspec.spec.model import JobSpec
from mrspec.units import format_duration


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise MrspecError("--base-ref needs git, which is not installed",
                          hint="install git or use --compare OLD.yaml") from exc


def old_spec_from_git(path: str | Path, ref: str) -> JobSpec:
    """The spec at ``path`` as it was at git ``ref`` (clear errors otherwise)."""
    from mrspec.spec.loader import validate_text

    spec_file = Path(path).resolve()
    folder = spec_file.parent
    top = _git(["rev-parse", "--show-toplevel"], folder)
    if top.returncode != 0:
        raise MrspecError(
            f"--base-ref {ref}: {path} is not inside a git repository",
            hint="run from a git checkout, or compare with --compare OLD.yaml",
        )
    root = Path(top.stdout.decode().strip()).resolve()
    rel = spec_file.relative_to(root).as_posix()
    if _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root).returncode != 0:
        raise MrspecError(
            f"--base-ref {ref}: no such commit, branch or tag in {root}",
            hint="fetch it first (git fetch origin main) or name an existing ref",
        )
    shown = _git(["show", f"{ref}:{rel}"], root)
    if shown.returncode != 0:
        raise MrspecError(
            f"--base-ref {ref}: {rel} did not exist at {ref}",
            hint="a new spec has nothing to compare with; drop --base-ref",
        )
    raw = shown.stdout
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MrspecError(f"{ref}:{rel} is not UTF-8 text") from exc
    spec, problems = validate_text(
        text, file=f"{ref}:{rel}", base=folder, source=spec_file,
        digest=hashlib.sha256(raw).hexdigest(),
    )
    if spec is None:
        raise SpecError(problems)
    return spec


@dataclass(frozen=True)
class Delta:
    what: str
    old: float
    new: float
    kind: str  # "count" | "usd" | "seconds" | "bytes"

    @property
    def change(self) -> float:
        return self.new - self.old

    def fmt(self, value: float) -> str:
        if self.kind == "usd":
            return usd(value)
        if self.kind == "seconds":
            return format_duration(value)
        return f"{value:,.0f}"

    def fmt_change(self) -> str:
        if self.change == 0:
            return "="
        sign = "+" if self.change > 0 else "-"
        text = sign + self.fmt(abs(self.change))
        if self.old:
            text += f" ({self.change / self.old:+.0%})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "old": round(self.old, 6), "new": round(self.new, 6),
                "change": round(self.change, 6), "kind": self.kind}


@dataclass(frozen=True)
class Comparison:
    old_label: str
    new_label: str
    deltas: tuple[Delta, ...]
    resources_added: tuple[str, ...]
    resources_removed: tuple[str, ...]
    resources_changed: tuple[str, ...]
    # "name: old -> new" for each parameter whose value differs ("(none)" when absent)
    params_changed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "old": self.old_label,
            "new": self.new_label,
            "deltas": [d.to_json() for d in self.deltas],
            "resources": {
                "added": list(self.resources_added),
                "removed": list(self.resources_removed),
                "changed": list(self.resources_changed),
            },
            "params_changed": list(self.params_changed),
        }


def compare(old: Estimate, new: Estimate, old_label: str, new_label: str) -> Comparison:
    deltas = [
        Delta("input objects", old.input_objects, new.input_objects, "count"),
        Delta("input bytes", old.input_bytes, new.input_bytes, "bytes"),
        Delta("splits", old.splits, new.splits, "count"),
        Delta("map tasks", old.map_tasks, new.map_tasks, "count"),
        Delta("reduce tasks", old.reduce_tasks, new.reduce_tasks, "count"),
        Delta("map waves", old.timing.map.waves, new.timing.map.waves, "count"),
        Delta("reduce waves", old.timing.reduce.waves if old.timing.reduce else 0,
              new.timing.reduce.waves if new.timing.reduce else 0, "count"),
    ]
    old_merges, new_merges = (sum(m.tasks for m in e.timing.merge) for e in (old, new))
    if old_merges or new_merges:
        deltas.append(Delta("merge tasks", old_merges, new_merges, "count"))
    deltas.append(Delta("AWS limit checks failed", len(old.failed_limits),
                        len(new.failed_limits), "count"))
    old_services, new_services = old.cost.by_service(), new.cost.by_service()
    for service in dict.fromkeys([*old_services, *new_services]):
        deltas.append(Delta(f"cost: {service}", old_services.get(service, 0.0),
                            new_services.get(service, 0.0), "usd"))
    deltas.append(Delta("cost: total", old.cost.total_usd, new.cost.total_usd, "usd"))
    deltas.append(Delta("wall time", old.timing.total_s, new.timing.total_s, "seconds"))

    def keyed(e: Estimate) -> dict[str, str]:
        # Names embed the job name; compare by kind and the name's role suffix.
        from mrspec.aws.model import NAME_PREFIX, job_name_part

        prefix = f"{NAME_PREFIX}{job_name_part(e.job)}"
        return {f"{r.kind} {r.name.replace(prefix, '<job>')}": r.detail for r in e.resources}

    before, after = keyed(old), keyed(new)
    return Comparison(
        old_label=old_label,
        new_label=new_label,
        deltas=tuple(deltas),
        resources_added=tuple(f"{k}: {after[k]}" for k in after if k not in before),
        resources_removed=tuple(f"{k}: {before[k]}" for k in before if k not in after),
        resources_changed=tuple(
            f"{k}: {before[k]} -> {after[k]}" for k in after if k in before and before[k] != after[k]
        ),
        params_changed=params_changed(old.params, new.params),
    )


def params_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """``name: old -> new`` for every parameter added, removed or set to another value."""

    def shown(values: Mapping[str, Any], name: str) -> str:
        return json.dumps(values[name]) if name in values else "(none)"

    names = sorted(set(old) | set(new))
    return tuple(
        f"{n}: {shown(old, n)} -> {shown(new, n)}"
        for n in names
        if n not in old or n not in new or old[n] != new[n] or type(old[n]) is not type(new[n])
    )


def render_comparison_markdown(c: Comparison) -> str:
    lines = [f"### mrspec plan: changes from `{c.old_label}` to `{c.new_label}`", "",
             "| what | old | new | change |", "| --- | --- | --- | --- |"]
    for d in c.deltas:
        lines.append(f"| {d.what} | {d.fmt(d.old)} | {d.fmt(d.new)} | {d.fmt_change()} |")
    resource_lines = (
        [f"- added: {r}" for r in c.resources_added]
        + [f"- removed: {r}" for r in c.resources_removed]
        + [f"- changed: {r}" for r in c.resources_changed]
    )
    lines += ["", "#### Resources", ""]
    lines += resource_lines or ["- no change"]
    if c.params_changed:
        lines += ["", "#### Parameters", ""]
        lines += [f"- `{p}`" for p in c.params_changed]
    return "\n".join(lines) + "\n"


def render_comparison_text(c: Comparison) -> str:
    width = max(len(d.what) for d in c.deltas)
    out = [f"changes from {c.old_label} to {c.new_label}:"]
    for d in c.deltas:
        out.append(f"  {d.what:<{width}}  {d.fmt(d.old):>12} -> {d.fmt(d.new):>12}  {d.fmt_change()}")
    out.append("resources:")
    res = (
        [f"  + {r}" for r in c.resources_added]
        + [f"  - {r}" for r in c.resources_removed]
        + [f"  ~ {r}" for r in c.resources_changed]
    )
    out += res or ["  no change"]
    if c.params_changed:
        out.append("params:")
        out += [f"  ~ {p}" for p in c.params_changed]
    return "\n".join(out) + "\n"
