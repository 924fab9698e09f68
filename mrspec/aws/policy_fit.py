"""IAM's size limits, and fitting a role's permissions inside them.

IAM refuses, at deploy time, a role whose inline policies together pass 10,240
characters, a customer managed policy over 6,144 characters, or an 11th managed policy
on one role (whitespace is not counted; AWS "IAM and AWS STS quotas"). A job reading
365 daily prefixes needs ~25,000 characters of S3 grants. So a role's permissions go,
in this order of preference:

1. one inline policy, when it fits the inline aggregate (every small job: nothing
   changes for them);
2. otherwise split, statement by statement (a statement with too many resources or
   ``s3:prefix`` values is cut into several), into up to 10 customer managed policies of
   the stack, attached to the role: the same grants, exactly;
3. only when that cannot hold them, the input prefixes are widened to their parent
   folders, deepest first, one level at a time, until the grants fit. Each widening is
   reported (``Fitted.widened``): it is access the job did not ask for.

``policy_sizes`` gives every container's size and limit (compile prints it; the plan's
``limits`` checks read it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mrspec.aws.model import InlinePolicy, ManagedPolicy, PolicyDocument, Role, Statement
from mrspec.aws.names import Location
from mrspec.errors import RefusedError
from mrspec.spec.model import split_s3_uri

INLINE_AGGREGATE_LIMIT = 10_240  # characters of all of a role's inline policies
MANAGED_POLICY_LIMIT = 6_144  # characters of one customer managed policy
MANAGED_POLICIES_PER_ROLE = 10  # attached to one role (the default quota)
_WHITESPACE = re.compile(r"\s")


def policy_chars(document: PolicyDocument) -> int:
    """The characters IAM counts against its size limits: the policy's JSON without any
    whitespace (IAM does not count white space). The one counter: the fitting here and
    the plan's ``limits`` checks (``mrspec.cost.limits``) both use it."""
    return len(_WHITESPACE.sub("", json.dumps(document.to_json())))


@dataclass(frozen=True)
class PolicySize:
    container: str  # e.g. "role mrspec-x-lambda: inline policies together"
    size: int
    limit: int
    unit: str  # "characters" | "policies"

    @property
    def ok(self) -> bool:
        return self.size <= self.limit

    def to_json(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "size": self.size,
            "limit": self.limit,
            "unit": self.unit,
            "ok": self.ok,
        }

    def describe(self) -> str:
        return f"{self.container}: {self.size:,} of {self.limit:,} {self.unit}"


def policy_sizes(roles: Iterable[Role]) -> list[PolicySize]:
    """Every IAM policy container of the roles, with its size and IAM's limit."""
    out: list[PolicySize] = []
    for role in roles:
        inline = sum(policy_chars(p.document) for p in role.policies)
        out.append(
            PolicySize(
                f"role {role.name}: inline policies together",
                inline,
                INLINE_AGGREGATE_LIMIT,
                "characters",
            )
        )
        for managed in role.managed_policies:
            out.append(
                PolicySize(
                    f"managed policy {managed.name}",
                    policy_chars(managed.document),
                    MANAGED_POLICY_LIMIT,
                    "characters",
                )
            )
        if role.managed_policies:
            out.append(
                PolicySize(
                    f"role {role.name}: managed policies attached",
                    len(role.managed_policies),
                    MANAGED_POLICIES_PER_ROLE,
                    "policies",
                )
            )
    return out


@dataclass(frozen=True)
class Fitted:
    inline: tuple[InlinePolicy, ...]
    managed: tuple[ManagedPolicy, ...]
    widened: tuple[str, ...]  # one line per widened grant: what and why


def managed_policy_name(role_name: str, index: int) -> str:
    """The stack's managed policies of a role: ``<role>-1`` .. ``<role>-10``."""
    return f"{role_name}-{index}"


