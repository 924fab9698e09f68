"""AWS's hard limits, checked before anything is created.

``check_hard_limits(spec, phases, model, assumptions)`` returns one :class:`LimitCheck`
per limit ``plan`` can know: each phase's task time against its timeout and Lambda's
15 minutes, EXPRESS children's 5 minutes, each phase's memory, each task's Distributed
Map item / state input (256 KiB), Distributed Map concurrency (10,000), the account's
Lambda concurrency (an assumption unless the driver read the account's), each role's
IAM policies (10,240 characters inline together, 6,144 per managed policy) and the
Lambda package (250 MB unzipped). ``plan`` prints them all; ``apply`` refuses a run
with any failed one (:func:`refuse_failed_limits`, exit code 3), naming the limit, the
figure and the setting to change.

The figures come from small functions (:func:`role_inline_policy_chars`,
:func:`managed_policy_chars`, :func:`package_unzipped_bytes`, the payloads of
``mrspec.cost.phases``) so they can follow their owners' modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mrspec.cost.assumptions import Assumptions
from mrspec.cost.phases import PhasePrediction
from mrspec.errors import RefusedError

if TYPE_CHECKING:
    from mrspec.aws.model import Role, StackModel
    from mrspec.spec.model import JobSpec

MAX_STATE_PAYLOAD = 262_144  # bytes: Step Functions state input / Distributed Map item
MAX_DISTRIBUTED_MAP_CONCURRENCY = 10_000
MAX_LAMBDA_TIMEOUT_S = 900
MAX_EXPRESS_S = 300
MAX_ROLE_INLINE_POLICY_CHARS = 10_240  # all inline policies of a role, whitespace not counted
MAX_MANAGED_POLICY_CHARS = 6_144
MANAGED_POLICIES_PER_ROLE = 10  # attached to one role (the default quota)
MAX_PACKAGE_UNZIPPED = 250 * 1024 * 1024  # bytes (Lambda zip deployments)
ACCOUNT_CONCURRENCY_CHECK = "account Lambda concurrency"

_FIXED_ITEM = "this item has a fixed shape: report it as a mrspec bug"


def phase_fixes(kind: str, step: int, spec: JobSpec | None) -> tuple[str, str, str]:
    """What to change when a phase's (time, memory, payload) passes its limit, naming the
    step's own settings (``steps[1].reduce.memory`` in a job with steps; ``spec`` None:
    a one-step job's paths)."""
    def at(i: int, path: str) -> str:
        return spec.setting(i, path) if spec is not None else path

    def s(path: str) -> str:
        return at(step, path)

    smaller = spec.smaller_map_input(step) if spec is not None else "lower map.bin_size"
    last = len(spec.steps) - 1 if spec is not None else 0
    fewer = f"fewer tasks (a larger {at(0, 'map.bin_size')}, fewer {at(last, 'reduce.partitions')})"
    if kind == "map":
        payload = (f"lower {s('map.bin_size')} or raise input.split_size (fewer splits per map "
                   "task)" if step == 0 else _FIXED_ITEM)
        return (f"{smaller}, or raise {s('map.timeout')} or {s('map.memory')}",
                f"raise {s('map.memory')} or {smaller}", payload)
    if kind == "merge":
        return (f"raise {s('reduce.timeout')} (merge tasks run with the reduce section's "
                "settings) or shrink the shuffle (a combiner)",
                f"raise {s('reduce.memory')} (merge tasks use it)", _FIXED_ITEM)
    if kind == "reduce":
        return (f"raise {s('reduce.partitions')}, {s('reduce.memory')} or {s('reduce.timeout')}",
                f"raise {s('reduce.memory')} or {s('reduce.partitions')}", _FIXED_ITEM)
    return (f"the commit's limits are fixed: {fewer}", fewer,
            "this input grows with the phases only: report it as a mrspec bug")


@dataclass(frozen=True)
class LimitCheck:
    name: str  # e.g. "map task time", "IAM inline policies of role lambda"
    value: float
    limit: float
    unit: str
    setting: str  # what to change when the check fails

    @property
    def ok(self) -> bool:
        return self.value <= self.limit

    def message(self) -> str:
        return (
            f"{self.name} is {_figure(self.value)} {self.unit}, over the limit of "
            f"{_figure(self.limit)} {self.unit}: {self.setting}"
        )

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": round(self.value, 3), "limit": self.limit,
                "unit": self.unit, "ok": self.ok, "setting": self.setting}


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or float(value).is_integer() else f"{value:,.1f}"


def role_inline_policy_chars(role: Role) -> int:
    """All inline policies of ``role`` together (IAM's aggregate limit per role)."""
    from mrspec.aws.policy_fit import policy_chars

    return sum(policy_chars(p.document) for p in role.policies)


