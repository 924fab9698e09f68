"""``mrspec apply`` on (emulated) AWS through the real command line boundary: options,
exit codes, JSON on stdout, errors as one message without a traceback; then
``mrspec runs`` / ``mrspec destroy`` on what ``--keep`` left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from test_driver_lifecycle import assert_nothing_left
from test_emulated_jobs import IN_BUCKET, OUT_BUCKET, upload_input

from mrspec.cli import main
from mrspec.spec.loader import load_spec

ROOT = Path(__file__).resolve().parents[1]
WORDCOUNT = ROOT / "specs" / "wordcount" / "job.yaml"


@pytest.fixture
def moto_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compile the state machine variant moto accepts (STANDARD children), as the
    emulated tests do; everything else is what `mrspec apply` runs."""
    import mrspec.aws.lower as lower_module

    real = lower_module.lower

    def lower_for_moto(*args: Any, **kwargs: Any) -> Any:
        kwargs["emulator"] = True
        return real(*args, **kwargs)

    monkeypatch.setattr(lower_module, "lower", lower_for_moto)


def _mrspec(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(args)
    code = exited.value.code
    return int(code) if code is not None else 0


def test_apply_keep_runs_and_destroy_through_the_cli(
    emulated_aws: EmulatedAws,
    moto_variant: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (inputs,) = upload_input(emulated_aws, load_spec(WORDCOUNT))
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    state = str(tmp_path / "state")
    output = f"s3://{OUT_BUCKET}/wordcount/"
    common = ["--provisioner", "boto3", "--input", inputs, "--state-dir", state]

    code = _mrspec(["apply", str(WORDCOUNT), *common, "--output", output, "--json", "--keep"])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["outcome"] == "succeeded" and summary["teardown"] == "kept"
    assert summary["counters"]["map_input_records"] > 0

    assert _mrspec(["runs", "--json", "--state-dir", state]) == 0
    (record,) = json.loads(capsys.readouterr().out)["runs"]
    assert record["status"] == "kept" and record["job"] == "wordcount"

    # The same output again is refused (exit 3) before anything is created.
    assert _mrspec(["apply", str(WORDCOUNT), *common, "--output", output]) == 3
    err = capsys.readouterr().err
    assert "is not empty" in err and "--overwrite" in err and "Traceback" not in err

    assert _mrspec(["destroy", str(WORDCOUNT), "--state-dir", state]) == 0
    capsys.readouterr()
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})
    assert _mrspec(["runs", "--json", "--state-dir", state]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == []
    s3 = emulated_aws.client("s3")
    assert s3.head_object(Bucket=OUT_BUCKET, Key="wordcount/_SUCCESS")  # output intact


def test_destroy_that_cannot_remove_a_stack_exits_4_and_keeps_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mrspec.aws.state import RunRecord, StateStore

    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi: the recorded stack cannot be removed
    store = StateStore(tmp_path / "state")
    store.save(
        RunRecord(
            job="wordcount",
            run_id="abc",
            stack="mrspec-wordcount-abc",
            region="us-east-1",
            provisioner="pulumi",
            created_at=0.0,
        )
    )

    assert _mrspec(["destroy", "--all", "--state-dir", str(store.root)]) == 4
    err = capsys.readouterr().err
    assert "mrspec-wordcount-abc" in err and "Pulumi CLI" in err and "Traceback" not in err
    assert [r.stack for r in store.runs()] == ["mrspec-wordcount-abc"]
    assert _mrspec(["destroy", "nosuchjob", "--state-dir", str(store.root)]) == 0
    assert "nothing to destroy" in capsys.readouterr().err


def test_runs_lists_age_status_resources_and_the_destroy_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from mrspec.aws.state import Resource, RunRecord, StateStore

    monkeypatch.setenv("COLUMNS", "250")
    store = StateStore(tmp_path / "state")
    assert _mrspec(["runs", "--state-dir", str(store.root)]) == 0
    assert "no stacks left" in capsys.readouterr().out
    store.save(
        RunRecord(
            job="wordcount",
            run_id="abc",
            stack="mrspec-wordcount-abc",
            region="eu-west-1",
            provisioner="pulumi",
            created_at=time.time() - 7200,
            status="interrupted",
            spec_path="specs/wordcount/job.yaml",
            resources=(Resource("bucket", "b"), Resource("function", "f1"), Resource("function", "f2")),
        )
    )

    assert _mrspec(["runs", "--state-dir", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "mrspec-wordcount-abc" in out and "interrupted" in out and "eu-west-1" in out
    assert "1 bucket, 2 function" in out
    assert "2h" in out  # the age
    assert "mrspec destroy specs/wordcount/job.yaml --run abc" in out


def test_runs_stays_readable_at_80_columns(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    from mrspec.aws.state import Resource, RunRecord, StateStore

    store = StateStore(tmp_path / "state")
    spec = "specs/a-rather-long-folder-name/with/nested/parts/job.yaml"
    for i in range(2):
        store.save(
            RunRecord(
                job="a-long-job-name-for-the-table", run_id=f"r{i}abcdefgh",
                stack=f"mrspec-a-long-job-name-for-the-table-r{i}abcdefgh", region="ap-southeast-2",
                provisioner="pulumi", created_at=time.time() - 90_000, status="interrupted",
                spec_path=spec,
                resources=tuple(Resource(k, f"{k}{j}") for j, k in enumerate(["bucket", "function", "function", "role", "state machine", "log group"])),
            )
        )
    proc = subprocess.run(
        [sys.executable, "-m", "mrspec", "runs", "--state-dir", str(store.root)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    table = lines[: lines.index("to remove them:")]
    assert all(len(line) <= 80 for line in table), "\n".join(table)
    assert "…" not in proc.stdout  # folded, never cut
    for i in range(2):  # each command whole, on its own line, ready to copy
        assert f"  mrspec-a-long-job-name-for-the-table-r{i}abcdefgh: mrspec destroy {spec} --run r{i}abcdefgh" in lines
