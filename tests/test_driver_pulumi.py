"""The Pulumi Automation API provisioner: what happens without the CLI (always tested),
its stack bookkeeping in mrspec's file backend (when ``pulumi`` is on PATH) and a real
run (cloud marker: needs the CLI, AWS credentials and a scratch bucket)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mrspec.aws.provision import PULUMI_INSTALL_URL, PulumiProvisioner
from mrspec.aws.state import RunRecord, StateStore
from mrspec.errors import ExitCode, RefusedError

ROOT = Path(__file__).resolve().parents[1]
HAS_PULUMI = shutil.which("pulumi") is not None


def _record() -> RunRecord:
    return RunRecord(
        job="wordcount",
        run_id="t1",
        stack="mrspec-wordcount-t1",
        region="us-east-1",
        provisioner="pulumi",
        created_at=0.0,
    )


def test_missing_cli_is_a_refusal_with_install_instructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without pulumi
    provisioner = PulumiProvisioner(_record(), StateStore(tmp_path / "state"))
    with pytest.raises(RefusedError) as refused:
        provisioner.exists()
    assert refused.value.exit_code == ExitCode.REFUSED
    assert PULUMI_INSTALL_URL in str(refused.value)


def test_apply_without_the_cli_exits_3_before_creating_anything(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "MRSPEC_", "PULUMI_"))
    }
    env.update(PATH=str(bin_dir), MRSPEC_STATE_DIR=str(tmp_path / "state"), HOME=str(tmp_path))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrspec",
            "apply",
            str(ROOT / "specs" / "wordcount" / "job.yaml"),
            "--input",
            "s3://some-bucket/in/",
            "--output",
            "s3://some-bucket/out/",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == ExitCode.REFUSED, result.stderr
    assert "Pulumi CLI" in result.stderr
    assert PULUMI_INSTALL_URL in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state" / "runs").exists() or not any((tmp_path / "state" / "runs").iterdir())


@pytest.mark.skipif(not HAS_PULUMI, reason="the Pulumi CLI is not installed (pulumi not on PATH)")
def test_stacks_live_in_mrspecs_file_backend_and_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test")
    store = StateStore(tmp_path / "state")
    provisioner = PulumiProvisioner(_record(), store)
    assert not provisioner.exists()

    provisioner._stack(create=True)

    assert provisioner.exists()
    assert any(store.pulumi_backend.rglob("*mrspec-wordcount-t1*"))
    provisioner.destroy()  # an empty stack: nothing to delete, must not fail
    provisioner.remove()
    assert not provisioner.exists()


@pytest.mark.cloud
@pytest.mark.skipif(not HAS_PULUMI, reason="the Pulumi CLI is not installed (pulumi not on PATH)")
@pytest.mark.skipif(
    not os.environ.get("MRSPEC_TEST_BUCKET"),
    reason="set MRSPEC_TEST_BUCKET (a scratch bucket) and AWS credentials to run on real AWS",
)
def test_wordcount_on_real_aws_leaves_only_its_output(tmp_path: Path) -> None:
    import json

    import boto3

    bucket = os.environ["MRSPEC_TEST_BUCKET"]
    s3 = boto3.client("s3")
    prefix = f"mrspec-cloud-test/{tmp_path.name}"
    for path in sorted((ROOT / "specs" / "wordcount" / "input").iterdir()):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/in/{path.name}", Body=path.read_bytes())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrspec",
            "apply",
            str(ROOT / "specs" / "wordcount" / "job.yaml"),
            "--input",
            f"s3://{bucket}/{prefix}/in/",
            "--output",
            f"s3://{bucket}/{prefix}/out/",
            "--state-dir",
            str(tmp_path / "state"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["teardown"] == "destroyed"
    assert s3.head_object(Bucket=bucket, Key=f"{prefix}/out/_SUCCESS")