def managed_policy_chars(model: StackModel) -> list[tuple[str, int]]:
    """(name, characters) of each customer managed policy the stack creates, if any."""
    from mrspec.aws.policy_fit import policy_chars

    out: list[tuple[str, int]] = []
    # the roles hold them (aws.policy_fit: permissions too large to be inline)
    on_roles = [m for r in model.roles for m in getattr(r, "managed_policies", ())]
    for policy in (*getattr(model, "managed_policies", ()), *on_roles):
        out.append((str(policy.name), policy_chars(policy.document)))
    return out


def package_unzipped_bytes(spec: JobSpec) -> int | None:
    """The job's code and mrspec's handler modules, as the package holds them unzipped;
    vendored requirements are only known when ``apply`` builds the package (it checks
    the built one). None when the code folder cannot be read."""
    import os

    from mrspec.aws.package import code_files, runtime_module_files
    from mrspec.errors import MrspecError

    try:
        files = {**runtime_module_files(), **code_files(spec)}
    except (MrspecError, OSError):
        return None
    return sum(os.path.getsize(path) for path in files.values())


def phase_checks(
    phases: Sequence[PhasePrediction], a: Assumptions, spec: JobSpec | None = None
) -> list[LimitCheck]:
    out: list[LimitCheck] = []
    for p in phases:
        t = p.per_task
        time_fix, memory_fix, payload_fix = phase_fixes(p.kind, p.step, spec)
        out.append(LimitCheck(f"{p.name} task time", t.seconds, p.timeout_s, "s", time_fix))
        if p.execution_type == "EXPRESS":
            out.append(LimitCheck(f"{p.name} EXPRESS child duration", t.seconds, MAX_EXPRESS_S,
                                  "s", time_fix + "; or set a timeout above 300 s "
                                  "(STANDARD children)"))
        out.append(LimitCheck(f"{p.name} task memory", t.peak_memory_mb, p.memory_mb, "MB",
                              memory_fix))
        out.append(LimitCheck(f"{p.name} task payload", t.payload_bytes, MAX_STATE_PAYLOAD,
                              "bytes", payload_fix))
        if p.phase is not None:
            out.append(LimitCheck(f"{p.name} Distributed Map concurrency", p.max_concurrency,
                                  MAX_DISTRIBUTED_MAP_CONCURRENCY, "children",
                                  "lower limits.max_concurrency"))
    longest = max(phases, key=lambda p: p.per_task.seconds)
    out.append(LimitCheck(f"Lambda 15-minute limit ({longest.name})", longest.per_task.seconds,
                          MAX_LAMBDA_TIMEOUT_S, "s",
                          phase_fixes(longest.kind, longest.step, spec)[0]))
    demand = max((min(p.tasks, p.max_concurrency) for p in phases if p.phase), default=0)
    out.append(LimitCheck(ACCOUNT_CONCURRENCY_CHECK, demand,
                          a["account_lambda_concurrency"], "executions",
                          "lower limits.max_concurrency, or ask AWS for more (Service Quotas: "
                          "Lambda concurrent executions; plan: --assume "
                          "account_lambda_concurrency=N)"))
    return out


def stack_checks(spec: JobSpec, model: StackModel | None) -> list[LimitCheck]:
    out: list[LimitCheck] = []
    if model is not None:
        for role in model.roles:
            out.append(LimitCheck(
                f"IAM inline policies of role {role.logical_name}", role_inline_policy_chars(role),
                MAX_ROLE_INLINE_POLICY_CHARS, "characters",
                "fewer input prefixes (a common parent prefix)"))
        for name, chars in managed_policy_chars(model):
            out.append(LimitCheck(f"IAM managed policy {name}", chars, MAX_MANAGED_POLICY_CHARS,
                                  "characters", "fewer input prefixes (a common parent prefix)"))
        for role in model.roles:
            attached = len(getattr(role, "managed_policies", ()))
            if attached:
                out.append(LimitCheck(
                    f"IAM managed policies of role {role.logical_name}", attached,
                    MANAGED_POLICIES_PER_ROLE, "policies", "read from fewer buckets or prefixes"))
    size = package_unzipped_bytes(spec)
    if size is not None:
        out.append(LimitCheck("Lambda package (code + mrspec, unzipped)", size,
                              MAX_PACKAGE_UNZIPPED, "bytes",
                              "exclude data and tooling from code.path (code.exclude)"))
    return out


def check_hard_limits(
    spec: JobSpec, phases: Sequence[PhasePrediction], model: StackModel | None, a: Assumptions
) -> tuple[LimitCheck, ...]:
    return tuple(phase_checks(phases, a, spec) + stack_checks(spec, model))


def refuse_failed_limits(job: str, checks: Sequence[LimitCheck]) -> None:
    """Raise ``RefusedError`` (exit code 3) naming every failed check."""
    failed = [c for c in checks if not c.ok]
    if not failed:
        return
    raise RefusedError(
        f"job {job!r} would pass AWS limits: " + "; ".join(c.message() for c in failed),
        hint="nothing was created; `mrspec plan` lists every limit check (limits in --json)",
    )
