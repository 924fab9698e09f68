"""AWS's hard limits, enforced in the emulated AWS (moto plus tests/aws_emulation.py).

moto accepts much that AWS refuses. These checks make the emulation refuse it too, with
AWS's own error codes, so a test passing there passes for the reason it would on AWS:

- Step Functions: an execution input over 256 KiB is refused (``InvalidExecutionInput``);
  a Distributed Map item over 256 KiB fails the Map Run (``States.ItemReaderFailed``);
  moto already checks each state's output (``States.DataLimitExceeded``), which is the
  next state's input.
- Lambda (in ``LambdaEmulator.invoke``): an invocation payload or response over 6 MB
  (``RequestEntityTooLargeException``, ``Function.ResponseSizeTooLarge``); a handler
  running past its function's timeout (``Sandbox.Timedout``) or allocating past its
  memory (``Runtime.OutOfMemory``; Python allocations traced by ``tracemalloc``).
- IAM: a role's inline policies together over 10,240 characters, a managed policy over
  6,144, an 11th managed policy on a role (``LimitExceeded``).
- S3: more requests per second on one prefix than ``S3Budget`` allows answer 503
  ``SlowDown`` (AWS: at least 3,500 writes and 5,500 reads per second per prefix).

The figures are AWS's documented ones, written here independently of mrspec's own.
"""

from __future__ import annotations

import json
import re
import threading
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

STATE_PAYLOAD_BYTES = 262_144  # Step Functions: state input/output, one Map item
LAMBDA_PAYLOAD_BYTES = 6_291_456  # Lambda: synchronous request and response, 6 MB
IAM_INLINE_AGGREGATE = 10_240  # characters of a role's inline policies, no whitespace
IAM_MANAGED_POLICY = 6_144  # characters of one customer managed policy
IAM_MANAGED_PER_ROLE = 10
LAMBDA_RUNTIME_MB = 40  # what the Python runtime itself takes of a function's memory

READS = frozenset({"GET", "HEAD"})


def iam_chars(document: str) -> int:
    """IAM's count: the policy's characters without whitespace."""
    return len(re.sub(r"\s", "", document))


@dataclass
class S3Budget:
    """Requests per second one prefix (bucket + key up to its last ``/``) takes."""

    reads_per_s: int = 5_500
    writes_per_s: int = 3_500
    slowdowns: int = 0  # how many requests were answered SlowDown
    # what "now" is; a test of the budget itself steps a clock of its own, so how fast a
    # loaded machine gets from one request to the next cannot change what it sees
    clock: Callable[[], float] = time.monotonic
    _seen: dict[tuple[str, bool], deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, prefix: str, read: bool) -> bool:
        limit = self.reads_per_s if read else self.writes_per_s
        now = self.clock()
        with self._lock:
            window = self._seen.setdefault((prefix, read), deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                self.slowdowns += 1
                return False
            window.append(now)
            return True


SLOW_DOWN_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    "<Message>Please reduce your request rate.</Message></Error>"
)


def _limit_exceeded(message: str) -> Exception:
    from moto.iam.exceptions import LimitExceededException

    return LimitExceededException(message)


def install(monkeypatch: pytest.MonkeyPatch, budget: S3Budget) -> None:
    """Patch moto to refuse what AWS refuses (the Lambda checks live in the emulator)."""
    _install_item_reader(monkeypatch)
    _install_execution_input(monkeypatch)
    _install_iam(monkeypatch)
    _install_s3_budget(monkeypatch, budget)


