"""The job's Step Functions state machine (Amazon States Language, JSONPath flavour).

Shape of a run (the parent workflow is STANDARD)::

    MapPhase (Distributed Map over the map manifest, one child per map task)
      -> MergePhase1 .. MergePhaseN (one Distributed Map per merge level of the plan, one
         child per merge task; none when the map tasks fit one reducer's fan-in)
      -> ReducePhase (Distributed Map over the reduce manifest, one child per partition)
      -> Commit (Lambda: writes the output manifest last)
    MapPhase / ReducePhase fail -> Report<Phase>Failure (Lambda: raises the failed task's
      own error, so it becomes the execution's error and cause) -> <Phase>Failed (Fail)

A job with steps is one parent too: each step's phases in order (``Step0MapPhase``,
``Step0ReducePhase``, ``Step1MapPhase``, ``Step1Merge1Phase``, ...; phase names
``steps[1].map`` as ``runtime.layout.step_phase`` gives them), then the one Commit. Its
children's payloads and the commit's carry ``"step"`` (the handler loads that step's
``TaskConfig``); a one-step job's payloads have none, so its definition is unchanged.

Each child is one ``lambda:invoke`` Task with retriers, tried in order: AWS's recommended
retrier for Lambda service errors and throttling; none for ``TaskFailedError`` (the
runtime's "retrying will not help": bad-record limit, user code raising in task form);
then one for every other error giving the task ``limits.max_attempts`` attempts in all.
Retries happen in the state machine, not inside the handler, so a timed-out or crashed
Lambda is retried too. Handlers get ``attempt`` = ``$$.State.RetryCount`` + 1.

Children's payloads carry references only (task manifests, the work prefix); results go
to S3 through ``ResultWriter``, never through the 256 KiB state payload.

``emulator=True`` gives the variant moto's engine accepts (TESTING.md): STANDARD children
instead of EXPRESS, and a float ``ToleratedFailurePercentage``. Nothing else differs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mrspec.aws.model import ExecutionType
from mrspec.runtime import retry
from mrspec.runtime.layout import split_label

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
S3_GET_OBJECT = "arn:aws:states:::s3:getObject"
S3_PUT_OBJECT = "arn:aws:states:::s3:putObject"

LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
# Errors retrying cannot fix (mrspec.runtime.retry: the handlers report every
# non-retryable error under this name): a task raising it fails at once.
NON_RETRYABLE_ERRORS = (retry.NON_RETRYABLE_NAME,)
SERVICE_RETRY_INTERVAL_S = 2
SERVICE_RETRY_ATTEMPTS = 6
SERVICE_RETRY_BACKOFF = 2.0
TASK_RETRY_INTERVAL_S = retry.RETRY_BASE_S
TASK_RETRY_BACKOFF = retry.RETRY_BACKOFF

EXPRESS_LIMIT_S = 300  # an EXPRESS execution runs at most 5 minutes
EXPRESS_MARGIN_S = 60  # start-up, queueing and the service retries' backoff

MAP_STATE = "MapPhase"
REDUCE_STATE = "ReducePhase"
COMMIT_STATE = "Commit"


@dataclass(frozen=True)
class PhaseInput:
    """What the definition needs to know about one Distributed Map phase."""

    name: str  # "map" | "merge-<level>" | "reduce", "steps[<s>].map" ... with steps
    function_arn: str
    manifest_key: str
    results_prefix: str
    max_concurrency: int
    execution_type: ExecutionType
    # a job with steps: the step its tasks belong to, sent to the handler (which loads
    # that step's TaskConfig); None for a one-step job, whose payload has no "step"
    step: int | None = None


@dataclass(frozen=True)
class DefinitionInput:
    job_name: str
    run_id: str
    bucket: str
    work_uri: str  # s3://<bucket>/runs/<run id>
    phases: tuple[PhaseInput, ...]  # map, then reduce (absent for map-only jobs)
    commit_function_arn: str
    max_attempts: int
    emulator: bool = False
    commit_step: int | None = None  # a job with steps: its last step (the output's config)


def task_retry_delays(max_attempts: int) -> list[float]:
    """Seconds waited before each task retry (``max_attempts - 1`` of them)."""
    return retry.retry_bounds(max_attempts)


def child_execution_type(timeout_s: int, max_attempts: int) -> ExecutionType:
    """EXPRESS when every attempt of a task, with the waits between them, fits well inside
    the 5-minute EXPRESS limit; STANDARD otherwise."""
    worst = timeout_s * max_attempts + sum(task_retry_delays(max_attempts))
    return "EXPRESS" if worst + EXPRESS_MARGIN_S <= EXPRESS_LIMIT_S else "STANDARD"


def retriers(max_attempts: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "ErrorEquals": list(LAMBDA_SERVICE_ERRORS),
            "IntervalSeconds": SERVICE_RETRY_INTERVAL_S,
            "MaxAttempts": SERVICE_RETRY_ATTEMPTS,
            "BackoffRate": SERVICE_RETRY_BACKOFF,
            "JitterStrategy": "FULL",  # retries of many tasks at once spread out
        }
    ]
    if max_attempts > 1:
        out.append({"ErrorEquals": list(NON_RETRYABLE_ERRORS), "MaxAttempts": 0})
        out.append(
            {
                "ErrorEquals": ["States.ALL"],
                "IntervalSeconds": TASK_RETRY_INTERVAL_S,
                "MaxAttempts": max_attempts - 1,
                "BackoffRate": TASK_RETRY_BACKOFF,
                "JitterStrategy": "FULL",
            }
        )
    return out


def _invoke(function_arn: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": function_arn, "Payload": payload},
        "OutputPath": "$.Payload",
    }


_MERGE = re.compile(r"^merge-([1-9][0-9]*)$")
# (step, phase within it) of a phase name ("steps[1].merge-2"; step None in a one-step job)
_split = split_label


def phase_step(name: str) -> int | None:
    """The step of a phase of a job with steps (``steps[1].map`` -> 1); None otherwise."""
    return _split(name)[0]


def phase_kind(name: str) -> str:
    """The task kind of a phase: ``map``, ``merge`` or ``reduce``."""
    _, inner = _split(name)
    if inner in ("map", "reduce"):
        return inner
    if _MERGE.match(inner):
        return "merge"
    raise ValueError(f"unknown phase kind {name!r}")


def _title(name: str) -> str:
    """``merge-2`` -> ``Merge2``, ``steps[1].map`` -> ``Step1Map``: state names and
    Labels take no special characters."""
    step, inner = _split(name)
    title = "".join(part.capitalize() for part in inner.split("-"))
    return title if step is None else f"Step{step}{title}"


def state_name(phase: str) -> str:
    """The Map state of a phase: ``MapPhase``, ``Merge2Phase``, ``ReducePhase``;
    ``Step1MapPhase`` ... in a job with steps."""
    phase_kind(phase)
    return f"{_title(phase)}Phase"


def _map_state(inp: DefinitionInput, phase: PhaseInput, next_state: str) -> dict[str, Any]:
    task_state = f"Run{_title(phase.name)}Task"
    payload: dict[str, Any] = {"phase": phase_kind(phase.name)}
    if phase.step is not None:
        payload["step"] = phase.step
    payload.update({"task.$": "$.task", "run.$": "$.run", "work": inp.work_uri,
                    "attempt.$": "$$.State.RetryCount"})
    child_task = _invoke(phase.function_arn, payload)
    child_task["Retry"] = retriers(inp.max_attempts)
    child_task["End"] = True
    tolerated: int | float = 0.0 if inp.emulator else 0
    execution_type = "STANDARD" if inp.emulator else phase.execution_type
    return {
        "Type": "Map",
        "Comment": f"one child workflow per {phase.name} task",
        "Label": _title(phase.name).lower(),
        "ItemReader": {
            "Resource": S3_GET_OBJECT,
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": inp.bucket, "Key": phase.manifest_key},
        },
        "ItemSelector": {"task.$": "$$.Map.Item.Value", "run.$": "$$.Execution.Input"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
            "StartAt": task_state,
            "States": {task_state: child_task},
        },
        "MaxConcurrency": phase.max_concurrency,
        "ToleratedFailurePercentage": tolerated,
        "ResultWriter": {
            "Resource": S3_PUT_OBJECT,
            "Parameters": {"Bucket": inp.bucket, "Prefix": phase.results_prefix},
        },
        "ResultPath": None,
        "Catch": [
            {
                "ErrorEquals": ["States.ALL"],
                "ResultPath": "$.failure",
                "Next": _report_state(phase.name),
            }
        ],
        "Next": next_state,
    }


def _report_state(phase: str) -> str:
    return f"Report{_title(phase)}Failure"


def _failed_state(phase: str) -> str:
    return f"{_title(phase)}Failed"


def _report_failure_states(inp: DefinitionInput, phase: str) -> dict[str, dict[str, Any]]:
    """A Lambda that re-raises the failed task's recorded error (so the execution's error
    is the task's), then a Fail state in case no task recorded one (a timeout, a crash)."""
    report = _invoke(
        inp.commit_function_arn,
        {
            "action": "report_failure",
            "phase": phase,
            "run.$": "$$.Execution.Input",
            "work": inp.work_uri,
            "error.$": "$.failure.Error",
            "cause.$": "$.failure.Cause",
        },
    )
    report["Retry"] = retriers(1)
    report["ResultPath"] = None
    report["Next"] = _failed_state(phase)
    failed = {
        "Type": "Fail",
        "Comment": f"the {phase} phase failed and no task recorded its error",
        "ErrorPath": "$.failure.Error",
        "CausePath": "$.failure.Cause",
    }
    return {_report_state(phase): report, _failed_state(phase): failed}


