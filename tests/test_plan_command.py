"""``mrspec plan``: outputs (table, JSON, markdown with golden files), local and s3://
inputs (moto), 10,000 objects, change review (--compare, --base-ref), overrides,
calibration with --sample, and errors.

Regenerate the golden files with ``MRSPEC_UPDATE_GOLDEN=1 pytest tests/test_plan_command.py``.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mrspec.cli import cli
from mrspec.errors import MrspecError
from mrspec.storage.s3 import S3Storage

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MRSPEC_UPDATE_GOLDEN") == "1"

SPEC = """\
apiVersion: mrspec/v1
name: goldenjob
description: A fixed job for plan's snapshot tests.
input:
  prefix: {input}
  split_size: 1MiB
map:
  entrypoint: job:mapper
  combiner: job:reducer
  memory: {memory}
  timeout: 60
  bin_size: 2MiB
reduce:
  entrypoint: job:reducer
  partitions: {partitions}
output:
  prefix: {output}
limits:
  max_concurrency: 2
  budget_usd: 1.00
aws:
  region: eu-west-1
  architecture: x86_64
"""

JOB_PY = '''\
def mapper(line):
    for word in line.split():
        yield word, 1


def reducer(key, values):
    yield key, sum(values)
'''


def corpus(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(500)]
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(words) for _ in range(12))
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def write_job(folder: Path, *, memory: int = 1024, partitions: int = 3,
              input_prefix: str = "input/", output: str = "out/") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_text(JOB_PY)
    spec = folder / "job.yaml"
    spec.write_text(SPEC.format(memory=memory, partitions=partitions, input=input_prefix,
                                output=output))
    return spec


def write_input(folder: Path) -> None:
    data = folder / "input"
    data.mkdir(parents=True, exist_ok=True)
    for i, size in enumerate((1_500_000, 500_000, 3_000_000)):
        (data / f"part-{i}.txt").write_bytes(corpus(i, size))


@pytest.fixture
def job_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_job(tmp_path)
    write_input(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def plan(*args: str) -> str:
    result = CliRunner().invoke(cli, ["plan", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def plan_json(*args: str) -> dict[str, Any]:
    return json.loads(plan(*args, "--json"))  # type: ignore[no-any-return]


# Figures that depend on this machine, not on the plan: the map item names the input's
# absolute local path (pytest's tmp folder), and the package counts mrspec's own sources.
_MACHINE_FIGURES = [
    (re.compile(r'("name": "(map task payload|Lambda package [^"]*)",\n\s*"value": )[0-9.]+'),
     r"\g<1>0"),
    (re.compile(r'(\| (map task payload|Lambda package [^|]*) \| )[0-9,]+'), r"\g<1>0"),
    (re.compile(r'("name": "map",(?:\n.*?)*?"payload_bytes": )\d+'), r"\g<1>0"),
    (re.compile(r"^(\| map \|.*\| )[0-9.]+ (B|KiB) \|$", re.M), r"\g<1>0 B |"),
]


def machine_neutral(text: str) -> str:
    for pattern, replacement in _MACHINE_FIGURES:
        text = pattern.sub(replacement, text)
    return text


def check_golden(name: str, text: str) -> None:
    text = machine_neutral(text)
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with MRSPEC_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} changed; run with MRSPEC_UPDATE_GOLDEN=1 if intended"


# ------------------------------------------------------------------ outputs


def test_json_schema_and_local_input(job_dir: Path) -> None:
    doc = plan_json("job.yaml")
    assert doc["schema_version"] == 1
    assert doc["input_objects"] == 3
    assert doc["input_bytes"] == sum(p.stat().st_size for p in (job_dir / "input").iterdir())
    assert doc["map_tasks"] >= 3 and doc["reduce_tasks"] == 3 and doc["partitions"] == 3
    assert doc["cost"]["total_usd"] == pytest.approx(sum(ln["usd"] for ln in doc["cost"]["lines"]),
                                                     abs=1e-5)
    assert {ln["service"] for ln in doc["cost"]["lines"]} == {
        "Lambda", "Step Functions", "S3", "CloudWatch Logs"}
    assert doc["waves"]["map"] == -(-doc["map_tasks"] // 2)  # max_concurrency 2
    assert {a["name"] for a in doc["assumptions"]} >= {"map_cpu_s_per_mib", "shuffle_ratio"}
    assert any("input is local" in w for w in doc["warnings"])
    assert doc["pricing"]["region"] == "eu-west-1" and doc["pricing"]["unconfirmed"]
    kinds = {r["kind"] for r in doc["resources"]}
    assert kinds == {"bucket", "log_group", "role", "function", "state_machine"}


def without_measurements(text: str) -> str:
    """The JSON report with its one measured figure (the listing's time) zeroed."""
    doc = json.loads(text)
    assert doc["listing_seconds"] >= 0
    doc["listing_seconds"] = 0.0
    return json.dumps(doc, indent=2) + "\n"


def test_golden_json_and_markdown(job_dir: Path) -> None:
    check_golden("plan_goldenjob.json", without_measurements(plan("job.yaml", "--json")))
    check_golden("plan_goldenjob.md", plan("job.yaml", "--format", "markdown"))


def test_terminal_table_shows_every_section(job_dir: Path) -> None:
    out = plan("job.yaml")
    for section in ("Work", "Resources to create", "Estimated cost", "Free tier",
                    "Estimated time", "Assumptions", "Warnings", "total wall time",
                    "prices: eu-west-1"):
        assert section in out, section
    assert re.search(r"input listing\s+\d+\.\d\d s", out)  # the terminal only
    assert "input listing" not in plan("job.yaml", "--format", "markdown")  # reproducible


def test_assume_overrides(job_dir: Path) -> None:
    base = plan_json("job.yaml")
    doc = plan_json("job.yaml", "--assume", "map_cpu_s_per_mib=1.0", "--assume", "retry_rate=0.1")
    named = {a["name"]: a for a in doc["assumptions"]}
    assert named["map_cpu_s_per_mib"] == {**named["map_cpu_s_per_mib"], "value": 1.0,
                                          "source": "override"}
    assert doc["cost"]["total_usd"] > base["cost"]["total_usd"]
    with pytest.raises(MrspecError, match="unknown assumption"):
        CliRunner().invoke(cli, ["plan", "job.yaml", "--assume", "nope=1"],
                           catch_exceptions=False)
    with pytest.raises(MrspecError, match="NAME=NUMBER"):
        CliRunner().invoke(cli, ["plan", "job.yaml", "--assume", "shuffle_ratio"],
                           catch_exceptions=False)


def test_errors_are_messages_not_tracebacks(job_dir: Path) -> None:
    (job_dir / "bad.json").write_text("{}")
    proc = subprocess.run(
        [sys.executable, "-m", "mrspec", "plan", "job.yaml", "--pricing", "bad.json"],
        capture_output=True, text=True, cwd=job_dir,
    )
    assert proc.returncode == 2
    assert "invalid price data" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ change review


def test_compare_shows_deltas(job_dir: Path) -> None:
    write_job(job_dir / "old", memory=512, partitions=2, input_prefix=str(job_dir / "input"))
    doc = plan_json("job.yaml", "--compare", "old/job.yaml")
    deltas = {d["what"]: d for d in doc["comparison"]["deltas"]}
    assert (deltas["reduce tasks"]["old"], deltas["reduce tasks"]["new"]) == (2, 3)
    assert deltas["cost: total"]["new"] == pytest.approx(doc["cost"]["total_usd"], abs=1e-6)
    changed = doc["comparison"]["resources"]["changed"]
    assert any("function" in c and "512 MB" in c and "1024 MB" in c for c in changed)
    md = plan("job.yaml", "--compare", "old/job.yaml", "--format", "markdown")
    assert md.startswith("### mrspec plan: changes from `old/job.yaml` to `job.yaml`")
    assert "| reduce tasks | 2 | 3 | +1 (+50%) |" in md


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"})


def test_base_ref_reads_the_old_spec_from_git(job_dir: Path) -> None:
    write_job(job_dir, partitions=2)
    _git(job_dir, "init", "-q")
    _git(job_dir, "add", "job.yaml", "job.py")
    _git(job_dir, "commit", "-qm", "old")
    write_job(job_dir, partitions=5)
    doc = plan_json("job.yaml", "--base-ref", "HEAD")
    deltas = {d["what"]: d for d in doc["comparison"]["deltas"]}
    assert (deltas["reduce tasks"]["old"], deltas["reduce tasks"]["new"]) == (2, 5)
    assert doc["comparison"]["old"] == "HEAD:job.yaml"
    # A spec that did not exist at the ref, and a ref that does not exist.
    (job_dir / "sub").mkdir()
    write_job(job_dir / "sub")
    with pytest.raises(MrspecError, match=r"sub/job\.yaml did not exist at HEAD"):
        CliRunner().invoke(cli, ["plan", "sub/job.yaml", "--base-ref", "HEAD"],
                           catch_exceptions=False)
    with pytest.raises(MrspecError, match="no such commit"):
        CliRunner().invoke(cli, ["plan", "job.yaml", "--base-ref", "nosuchbranch"],
                           catch_exceptions=False)


def test_base_ref_outside_a_repository(job_dir: Path) -> None:
    with pytest.raises(MrspecError, match="not inside a git repository"):
        CliRunner().invoke(cli, ["plan", "job.yaml", "--base-ref", "HEAD"],
                           catch_exceptions=False)


# ------------------------------------------------------------------ calibration


def test_sample_measures_the_job(job_dir: Path) -> None:
    doc = plan_json("job.yaml", "--sample", "1MiB")
    named = {a["name"]: a for a in doc["assumptions"]}
    for name in ("map_cpu_s_per_mib", "shuffle_ratio", "output_ratio", "records_per_mib",
                 "map_peak_memory_mb", "reduce_cpu_s_per_mib"):
        assert named[name]["source"] == "measured", name
    assert named["map_cpu_s_per_mib"]["value"] > 0
    # 12 words of 2-4 characters a line: about 45 bytes, so ~23,000 records per MiB.
    assert 15_000 < named["records_per_mib"]["value"] < 35_000
    # 500 distinct words: the combiner shrinks the shuffle far below the input.
    assert 0 < named["shuffle_ratio"]["value"] < 0.2
    assert named["map_peak_memory_mb"]["value"] > 10
    assert doc["calibration"]["sample_bytes"] == 1024**2
    assert not (job_dir / "out").exists()  # the sample never writes the job's output


# ------------------------------------------------------------------ s3:// inputs (moto)


@pytest.fixture
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto import mock_aws

    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    S3Storage.reset_shared()
    try:
        with mock_aws():
            import boto3

            yield boto3.client("s3", region_name="us-east-1")
    finally:
        S3Storage.reset_shared()


def test_s3_input(moto_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moto_s3.create_bucket(Bucket="plan-input")
    sizes = (1_500_000, 500_000, 3_000_000)
    for i, size in enumerate(sizes):
        moto_s3.put_object(Bucket="plan-input", Key=f"data/part-{i}.txt", Body=corpus(i, size))
    moto_s3.put_object(Bucket="plan-input", Key="data/_SUCCESS", Body=b"{}")
    write_job(tmp_path, input_prefix="s3://plan-input/data/", output="s3://plan-output/out/")
    monkeypatch.chdir(tmp_path)
    doc = plan_json("job.yaml")
    assert doc["input_objects"] == 3  # _SUCCESS is hidden
    assert doc["input_bytes"] == sum(len(corpus(i, s)) for i, s in enumerate(sizes))
    assert not any("input is local" in w for w in doc["warnings"])
    lines = {ln["item"]: ln for ln in doc["cost"]["lines"]}
    assert lines["input LIST (planning)"]["quantity"] == 1


def test_ten_thousand_s3_objects(moto_s3: Any, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.backends import get_backend

    moto_s3.create_bucket(Bucket="plan-many")
    backend = get_backend("s3")["123456789012"]["global"]
    for i in range(10_000):  # moto's backend directly: setting up is not under test
        backend.put_object("plan-many", f"data/{i:05d}.txt", b"alpha beta\n" * 10)
    write_job(tmp_path, input_prefix="s3://plan-many/data/", output="s3://plan-output/out/")
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    doc = plan_json("job.yaml")
    elapsed = time.perf_counter() - started
    print(f"\nplan over 10,000 moto objects: {elapsed:.1f} s")  # measured, not asserted
    assert doc["input_objects"] == 10_000 and doc["input_bytes"] == 10_000 * 110
    lines = {ln["item"]: ln for ln in doc["cost"]["lines"]}
    assert lines["input LIST (planning)"]["quantity"] == 10
    # 10,000 tiny objects: one split each, packed into one 2 MiB bin.
    assert (doc["splits"], doc["map_tasks"]) == (10_000, 1)
    assert lines["input GET (ranged, + read-ahead)"]["quantity"] == 10_000


def test_refresh_pricing_without_credentials_fails_clearly(job_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(job_dir / "none"),
               AWS_CONFIG_FILE=str(job_dir / "none"), AWS_EC2_METADATA_DISABLED="true")
    proc = subprocess.run(
        [sys.executable, "-m", "mrspec", "plan", "job.yaml", "--refresh-pricing"],
        capture_output=True, text=True, cwd=job_dir, env=env,
    )
    assert proc.returncode == 2
    assert "needs AWS credentials" in proc.stderr and "Traceback" not in proc.stderr


def test_sample_splits_first_and_spread() -> None:
    from mrspec.cost.calibrate import sample_splits
    from mrspec.plan.model import Split

    splits = [Split(f"f{i}", 0, 100, 100) for i in range(8)] + [Split("z.gz", 0, 50, 50, True)]
    first = sample_splits(splits, 250)
    assert [(s.uri, s.start, s.end) for s in first] == [("f0", 0, 100), ("f1", 0, 100),
                                                        ("f2", 0, 50)]
    spread = sample_splits(splits, 90, spread=True)  # 9 slices of 10 bytes, gz taken whole
    assert [s.uri for s in spread] == [f"f{i}" for i in range(8)] + ["z.gz"]
    assert sum(s.length for s in spread if not s.compressed) == 80
    with pytest.raises(MrspecError, match="positive size"):
        sample_splits(splits, 0)


def test_what_keeping_a_failed_run_costs_per_day(job_dir: Path) -> None:
    """The per-day figure is the working bucket's storage only: the input bytes times the
    shuffle ratio, once per exchange level, at pricing.json's S3 Standard price, a day
    being 24 of the month's 730 hours."""
    from mrspec.cost import pricing

    prices = json.loads(Path(pricing.__file__).with_name("pricing.json").read_text())
    data = plan_json("job.yaml", "--assume", "shuffle_ratio=0.5")
    per_gb_month = prices["regions"][data["region"]]["s3"]["storage_per_gb_month"]
    levels = 1 + len([p for p in data["phases"] if p["name"].startswith("merge-")])
    held = data["input_bytes"] * 0.5 * levels
    by_hand = held / 1024**3 * per_gb_month * 24 / 730

    kept = data["keep_failed"]

    assert kept["bytes"] == round(held)
    assert kept["usd_per_day"] == pytest.approx(by_hand, rel=1e-5)
    assert kept["s3_storage_per_gb_month"] == per_gb_month
    assert "keeping a failed run for --resume costs about" in plan("job.yaml")
    assert "Keeping a failed run for --resume costs about" in plan("job.yaml", "--format", "markdown")
