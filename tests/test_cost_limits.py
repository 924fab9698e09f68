"""Every hard AWS limit ``plan`` checks: each fires when its figure passes the limit and
passes otherwise; ``apply`` refuses through the real command line (exit 3, nothing
created); ``plan`` shows the checks and the budget."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from test_cost_phases import estimate_of, make_spec
from test_driver_cli import _mrspec
from test_driver_lifecycle import assert_nothing_left

from mrspec.aws.model import PolicyDocument, Statement
from mrspec.aws.policy_fit import policy_chars
from mrspec.cost.limits import (
    LimitCheck,
    managed_policy_chars,
    refuse_failed_limits,
    stack_checks,
)
from mrspec.errors import ExitCode, RefusedError
from mrspec.plan.planner import make_plan
from mrspec.spec.model import CodeSpec, InputSpec, JobSpec
from mrspec.storage import ObjectInfo

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024**2


def check(spec: JobSpec, objects: list[ObjectInfo], name: str, **values: float) -> LimitCheck:
    e = estimate_of(spec, make_plan(spec, objects), **values)
    (found,) = [c for c in e.limits if c.name == name]
    return found


def small() -> tuple[JobSpec, list[ObjectInfo]]:
    spec = make_spec(split=32 * MIB, bin_size=64 * MIB, partitions=2)
    return spec, [ObjectInfo(f"s3://in-bucket/data/o{i}", 96 * MIB) for i in range(3)]


def test_task_time_against_the_timeout() -> None:
    spec, objects = small()
    assert check(spec, objects, "reduce task time").ok
    tight = dataclasses.replace(spec, reduce=dataclasses.replace(spec.reduce, timeout_s=2))  # type: ignore[arg-type]
    c = check(tight, objects, "reduce task time")
    assert not c.ok and c.limit == 2 and c.value > 4  # about 5 s by hand (test_cost_phases)
    assert "reduce.partitions" in c.setting


def test_lambda_15_minutes_and_express_5_minutes() -> None:
    spec, objects = small()
    assert check(spec, objects, "Lambda 15-minute limit (map)").ok
    # 64 MiB at 20 vCPU-s/MiB: 1,280 s of CPU.
    c = check(spec, objects, "Lambda 15-minute limit (map)", map_cpu_s_per_mib=20)
    assert not c.ok and c.limit == 900 and c.value > 1280


def test_express_children_over_five_minutes() -> None:
    spec, objects = small()
    short = dataclasses.replace(spec, map=dataclasses.replace(spec.map, timeout_s=60))
    e = estimate_of(short, make_plan(short, objects), map_cpu_s_per_mib=5)
    if e.predictions[0].execution_type != "EXPRESS":
        pytest.skip("the compiler chose STANDARD children for this timeout")
    (c,) = [c for c in e.limits if c.name == "map EXPRESS child duration"]
    assert not c.ok and c.limit == 300  # 64 MiB x 5 vCPU-s/MiB = 320 s
    assert check(short, objects, "map EXPRESS child duration").ok  # 0.1 vCPU-s/MiB: 8 s


def test_memory_against_the_cap() -> None:
    spec, objects = small()
    assert check(spec, objects, "map task memory").ok
    tiny = dataclasses.replace(spec, map=dataclasses.replace(spec.map, memory_mb=128))
    c = check(tiny, objects, "map task memory")
    # 100 MB runtime + buffer min(128 / 3, 64) MiB + 64 MiB of read windows.
    assert not c.ok and c.value == pytest.approx(100 + 128 / 3 + 64) and c.limit == 128


def test_map_item_payload_stays_under_256_kib_whatever_the_splits() -> None:
    spec, objects = small()
    assert check(spec, objects, "map task payload").ok
    # 1 MiB objects cut in 256-byte splits: 4,096 splits in one map task, whose full JSON
    # (~250 KB) would pass the limit; its item is a reference to a manifest shard.
    many = make_spec(split=256, bin_size=64 * MIB, partitions=2)
    c = check(many, [ObjectInfo("s3://in-bucket/data/x", MIB)], "map task payload")
    assert c.ok and c.limit == 262_144 and c.value < 1_000


def test_distributed_map_and_account_concurrency() -> None:
    spec, objects = small()
    assert check(spec, objects, "map Distributed Map concurrency").ok
    wide = dataclasses.replace(spec, limits=dataclasses.replace(spec.limits, max_concurrency=20_000))
    assert not check(wide, objects, "map Distributed Map concurrency").ok
    assert check(spec, objects, "account Lambda concurrency").ok  # 5 map tasks at once
    c = check(spec, objects, "account Lambda concurrency", account_lambda_concurrency=4)
    assert not c.ok and (c.value, c.limit) == (5, 4)


def test_iam_inline_policies_of_a_role() -> None:
    spec, objects = small()
    c = check(spec, objects, "IAM inline policies of role lambda")
    assert c.ok and c.value > 500
    prefixes = tuple(f"s3://in-bucket/data/day-{i:03d}/" for i in range(365))
    daily = dataclasses.replace(spec, input=InputSpec(prefixes=prefixes))
    listed = [ObjectInfo(f"{p}part-0", MIB) for p in prefixes]
    # 365 prefixes do not fit inline: the role gets managed policies (aws.policy_fit)
    c = check(daily, listed, "IAM inline policies of role lambda")
    assert c.ok and c.value == 0 and c.limit == 10_240
    e = estimate_of(daily, make_plan(daily, listed))
    managed = [c for c in e.limits if c.name.startswith("IAM managed policy ")]
    assert managed and all(c.ok for c in managed)
    # the check itself fires on a role whose inline policies are too large
    big = PolicyDocument(tuple(
        Statement(f"S{i}", ("s3:GetObject",), (f"arn:aws:s3:::bucket/prefix-{i:04d}/*",))
        for i in range(300)))
    role = SimpleNamespace(logical_name="lambda", policies=(SimpleNamespace(document=big),))
    model = SimpleNamespace(roles=(role,), managed_policies=())
    checks = {c.name: c for c in stack_checks(spec, model)}  # type: ignore[arg-type]
    assert not checks["IAM inline policies of role lambda"].ok


def test_policy_size_is_counted_without_whitespace() -> None:
    doc = PolicyDocument((Statement("A", ("s3:GetObject",), ("arn:aws:s3:::b/k *",)),))
    text = json.dumps(doc.to_json())
    assert policy_chars(doc) == len(text) - text.count(" ")


def test_managed_policies_against_6144() -> None:
    big = PolicyDocument(tuple(
        Statement(f"S{i}", ("s3:GetObject",), (f"arn:aws:s3:::bucket/prefix-{i:04d}/*",))
        for i in range(100)))
    small_doc = PolicyDocument((Statement("S", ("s3:GetObject",), ("arn:aws:s3:::b/*",)),))
    model = SimpleNamespace(roles=(), managed_policies=(
        SimpleNamespace(name="input-read-1", document=big),
        SimpleNamespace(name="input-read-2", document=small_doc)))
    assert [name for name, _ in managed_policy_chars(model)] == ["input-read-1", "input-read-2"]  # type: ignore[arg-type]
    spec, _ = small()
    checks = {c.name: c for c in stack_checks(spec, model)}  # type: ignore[arg-type]
    assert not checks["IAM managed policy input-read-1"].ok
    assert checks["IAM managed policy input-read-2"].ok


def test_lambda_package_against_250_mb(tmp_path: Path) -> None:
    spec, _ = small()
    code = tmp_path / "code"
    code.mkdir()
    (code / "job.py").write_text("def mapper(line): ...\n")
    with_code = dataclasses.replace(spec, code=CodeSpec(path=code))
    (ok,) = [c for c in stack_checks(with_code, None) if c.name.startswith("Lambda package")]
    assert ok.ok
    with open(code / "model.bin", "wb") as fh:  # sparse: 251 MiB without writing them
        fh.truncate(251 * MIB)
    (over,) = [c for c in stack_checks(with_code, None) if c.name.startswith("Lambda package")]
    assert not over.ok and over.value > os.path.getsize(code / "model.bin")
    assert "code.exclude" in over.setting


def test_refusal_names_the_limit_the_figure_and_the_setting() -> None:
    checks = [LimitCheck("map task time", 195, 180, "s", "lower map.bin_size"),
              LimitCheck("map task memory", 100, 1769, "MB", "raise map.memory")]
    with pytest.raises(RefusedError) as refused:
        refuse_failed_limits("job", checks)
    assert refused.value.exit_code == ExitCode.REFUSED
    message = str(refused.value)
    assert "map task time is 195 s, over the limit of 180 s: lower map.bin_size" in message
    assert "memory" not in message
    refuse_failed_limits("job", checks[1:])  # nothing failed: no refusal


def test_plan_shows_the_checks_and_the_budget(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ROOT / "specs" / "wordcount" / "job.yaml"
    assert _mrspec(["plan", str(spec), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["budget"] == {"budget_usd": 1.0, "estimate_usd": doc["cost"]["total_usd"],
                             "ok": True}
    names = {c["name"] for c in doc["limits"]}
    assert {"map task time", "reduce task memory", "commit task payload",
            "IAM inline policies of role lambda", "account Lambda concurrency"} <= names
    assert all(set(c) == {"name", "value", "limit", "unit", "ok", "setting"}
               for c in doc["limits"])
    monkeypatch.setenv("COLUMNS", "200")
    assert _mrspec(["plan", str(spec)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"budget: \$1\.00 \(limits\.budget_usd\), estimate \$[0-9.]+: within", out)
    assert "IAM inline policies of role lambda" in out
    assert _mrspec(["plan", str(spec), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "Budget: $1.00 (limits.budget_usd)" in md and "checks pass." in md
    assert "| reduce | 4 |" in md


def write_job(folder: Path, split: str, map_timeout: str = "3m") -> Path:
    """The word-count job with its own code folder, cut into splits of ``split``."""
    folder.mkdir()
    shutil.copy(ROOT / "specs" / "wordcount" / "wordcount.py", folder / "wordcount.py")
    (folder / "input").mkdir()
    (folder / "job.yaml").write_text(
        "apiVersion: mrspec/v1\nname: tinysplits\n"
        f"input:\n  prefix: input/\n  split_size: {split}\n"
        f"map:\n  entrypoint: wordcount:mapper\n  timeout: {map_timeout}\n"
        "reduce:\n  entrypoint: wordcount:reducer\n  partitions: 2\n"
        "output:\n  prefix: out/\n"
    )
    return folder / "job.yaml"


def test_apply_refuses_a_run_over_a_limit_before_creating_anything(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = emulated_aws.client("s3")
    s3.create_bucket(Bucket="emulated-input")
    s3.create_bucket(Bucket="emulated-output")
    s3.put_object(Bucket="emulated-input", Key="tiny/words.txt", Body=b"a b c d e f g\n" * 30_000)
    # 4,200 splits of 100 B fit one item (a shard reference), but their 4,200 GETs take
    # longer than a 10 s timeout
    job = write_job(tmp_path / "job", "100B", map_timeout="10s")
    args = ["apply", str(job), "--provisioner", "boto3", "--input", "s3://emulated-input/tiny/",
            "--output", "s3://emulated-output/out/", "--state-dir", str(tmp_path / "state")]

    assert _mrspec(args) == int(ExitCode.REFUSED)
    err = capsys.readouterr().err
    assert "map task time is" in err and "over the limit of 10 s" in err
    assert "map task payload" not in err and "Traceback" not in err
    assert_nothing_left(emulated_aws, {"emulated-input", "emulated-output"})
    assert s3.list_objects_v2(Bucket="emulated-output").get("KeyCount", 0) == 0


def test_apply_local_warns_about_the_aws_limits_and_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_job(tmp_path / "job", "100B", map_timeout="10s")
    (job.parent / "input" / "words.txt").write_bytes(b"a b c d e f g\n" * 30_000)
    assert _mrspec(["apply", str(job), "--local", "--workers", "1", "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning: on AWS, apply would refuse this run: map task time is" in captured.err
    assert json.loads(captured.out)["counters"]["map_input_records"] == 30_000


def test_the_drivers_guard_refuses_on_account_concurrency_only_with_the_accounts_quota(
    tmp_path: Path,
) -> None:
    from mrspec.aws.driver import AwsRun, AwsRunOptions, guard_budget
    from mrspec.aws.state import StateStore

    spec = make_spec(split=MIB, bin_size=MIB, partitions=2, concurrency=2000)
    objects = [ObjectInfo(f"s3://in-bucket/data/o{i:04d}", MIB) for i in range(1500)]
    run = AwsRun(spec=spec, options=AwsRunOptions(), store=StateStore(tmp_path), run_id="r1",
                 plan=make_plan(spec, objects))
    guard_budget(run)  # 1,500 tasks at once over the assumed 1,000: Lambda would throttle
    run.account_concurrency = 1000  # the account's own quota, as preflight read it
    with pytest.raises(RefusedError, match="account Lambda concurrency is 1,500"):
        guard_budget(run)