def build_definition(inp: DefinitionInput) -> dict[str, Any]:
    """The ASL document of the job's parent workflow."""
    if not inp.phases or _split(inp.phases[0].name)[1] != "map":
        raise ValueError("a job's first phase is its map phase")
    names = [state_name(p.name) for p in inp.phases]  # raises on an unknown phase
    states: dict[str, Any] = {}
    for i, phase in enumerate(inp.phases):
        nxt = names[i + 1] if i + 1 < len(inp.phases) else COMMIT_STATE
        states[names[i]] = _map_state(inp, phase, nxt)
    commit_payload: dict[str, Any] = {"action": "commit"}
    if inp.commit_step is not None:
        commit_payload["step"] = inp.commit_step
    commit_payload.update({"run.$": "$$.Execution.Input", "work": inp.work_uri,
                           "started.$": "$$.Execution.StartTime"})
    commit = _invoke(inp.commit_function_arn, commit_payload)
    commit["Retry"] = retriers(inp.max_attempts)
    commit["End"] = True
    states[COMMIT_STATE] = commit
    for phase in inp.phases:
        states.update(_report_failure_states(inp, phase.name))
    phase_names = " -> ".join(p.name for p in inp.phases)
    return {
        "Comment": (
            f"mrspec job {inp.job_name} (run {inp.run_id}): {phase_names} -> commit. "
            "Generated by mrspec compile; do not edit."
        ),
        "StartAt": names[0],
        "States": states,
    }


def parent_transitions(phases: int) -> int:
    """State transitions of the parent on a successful run: one per phase, plus commit."""
    return phases + 1
