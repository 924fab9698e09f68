"""Task logs that outlive the stack: the driver saves them before teardown and
``mrspec logs`` prints them, from CloudWatch while the stack is up and from the state
directory after.

The emulated runs use the real handlers: their ``task_started`` lines name each
attempt, and moto's Lambda writes each invocation's output to the function's log group
(tests/aws_emulation.py), which moto's CloudWatch Logs serves through FilterLogEvents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from test_driver_lifecycle import assert_nothing_left
from test_emulated_jobs import (
    FAILING_MAPPER,
    FAILING_SPEC,
    IN_BUCKET,
    OUT_BUCKET,
    emulated_options,
    upload_input,
)

from mrspec.aws import runlogs
from mrspec.aws.driver import run_on_aws
from mrspec.aws.state import StateStore
from mrspec.cli import main
from mrspec.errors import JobFailedError
from mrspec.spec.loader import load_spec

GROUP = "/aws/lambda/mrspec-job-r1-map"


def _event(stream: str, ms: int, message: str) -> dict[str, Any]:
    return {"logStreamName": stream, "timestamp": ms, "message": message}


def _started(task_id: int, attempt: int) -> str:
    fields = {"event": "task_started", "phase": "map", "task_id": task_id, "attempt": attempt}
    return json.dumps({"mrspec": fields})


def _finished(task_id: int) -> str:
    return json.dumps({"mrspec": {"event": "task_finished", "phase": "map", "task_id": task_id}})


def test_events_are_cut_into_attempts_and_failed_tasks_keep_every_attempt() -> None:
    # One warm container (stream s1) ran task 0 then task 1's first attempt; task 1's
    # second attempt ran in s2; task 2 started in s3 and never finished (a timeout).
    events = [
        _event("s1", 1, "START RequestId: a"),
        _event("s1", 2, _started(0, 1)),
        _event("s1", 3, _finished(0)),
        _event("s1", 4, "REPORT RequestId: a Duration: 1.00 ms"),
        _event("s1", 5, "START RequestId: b"),
        _event("s1", 6, _started(1, 1)),
        _event("s1", 7, "ValueError: bad record"),
        _event("s1", 8, "REPORT RequestId: b Duration: 1.00 ms"),
        _event("s2", 9, _started(1, 2)),
        _event("s2", 10, "ValueError: bad record again"),
        _event("s2", 11, "REPORT RequestId: c Duration: 1.00 ms"),
        _event("s3", 12, _started(2, 1)),
    ]
    record = {"phase": "map", "task_id": 1, "attempt": 2, "error": "ValueError"}

    logs = runlogs.gather("job", "r1", {GROUP: events}, [record])

    assert [(t.label, t.state) for t in logs.failed] == [("map:1", "failed"), ("map:2", "unfinished")]
    failed = logs.failed[0]
    assert failed.record["error"] == "ValueError"
    assert [a.attempt for a in failed.attempts] == [1, 2]
    assert [e.message for e in failed.attempts[0].events][-2] == "ValueError: bad record"
    assert failed.attempts[1].events[1].message == "ValueError: bad record again"
    assert [i.label for i in logs.tail] == ["map:0"]
    assert len(logs.tail[0].events) == 4  # START .. REPORT
    # JSON round trip: what the state directory keeps reads back the same
    assert runlogs.RunLogs.from_json(json.loads(json.dumps(logs.to_json()))) == logs


def test_the_saved_logs_are_bounded() -> None:
    many = [_event("s0", 0, _started(0, 1))]
    many += [_event("s0", i, f"line {i}") for i in range(1, 1000)]
    others = [
        event
        for task in range(1, 51)
        for event in (
            _event(f"t{task}", 1000 + 10 * task, _started(task, 1)),
            *(_event(f"t{task}", 1000 + 10 * task + k, f"task {task} line {k}") for k in range(1, 6)),
            _event(f"t{task}", 1000 + 10 * task + 6, _finished(task)),
        )
    ]

    logs = runlogs.gather("job", "r1", {GROUP: many + others}, [{"phase": "map", "task_id": 0}])

    (attempt,) = logs.failed[0].attempts
    assert len(attempt.events) == runlogs.MAX_EVENTS_PER_ATTEMPT
    assert attempt.left_out == 1000 - runlogs.MAX_EVENTS_PER_ATTEMPT
    assert attempt.events[-1].message == "line 999"  # the end of an attempt is kept
    kept = [e.message for inv in logs.tail for e in inv.events]
    assert len(kept) == runlogs.TAIL_EVENTS  # 50 tasks x 7 events, the latest 200
    assert kept[-1] == _finished(50)
    every = [str(e["message"]) for e in others]
    assert kept == every[-runlogs.TAIL_EVENTS :]


def _mrspec(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(args)
    code = exited.value.code
    return int(code) if code is not None else 0


def _failing_job(aws: EmulatedAws, tmp_path: Path) -> tuple[Any, tuple[str, ...], str]:
    folder = tmp_path / "job"
    (folder / "input").mkdir(parents=True)
    (folder / "input" / "a.txt").write_text("fine\nboom\n")
    (folder / "failing.py").write_text(FAILING_MAPPER)
    (folder / "job.yaml").write_text(FAILING_SPEC)
    spec = load_spec(folder / "job.yaml")
    inputs = upload_input(aws, spec)
    aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    return spec, inputs, f"s3://{OUT_BUCKET}/failing/out/"


def test_a_failed_tasks_logs_are_readable_after_teardown(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, inputs, output = _failing_job(emulated_aws, tmp_path)
    state = tmp_path / "state"
    options = emulated_options(tmp_path, input_prefixes=inputs, output_prefix=output, run_id="r1")

    with pytest.raises(JobFailedError) as failed:
        run_on_aws(spec, options)

    assert f"mrspec logs --run r1 --state-dir {state}" in str(failed.value)
    summary = json.loads(capsys.readouterr().out)
    assert summary["logs_command"] == f"mrspec logs --run r1 --state-dir {state}"
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})  # log groups gone too
    # The reference: the emulator's own record of the failed invocations.
    errored = [
        i for i in emulated_aws.lambdas.invocations if i.errored and i.function_name.endswith("-map")
    ]
    assert len(errored) == 2  # max_attempts

    code = _mrspec(["logs", "--run", "r1", "--task", "map:0", "--state-dir", str(state), "--json"])

    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["source"] == "saved"
    (task,) = document["failed"]
    assert task["label"] == "map:0" and task["state"] == "failed"
    assert task["record"]["error"] == "UserCodeError"  # the runtime names user code
    assert "mapper exploded on 'boom'" in task["record"]["message"]
    assert [a["attempt"] for a in task["attempts"]] == [1, 2]
    for attempt, invocation in zip(task["attempts"], errored, strict=True):
        messages = [e["message"] for e in attempt["events"]]
        last_frame = json.loads(invocation.payload)["stackTrace"][-1].strip()
        assert last_frame in messages  # the traceback's last line, as Lambda logged it
        assert messages[-1].startswith("REPORT RequestId")

    code = _mrspec(["logs", "--run", "r1", "--state-dir", str(state)])

    text = capsys.readouterr().out
    assert code == 0
    assert "saved before teardown" in text
    assert "== map:0 failed: UserCodeError: " in text and "mapper exploded on 'boom'" in text
    assert "-- map:0 attempt 2" in text


def test_logs_of_a_kept_stack_come_from_cloudwatch_and_unknown_runs_are_refused(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, inputs, output = _failing_job(emulated_aws, tmp_path)
    state = str(tmp_path / "state")
    options = emulated_options(
        tmp_path, input_prefixes=inputs, output_prefix=output, run_id="r2", keep=True
    )
    with pytest.raises(JobFailedError):
        run_on_aws(spec, options)
    capsys.readouterr()
    (record,) = StateStore(tmp_path / "state").runs()

    code = _mrspec(["logs", "--run", "r2", "--state-dir", state, "--json"])

    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["source"] == "cloudwatch"
    assert [t["label"] for t in document["failed"]] == ["map:0"]
    # CloudWatch alone knows no failure record: a task that never finished is unfinished
    assert document["failed"][0]["state"] == "unfinished"
    assert len(document["failed"][0]["attempts"]) == 2

    assert _mrspec(["logs", "--run", "nosuch", "--state-dir", state]) == 2
    assert "no logs of run 'nosuch'" in capsys.readouterr().err
    assert _mrspec(["logs", "--run", "r2", "--task", "map:9", "--state-dir", state]) == 2
    assert "tasks with logs: map:0" in capsys.readouterr().err
    assert _mrspec(["destroy", record.job, "--run", "r2", "--state-dir", state]) == 0
