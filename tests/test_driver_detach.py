"""Detach and attach on emulated AWS: ``apply --detach`` returns once the execution has
started, ``mrspec status`` reads its progress, ``mrspec attach`` follows it to the end,
collects and tears down exactly as a foreground run; SIGHUP detaches a foreground run;
Ctrl-C while attached detaches unless ``--stop``.

The runs use the real handlers and the bundled word-count job, so attaching reloads a
real spec file. A detached execution goes on in moto's threads inside this process, and
while a handler runs the emulator redirects the process's stdout into that function's
log and swaps in the zip's ``mrspec`` modules (tests/aws_emulation.py). So what a test
reads while an execution is in flight goes to a console of its own, and the command line
(whose commands are imported on first use) is only called once the execution has ended.
"""

from __future__ import annotations

import io
import json
import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aws_emulation import EmulatedAws, wait_for_execution
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from rich.console import Console
from test_driver_lifecycle import assert_nothing_left
from test_emulated_jobs import IN_BUCKET, OUT_BUCKET, emulated_options, s3_output, upload_input

from mrspec.aws.boto_provision import BotoProvisioner
from mrspec.aws.driver import attach_run, run_on_aws
from mrspec.aws.state import StateStore
from mrspec.aws.watch import Snapshot
from mrspec.cli import main
from mrspec.errors import ExitCode
from mrspec.spec.loader import load_spec

ROOT = Path(__file__).resolve().parents[1]
WORDCOUNT = ROOT / "specs" / "wordcount" / "job.yaml"
# What may differ between two runs of the same job: names, times and costs.
RUN_SPECIFIC = {"run_id", "stack", "durations_s", "actual_usd", "logs_command", "output", "log_groups"}


def _mrspec(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(args)
    code = exited.value.code
    return int(code) if code is not None else 0


def _setup(aws: EmulatedAws) -> tuple[str, ...]:
    inputs = upload_input(aws, load_spec(WORDCOUNT))
    aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    return inputs


def _options(tmp_path: Path, inputs: tuple[str, ...], run_id: str, **more: Any) -> Any:
    output = f"s3://{OUT_BUCKET}/{run_id}/"
    return emulated_options(
        tmp_path, input_prefixes=inputs, output_prefix=output, run_id=run_id, **more
    )


def _parts(aws: EmulatedAws, run_id: str) -> list[bytes]:
    out = s3_output(aws, f"s3://{OUT_BUCKET}/{run_id}/")
    return [out[name] for name in sorted(out) if name.startswith("part-")]


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    same = {k: v for k, v in summary.items() if k not in RUN_SPECIFIC}
    same["plan"] = {k: v for k, v in same["plan"].items() if k != "listing_seconds"}  # timed
    return same


def _record(tmp_path: Path, run_id: str) -> Any:
    return StateStore(tmp_path / "state").find(run_id)


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, highlight=False), buffer


def _ended(aws: EmulatedAws, tmp_path: Path, run_id: str) -> str:
    arn = _record(tmp_path, run_id).execution_arn
    return str(wait_for_execution(aws.client("stepfunctions"), arn)["status"])