def _install_item_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_output_transformer.transformer_json import (
        ResourceOutputTransformerJson,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = ResourceOutputTransformerJson._eval_body

    def eval_body(self: Any, env: Any) -> None:
        original(self, env)
        for index, item in enumerate(env.stack[-1]):
            size = len(json.dumps(item, separators=(",", ":")).encode())
            if size <= STATE_PAYLOAD_BYTES:
                continue
            error = StatesErrorName(typ=StatesErrorNameType.StatesItemReaderFailed)
            cause = f"item {index} is {size} bytes, over the {STATE_PAYLOAD_BYTES}-byte item limit"
            raise FailureEventException(
                failure_event=FailureEvent(
                    env=env,
                    error_name=error,
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(
                        mapRunFailedEventDetails=MapRunFailedEventDetails(
                            error=error.error_name, cause=cause
                        )
                    ),
                )
            )

    monkeypatch.setattr(ResourceOutputTransformerJson, "_eval_body", eval_body)


def _install_execution_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.exceptions import InvalidExecutionInput
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        given = kwargs.get("execution_input", args[1] if len(args) > 1 else None) or ""
        if len(given.encode()) > STATE_PAYLOAD_BYTES:
            raise InvalidExecutionInput(
                f"the execution input is {len(given.encode())} bytes, over the "
                f"{STATE_PAYLOAD_BYTES}-byte limit"
            )
        return original(self, state_machine_arn, *args, **kwargs)

    monkeypatch.setattr(StepFunctionsParserBackend, "start_execution", start_execution)


def _install_iam(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.iam.models import IAMBackend

    put_role_policy = IAMBackend.put_role_policy
    create_policy = IAMBackend.create_policy
    attach_role_policy = IAMBackend.attach_role_policy

    def checked_put_role_policy(
        self: Any, role_name: str, policy_name: str, policy_json: str
    ) -> None:
        role = self.get_role(role_name)
        others = {n: d for n, d in role.policies.items() if n != policy_name}
        total = iam_chars(policy_json) + sum(iam_chars(d) for d in others.values())
        if total > IAM_INLINE_AGGREGATE:
            raise _limit_exceeded(
                f"Maximum policy size of {IAM_INLINE_AGGREGATE} bytes exceeded for role {role_name}"
            )
        put_role_policy(self, role_name, policy_name, policy_json)

    def checked_create_policy(self: Any, *args: Any, **kwargs: Any) -> Any:
        document = kwargs.get("policy_document", args[2] if len(args) > 2 else "")
        if iam_chars(document) > IAM_MANAGED_POLICY:
            raise _limit_exceeded(f"Cannot exceed quota for PolicySize: {IAM_MANAGED_POLICY}")
        return create_policy(self, *args, **kwargs)

    def checked_attach_role_policy(self: Any, policy_arn: str, role_name: str) -> None:
        role = self.get_role(role_name)
        if policy_arn not in role.managed_policies and (
            len(role.managed_policies) >= IAM_MANAGED_PER_ROLE
        ):
            raise _limit_exceeded(f"Cannot exceed quota for PoliciesPerRole: {IAM_MANAGED_PER_ROLE}")
        attach_role_policy(self, policy_arn, role_name)

    monkeypatch.setattr(IAMBackend, "put_role_policy", checked_put_role_policy)
    monkeypatch.setattr(IAMBackend, "create_policy", checked_create_policy)
    monkeypatch.setattr(IAMBackend, "attach_role_policy", checked_attach_role_policy)


def _install_s3_budget(monkeypatch: pytest.MonkeyPatch, budget: S3Budget) -> None:
    from moto.s3.responses import S3Response
    from moto.s3.utils import bucket_name_from_url

    original = S3Response.key_response

    def key_response(self: Any, request: Any, full_url: str, headers: Any) -> Any:
        # parsed from the URL: moto's own parsing reads the request body, which the
        # original handler then would find empty
        path = urlsplit(full_url).path.lstrip("/")
        bucket = bucket_name_from_url(full_url)
        if not bucket:  # path-style: the bucket is the first segment
            bucket, _, path = path.partition("/")
        prefix = f"{bucket}/{path.rpartition('/')[0]}"
        if not budget.admit(prefix, request.method in READS):
            return 503, {"Content-Type": "application/xml"}, SLOW_DOWN_BODY
        return original(self, request, full_url, headers)

    monkeypatch.setattr(S3Response, "key_response", key_response)


class LambdaLimitError(Exception):
    """What Lambda answers instead of the handler's result; the emulator reports it under
    Lambda's own error type (``error_type``) like a handler's exception."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def check_request(event: Any) -> None:
    size = len(json.dumps(event).encode())
    if size > LAMBDA_PAYLOAD_BYTES:
        raise LambdaLimitError(
            "RequestEntityTooLargeException",
            f"Request must be smaller than {LAMBDA_PAYLOAD_BYTES} bytes for the InvokeFunction "
            f"operation (it is {size})",
        )


@contextmanager
def traced_memory() -> Iterator[Callable[[], int]]:
    """Python's allocations during the block: yields a function giving their peak (bytes
    above what was allocated when the block began)."""
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    peak = [0]
    try:
        yield lambda: peak[0]
    finally:
        peak[0] = max(0, tracemalloc.get_traced_memory()[1] - base)
        if started_here:
            tracemalloc.stop()


def check_run(context: Any, seconds: float, peak_bytes: int, response: str) -> None:
    """After a handler returned: Lambda would have stopped it, or refused its answer."""
    if seconds > context.timeout_s:
        raise LambdaLimitError(
            "Sandbox.Timedout", f"Task timed out after {context.timeout_s:.2f} seconds"
        )
    usable = (context.memory_limit_in_mb - LAMBDA_RUNTIME_MB) * 1024**2
    if peak_bytes > usable:
        raise LambdaLimitError(
            "Runtime.OutOfMemory",
            f"Runtime exited with error: signal: killed (the handler allocated "
            f"{peak_bytes / 1024**2:.0f} MB of a {context.memory_limit_in_mb} MB function)",
        )
    if len(response.encode()) > LAMBDA_PAYLOAD_BYTES:
        raise LambdaLimitError(
            "Function.ResponseSizeTooLarge",
            f"Response payload size exceeded maximum allowed payload size "
            f"({LAMBDA_PAYLOAD_BYTES} bytes)",
        )
