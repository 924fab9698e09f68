"""IAM policy documents as frozen data: statements, conditions, inline and customer
managed policies (``mrspec.aws.iam`` builds them, ``mrspec.aws.policy_fit`` sizes and
splits them, ``mrspec.aws.model.Role`` holds them). No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

IAM_POLICY_VERSION = "2012-10-17"


@dataclass(frozen=True)
class Condition:
    """``{"<operator>": {"<key>": [values]}}`` in a statement."""

    operator: str  # e.g. "StringLike", "Bool"
    key: str  # e.g. "s3:prefix", "aws:SecureTransport"
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...] = ()
    effect: Literal["Allow", "Deny"] = "Allow"
    conditions: tuple[Condition, ...] = ()
    # Resource policies and trust policies name a principal: "*" (anyone) or a service.
    principal_any: bool = False
    principal_service: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect}
        if self.principal_any:
            out["Principal"] = "*"
        elif self.principal_service is not None:
            out["Principal"] = {"Service": self.principal_service}
        out["Action"] = list(self.actions)
        if self.resources:
            out["Resource"] = list(self.resources)
        if self.conditions:
            cond: dict[str, dict[str, list[str]]] = {}
            for c in self.conditions:
                cond.setdefault(c.operator, {})[c.key] = list(c.values)
            out["Condition"] = cond
        return out


@dataclass(frozen=True)
class PolicyDocument:
    statements: tuple[Statement, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "Version": IAM_POLICY_VERSION,
            "Statement": [s.to_json() for s in self.statements],
        }

    def statement(self, sid: str) -> Statement:
        for s in self.statements:
            if s.sid == sid:
                return s
        raise KeyError(sid)


@dataclass(frozen=True)
class InlinePolicy:
    name: str
    document: PolicyDocument


@dataclass(frozen=True)
class ManagedPolicy:
    """A customer managed policy created with the stack and attached to one role: where
    the role's permissions do not fit IAM's 10,240 characters of inline policies
    (``mrspec.aws.policy_fit``)."""

    name: str
    arn: str
    document: PolicyDocument
