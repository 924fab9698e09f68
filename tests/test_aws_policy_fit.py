"""IAM's size limits: a role's permissions fit them, exactly when they can, widened (and
said so) only when they cannot; both emitters create what the model holds."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import pulumi
from aws_emulation import ACCOUNT_ID, EmulatedAws, make_zip
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from aws_specs import make_spec
from test_aws_component import RecordingMocks, build, package_file
from test_aws_component import mocks as mocks  # the fixture
from test_driver_provision import _record

from mrspec.aws import policy_fit
from mrspec.aws.boto_provision import BotoProvisioner
from mrspec.aws.lower import lower
from mrspec.aws.model import PolicyDocument, Role, StackModel
from mrspec.aws.state import StateStore


def daily_prefixes(days: int) -> tuple[str, ...]:
    start = datetime.date(2025, 1, 1)
    return tuple(
        f"s3://company-logs/app/events/{start + datetime.timedelta(d):%Y/%m/%d}/"
        for d in range(days)
    )


def lowered(inputs: tuple[str, ...], **kwargs: Any) -> StackModel:
    return lower(make_spec(inputs=inputs), run_id="r1", account_id=ACCOUNT_ID, **kwargs)


def grants(role: Role) -> tuple[set[str], set[str]]:
    """(object ARNs of ReadInput*, s3:prefix values of ReadInputList*) over every policy."""
    docs = [p.document for p in role.policies] + [p.document for p in role.managed_policies]
    objects: set[str] = set()
    prefixes: set[str] = set()
    for doc in docs:
        for s in doc.statements:
            if s.sid.startswith("ReadInputList"):
                prefixes.update(v for c in s.conditions for v in c.values)
            elif s.sid.startswith("ReadInput"):
                objects.update(s.resources)
    return objects, prefixes


def test_365_daily_prefixes_fit_iams_limits_with_exactly_the_same_grants() -> None:
    inputs = daily_prefixes(365)
    model = lowered(inputs)
    role = model.role("lambda")
    # one inline policy would be far over the 10,240-character aggregate
    unsplit = PolicyDocument(
        tuple(s for p in (*role.policies, *role.managed_policies) for s in p.document.statements)
    )
    assert policy_fit.policy_chars(unsplit) > 2 * policy_fit.INLINE_AGGREGATE_LIMIT
    sizes = policy_fit.policy_sizes(model.roles)
    assert all(s.ok for s in sizes), [s.describe() for s in sizes]
    assert 2 <= len(role.managed_policies) <= policy_fit.MANAGED_POLICIES_PER_ROLE
    assert role.policies == ()
    objects, prefixes = grants(role)
    keys = [p[len("s3://company-logs/") :] for p in inputs]
    assert objects == {f"arn:aws:s3:::company-logs/{k}*" for k in keys}
    assert prefixes == {f"{k}*" for k in keys}
    assert model.iam_widened == ()
    # every statement id stays unique within its policy
    for managed in role.managed_policies:
        sids = [s.sid for s in managed.document.statements]
        assert len(sids) == len(set(sids))


def test_small_jobs_keep_one_inline_policy_per_role() -> None:
    model = lowered(("s3://corpus/books/",))
    for role in model.roles:
        assert len(role.policies) == 1 and role.managed_policies == ()
    sizes = policy_fit.policy_sizes(model.roles)
    assert [s.limit for s in sizes] == [10_240, 10_240]
    assert all(0 < s.size < 3_000 for s in sizes)


def test_too_many_prefixes_widen_to_parent_folders_and_say_what_widened() -> None:
    inputs = daily_prefixes(3000)  # ~260,000 characters of grants: no split holds them
    model = lowered(inputs)
    assert all(s.ok for s in policy_fit.policy_sizes(model.roles))
    objects, prefixes = grants(model.role("lambda"))
    granted = sorted(p[: -len("*")] for p in prefixes)
    assert objects == {f"arn:aws:s3:::company-logs/{g}*" for g in granted}
    # monthly folders, one level up from the days; every input is still readable
    assert all(g.count("/") == 4 for g in granted), granted[:3]
    for uri in inputs:
        key = uri[len("s3://company-logs/") :]
        assert any(key.startswith(g) for g in granted), key
    assert len(granted) == len({u[: -len("01/")] for u in inputs})
    assert model.iam_widened[0].startswith("widening input access one folder level")
    assert any("app/events/2025/01/ (covering 31 input prefixes)" in w for w in model.iam_widened)


def test_widen_once_merges_the_deepest_prefixes_only() -> None:
    wider, notes = policy_fit.widen_once(
        ["s3://b/a/x/1/", "s3://b/a/x/2/", "s3://b/a/y/", "s3://c/"]
    )
    assert wider == ["s3://b/a/x/", "s3://b/a/y/", "s3://c/"]
    assert notes == ["input access widened to s3://b/a/x/ (covering 2 input prefixes)"]
    assert policy_fit.widen_once(["s3://b/", "s3://c/"]) == (["s3://b/", "s3://c/"], [])


def test_the_boto3_provisioner_creates_attaches_and_removes_managed_policies(
    emulated_aws: EmulatedAws, tmp_path: Path
) -> None:
    model = lowered(daily_prefixes(365), emulator=True)
    package = tmp_path / "package.zip"
    package.write_bytes(make_zip({"mrspec/__init__.py": ""}))
    provisioner = BotoProvisioner(_record(model, tmp_path), StateStore(tmp_path / "state"))
    provisioner.up(model, package)
    iam = emulated_aws.client("iam")
    role = model.role("lambda")
    attached = iam.list_attached_role_policies(RoleName=role.name)["AttachedPolicies"]
    assert sorted(a["PolicyArn"] for a in attached) == sorted(m.arn for m in role.managed_policies)
    for managed in role.managed_policies:
        version = iam.get_policy(PolicyArn=managed.arn)["Policy"]["DefaultVersionId"]
        stored = iam.get_policy_version(PolicyArn=managed.arn, VersionId=version)
        document = stored["PolicyVersion"]["Document"]
        document = json.loads(document) if isinstance(document, str) else document
        assert document == managed.document.to_json()
    provisioner.destroy()
    assert iam.list_roles()["Roles"] == []
    assert iam.list_policies(Scope="Local")["Policies"] == []


@pulumi.runtime.test
def test_the_pulumi_component_creates_and_attaches_managed_policies(
    mocks: RecordingMocks, tmp_path: Path
) -> Any:
    model = lowered(daily_prefixes(365))
    role = model.role("lambda")
    _job, done = build(model, package_file(tmp_path))

    def check(_: Any) -> None:
        created = {i["name"]: json.loads(i["policy"]) for _, i in mocks.of_type("aws:iam/policy:Policy")}
        assert created == {m.name: m.document.to_json() for m in role.managed_policies}
        attachments = mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        assert len(attachments) == len(role.managed_policies)
        assert {i["role"] for _, i in attachments} == {role.name}
        inline = [i for _, i in mocks.of_type("aws:iam/rolePolicy:RolePolicy")]
        assert [i["name"] for i in inline] == ["mrspec-workflow"]  # the states role's only

    return done.apply(check)


def test_compile_shows_policy_sizes_for_365_prefixes_and_check_passes(tmp_path: Path) -> None:
    from aws_specs import REPO
    from click.testing import CliRunner

    from mrspec.commands.compile import command

    spec = str(REPO / "specs" / "wordcount" / "job.yaml")
    inputs = [arg for p in daily_prefixes(365) for arg in ("--input", p)]
    args = ["--out", str(tmp_path), *inputs, "--output", "s3://results/wc/", spec]
    result = CliRunner().invoke(command, args, standalone_mode=False)
    assert result.exception is None and result.return_value == 0, result.output
    assert "inline policies together: 0 of 10,240 characters" in result.output
    # 365 prefixes need several managed policies (how many depends on the role's other
    # statements: the merge phase's grants added one); IAM allows 10 per role.
    attached = re.search(r"managed policies attached: (\d+) of 10 policies", result.output)
    assert attached is not None and 2 <= int(attached.group(1)) <= 10, result.output
    lines = [line for line in result.output.splitlines() if "managed policy " in line]
    assert len(lines) == int(attached.group(1))
    assert all(" of 6,144 characters" in line for line in lines)
    written = json.loads((tmp_path / "wordcount" / "iam" / "lambda.json").read_text())
    assert len(written["managed_policies"]) == len(lines) and written["inline_policies"] == {}
    check = CliRunner().invoke(command, ["--check", *args], standalone_mode=False)
    assert check.return_value == 0, check.output


def test_compile_refuses_inputs_beyond_iams_limits_without_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    from aws_specs import REPO

    inputs = [arg for i in range(400) for arg in ("--input", f"s3://in-{i:04d}/d/")]
    proc = subprocess.run(
        [sys.executable, "-m", "mrspec", "compile", "--out", str(tmp_path), *inputs,
         "--output", "s3://results/wc/", str(REPO / "specs" / "wordcount" / "job.yaml")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "do not fit IAM's limits" in proc.stderr
    assert "input.prefix names 400 prefixes in 400 buckets" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "wordcount").exists()


def test_plan_lists_the_managed_policies_a_role_needs() -> None:
    from mrspec.cost.stack import resource_lines

    lines = resource_lines(lowered(daily_prefixes(365)))
    roles = {r.name: r.detail for r in lines if r.kind == "role"}
    assert sorted(roles.values()) == ["0 inline policies, 6 managed", "1 inline policy"]


def test_plans_limit_checks_see_the_roles_managed_policies() -> None:
    from mrspec.cost.limits import stack_checks

    model = lowered(daily_prefixes(365))
    checks = {c.name: c for c in stack_checks(make_spec(), model)}
    managed = [c for name, c in checks.items() if name.startswith("IAM managed policy ")]
    assert len(managed) == 6 and all(c.ok and c.limit == 6_144 for c in managed)
    attached = checks["IAM managed policies of role lambda"]
    assert attached.ok and (attached.value, attached.limit) == (6, 10)