def fit_policies(
    role_name: str,
    location: Location,
    policy_name: str,
    build: Callable[[Sequence[str]], PolicyDocument],
    input_prefixes: Sequence[str] = (),
) -> Fitted:
    """The role's policies within IAM's limits; ``build`` makes the document for a list
    of input prefixes (widened only when nothing else fits)."""
    prefixes = list(input_prefixes)
    widened: list[str] = []
    while True:
        document = build(prefixes)
        if policy_chars(document) <= INLINE_AGGREGATE_LIMIT:
            return Fitted((InlinePolicy(policy_name, document),), (), tuple(widened))
        chunks = pack(document.statements, MANAGED_POLICY_LIMIT)
        if chunks is not None and len(chunks) <= MANAGED_POLICIES_PER_ROLE:
            managed = tuple(
                ManagedPolicy(
                    managed_policy_name(role_name, i),
                    location.policy_arn(managed_policy_name(role_name, i)),
                    PolicyDocument(chunk),
                )
                for i, chunk in enumerate(chunks, 1)
            )
            return Fitted((), managed, tuple(widened))
        wider, notes = widen_once(prefixes)
        if wider == prefixes:
            raise RefusedError(
                f"the permissions of role {role_name} do not fit IAM's limits "
                f"({policy_chars(document):,} characters; at most "
                f"{MANAGED_POLICIES_PER_ROLE} managed policies of {MANAGED_POLICY_LIMIT:,}) "
                "even with every input prefix widened to its bucket",
                hint=f"input.prefix names {len(prefixes)} prefixes in "
                f"{len({split_s3_uri(p)[0] for p in prefixes})} buckets: read from fewer "
                "buckets (a few hundred at most), e.g. by copying the input under one",
            )
        widened.append(
            f"widening input access one folder level: the grants for {len(prefixes)} input "
            f"prefixes need {policy_chars(document):,} IAM policy characters, more than "
            f"{MANAGED_POLICIES_PER_ROLE} managed policies of {MANAGED_POLICY_LIMIT:,} hold"
        )
        widened += notes
        prefixes = wider


def pack(statements: Sequence[Statement], limit: int) -> list[tuple[Statement, ...]] | None:
    """Statements (cut where one alone is too big) packed in order into documents of at
    most ``limit`` characters; None when a statement cannot be cut small enough."""
    pieces: list[Statement] = []
    for statement in statements:
        cut = _cut(statement, limit)
        if cut is None:
            return None
        pieces += cut
    chunks: list[tuple[Statement, ...]] = []
    current: list[Statement] = []
    for piece in pieces:
        if current and policy_chars(PolicyDocument((*current, piece))) > limit:
            chunks.append(tuple(current))
            current = []
        current.append(piece)
    if current:
        chunks.append(tuple(current))
    return chunks


def _cut(statement: Statement, limit: int) -> list[Statement] | None:
    """The statement, or its resources (or condition values) in halves, until each piece
    fits a document of ``limit`` characters on its own. Sids get a numeric suffix."""
    if policy_chars(PolicyDocument((statement,))) <= limit:
        return [statement]
    halves = _halves(statement)
    if halves is None:
        return None
    out: list[Statement] = []
    for half in halves:
        cut = _cut(half, limit)
        if cut is None:
            return None
        out += cut
    return [replace(s, sid=f"{statement.sid}{i}") for i, s in enumerate(out, 1)]


def _halves(statement: Statement) -> tuple[Statement, Statement] | None:
    if len(statement.resources) > 1:
        mid = len(statement.resources) // 2
        return (
            replace(statement, resources=statement.resources[:mid]),
            replace(statement, resources=statement.resources[mid:]),
        )
    if len(statement.conditions) == 1 and len(statement.conditions[0].values) > 1:
        cond = statement.conditions[0]
        mid = len(cond.values) // 2
        return (
            replace(statement, conditions=(replace(cond, values=cond.values[:mid]),)),
            replace(statement, conditions=(replace(cond, values=cond.values[mid:]),)),
        )
    return None


def _parent(key: str) -> str:
    """``logs/2024/01/`` -> ``logs/2024/``; ``logs/day-1`` -> ``logs/``; ``logs/`` -> ``""``."""
    trimmed = key[:-1] if key.endswith("/") else key
    cut = trimmed.rfind("/")
    return "" if cut < 0 else trimmed[: cut + 1]


def _depth(key: str) -> int:
    return key.rstrip("/").count("/") + (1 if key else 0)


def widen_once(prefixes: Sequence[str]) -> tuple[list[str], list[str]]:
    """The prefixes with the deepest ones replaced by their parent folders (and what each
    new parent stands for); unchanged when every prefix is a whole bucket."""
    keys = [split_s3_uri(p) for p in prefixes]
    deepest = max((_depth(k) for _, k in keys), default=0)
    if deepest == 0:
        return list(prefixes), []
    merged: dict[str, list[str]] = {}
    for (bucket, key), uri in zip(keys, prefixes, strict=True):
        new = f"s3://{bucket}/{_parent(key) if _depth(key) == deepest else key}"
        merged.setdefault(new, []).append(uri)
    # a prefix inside another one adds nothing
    kept = sorted(merged)
    kept = [p for p in kept if not any(p != q and p.startswith(q) for q in kept)]
    notes = [
        f"input access widened to {parent} (covering {len(merged[parent])} input prefixes)"
        for parent in kept
        if merged[parent] != [parent]
    ]
    return kept, notes