@pytest.mark.slow  # two or three emulated runs of the word count
def test_detach_then_attach_gives_the_foreground_runs_output_and_summary(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = _setup(emulated_aws)
    state = str(tmp_path / "state")
    assert run_on_aws(load_spec(WORDCOUNT), _options(tmp_path, inputs, "fg")) == 0
    foreground = json.loads(capsys.readouterr().out)

    console, said = _console()
    options = _options(tmp_path, inputs, "dt", detach=True, console=console)

    rc = run_on_aws(load_spec(WORDCOUNT), options)

    assert rc == 0
    detached = json.loads(said.getvalue())
    assert detached["attach_command"] == f"mrspec attach --run dt --state-dir {state}"
    assert _record(tmp_path, "dt").status == "detached"
    assert emulated_aws.client("stepfunctions").list_state_machines()["stateMachines"]
    assert _ended(emulated_aws, tmp_path, "dt") == "SUCCEEDED"  # nobody had to follow it
    assert _mrspec(["runs", "--state-dir", state]) == 0
    assert "mrspec attach --run dt" in capsys.readouterr().out
    assert _mrspec(["status", "--run", "dt", "--state-dir", state, "--json"]) == 0
    (status,) = json.loads(capsys.readouterr().out)["runs"]
    assert status["run_id"] == "dt" and status["execution_status"] == "SUCCEEDED"
    assert [p["succeeded"] == p["total"] > 0 for p in status["phases"]] == [True] * len(
        foreground["phases"]
    )
    assert status["elapsed_s"] >= 0 and status["estimate_usd"] == foreground["estimate_usd"]
    assert _mrspec(["status", "wordcount", "--state-dir", state]) == 0
    text = capsys.readouterr().out
    assert "wordcount run dt" in text and f"attach: mrspec attach --run dt --state-dir {state}" in text

    code = _mrspec(["attach", "--run", "dt", "--state-dir", state, "--json"])

    assert code == 0
    attached = json.loads(capsys.readouterr().out)
    assert _comparable(attached) == _comparable(foreground)
    assert len(attached["log_groups"]) == len(foreground["log_groups"])
    assert attached["outcome"] == "succeeded" and attached["teardown"] == "destroyed"
    assert _parts(emulated_aws, "dt") == _parts(emulated_aws, "fg") != []
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})
    assert list(StateStore(tmp_path / "state").runs()) == []
    assert not (tmp_path / "state" / "context").exists() or not any(
        (tmp_path / "state" / "context").iterdir()
    )


@pytest.mark.slow  # two or three emulated runs of the word count
def test_sighup_during_a_foreground_run_detaches_and_attach_finishes_it(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = _setup(emulated_aws)
    state = str(tmp_path / "state")

    def hang_up(snapshot: Snapshot) -> None:
        os.kill(os.getpid(), signal.SIGHUP)  # the terminal goes away mid-run

    console, said = _console()
    options = _options(
        tmp_path, inputs, "hup", handle_signals=True, on_progress=hang_up, console=console
    )
    previous = signal.getsignal(signal.SIGHUP)

    rc = run_on_aws(load_spec(WORDCOUNT), options)

    assert rc == ExitCode.INTERRUPTED
    assert signal.getsignal(signal.SIGHUP) == previous  # the handler is put back
    assert json.loads(said.getvalue())["detached"] == "SIGHUP"
    assert _record(tmp_path, "hup").status == "detached"
    assert _ended(emulated_aws, tmp_path, "hup") == "SUCCEEDED"  # it went on: not stopped
    assert emulated_aws.client("lambda").list_functions()["Functions"]  # nor torn down

    assert _mrspec(["attach", "--run", "hup", "--state-dir", state, "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["outcome"] == "succeeded"
    assert _parts(emulated_aws, "hup")
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})


@pytest.mark.slow  # two or three emulated runs of the word count
def test_ctrl_c_while_attached_detaches_and_with_stop_stops_and_tears_down(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = _setup(emulated_aws)
    console, said = _console()
    options = _options(tmp_path, inputs, "cc", detach=True, console=console)
    assert run_on_aws(load_spec(WORDCOUNT), options) == 0

    def ctrl_c(snapshot: Snapshot) -> None:
        raise KeyboardInterrupt

    console, said = _console()
    # attach_run runs while the execution does: its provisioner is made here, not
    # imported while a handler has the zip's mrspec swapped in
    detaching = emulated_options(
        tmp_path,
        on_progress=ctrl_c,
        stop_on_interrupt=False,
        console=console,
        provisioner_factory=BotoProvisioner,
    )
    assert attach_run("cc", detaching) == ExitCode.INTERRUPTED
    assert json.loads(said.getvalue())["detached"] == "Ctrl-C"
    assert _record(tmp_path, "cc").status == "detached"
    console, said = _console()
    stopping = replace(detaching, stop_on_interrupt=True, console=console)
    with pytest.raises(KeyboardInterrupt):
        attach_run("cc", stopping)

    summary = json.loads(said.getvalue())
    assert summary["outcome"] == "interrupted" and summary["teardown"] == "destroyed"
    assert _record(tmp_path, "cc") is None
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})
    assert _mrspec(["attach", "--run", "cc", "--state-dir", str(tmp_path / "state")]) == 2
    assert "no run 'cc'" in capsys.readouterr().err
