"""Emulated AWS for tests: moto in-process with Step Functions execution switched on, and
Lambda functions run in-process from their uploaded deployment zip.

moto runs Lambda code only through Docker, which these machines do not have. The
``emulated_aws`` fixture replaces ``moto.awslambda.models.LambdaFunction._invoke_lambda``
with :meth:`LambdaEmulator.invoke`, which

- unpacks the function's zip (the bytes moto stored at ``CreateFunction``) once per content
  hash into a private folder,
- imports the handler (``module.function``) from that folder only: the folder goes first on
  ``sys.path`` and every module whose top-level name the zip provides (``mrspec``, the job's
  own modules, vendored requirements) is swapped into ``sys.modules`` for the call and
  swapped out afterwards, so two jobs' packages never see each other's modules and the test
  process's own ``mrspec`` is left alone; a zip's modules stay loaded between its calls, like
  a warm Lambda container,
- sets the function's environment variables for the call,
- returns ``(payload_json, errored, logs)`` like moto's Docker path: a handler exception
  becomes Lambda's error payload (``errorType`` = the exception class name, ``errorMessage``,
  ``stackTrace``), which Step Functions turns into the task's error and cause.

Calls are serialised by one lock (module swapping and stdout capture are process-wide). Concurrency inside the
state machine still happens (moto starts one thread per Map child up to MaxConcurrency);
only the handler bodies take turns. Correctness, not speed, is what these tests show.

Known gap: while a handler runs, an import of a module the zip provides made by another
thread (for example a lazy ``import mrspec.x`` in the driver's polling loop) would load the
zip's copy. Code polling moto while a run is in flight imports what it needs up front.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import importlib
import io
import json
import os
import sys
import threading
import time
import traceback
import types
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_limits
import pytest

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account


@dataclass
class LambdaContext:
    """The attributes of Lambda's Python context object that handlers commonly read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    log_group_name: str
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _Current:
    """``function`` and ``request_id`` of the running invocation, kept in context
    variables so threads started with ``contextvars.copy_context()`` see them too."""

    _function: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)
    _request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

    @property
    def function(self) -> str | None:
        return self._function.get()

    @function.setter
    def function(self, value: str | None) -> None:
        self._function.set(value)

    @property
    def request_id(self) -> str:
        return self._request_id.get()

    @request_id.setter
    def request_id(self, value: str) -> None:
        self._request_id.set(value)


@dataclass
class Invocation:
    function_name: str
    event: Any
    errored: bool
    payload: str


class LambdaEmulator:
    """Runs moto's Lambda functions in-process from their deployment zips."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.RLock()
        self._unpacked: dict[str, Path] = {}
        self._warm: dict[str, dict[str, types.ModuleType]] = {}
        self.invocations: list[Invocation] = []
        # Environment variables a call added to the process; removed when the fixture ends.
        self.added_environment: set[str] = set()
        # The function whose handler runs in this thread, or in a thread the handler
        # started with its context (the map task's read-ahead): for request accounting.
        self.current = _Current()

    # -- the replacement for LambdaFunction._invoke_lambda --------------------------------
    def invoke(self, function: Any, event: Any) -> tuple[str, bool, str]:
        if isinstance(event, (str, bytes)):
            event = json.loads(event or "{}")
        if event is None:
            event = {}
        function.logs_backend.ensure_log_group(function.logs_group_name)
        zip_bytes = self._zip_bytes(function)
        digest = hashlib.sha256(zip_bytes).hexdigest()
        with self._lock:
            folder = self._unpack(digest, zip_bytes)
            context = LambdaContext(
                function_name=function.function_name,
                memory_limit_in_mb=int(function.memory_size),
                timeout_s=int(function.timeout),
                log_group_name=function.logs_group_name,
                invoked_function_arn=function.function_arn,
            )
            started = time.monotonic()
            self.current.function = function.function_name
            self.current.request_id = context.aws_request_id
            output = io.StringIO()  # what the handler prints goes to its log, as in Lambda
            try:
                aws_limits.check_request(event)
                with (
                    self._isolated(digest, folder),
                    _environment(function.environment_vars, self.added_environment),
                    redirect_stdout(output),
                    redirect_stderr(output),
                    aws_limits.traced_memory() as peak,
                ):
                    handler = _resolve_handler(function.handler)
                    result = handler(event, context)
                payload, errored = json.dumps(result), False
                aws_limits.check_run(context, time.monotonic() - started, peak(), payload)
                logs = output.getvalue()
            except Exception as exc:  # the handler's failure is the function's result
                trace = traceback.format_exception(exc)
                payload = json.dumps(
                    {
                        "errorMessage": str(exc),
                        "errorType": getattr(exc, "error_type", type(exc).__name__),
                        "requestId": context.aws_request_id,
                        "stackTrace": trace,
                    }
                )
                errored = True
                logs = output.getvalue() + "".join(trace)
            self.current.function = None
            elapsed_ms = (time.monotonic() - started) * 1000
            self.invocations.append(
                Invocation(function.function_name, event, errored, payload)
            )
        report = f"REPORT RequestId: {context.aws_request_id} Duration: {elapsed_ms:.2f} ms"
        function.save_logs(f"{logs}{report}")
        return payload, errored, logs

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _zip_bytes(function: Any) -> bytes:
        data = getattr(function, "code_bytes", b"")
        if not data:
            data = base64.b64decode(function.code["ZipFile"])
        assert isinstance(data, bytes)
        return data

    def _unpack(self, digest: str, zip_bytes: bytes) -> Path:
        folder = self._unpacked.get(digest)
        if folder is None:
            folder = self.root / digest[:16]
            with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
                archive.extractall(folder)
            self._unpacked[digest] = folder
        return folder

    @contextmanager
    def _isolated(self, digest: str, folder: Path) -> Iterator[None]:
        owned = _top_level_names(folder)

        def mine(name: str) -> bool:
            return name.partition(".")[0] in owned

        saved = {name: mod for name, mod in sys.modules.items() if mine(name)}
        for name in saved:
            del sys.modules[name]
        sys.modules.update(self._warm.get(digest, {}))
        sys.path.insert(0, str(folder))
        importlib.invalidate_caches()
        try:
            yield
        finally:
            sys.path.remove(str(folder))
            self._warm[digest] = {
                name: mod for name, mod in list(sys.modules.items()) if mine(name)
            }
            for name in self._warm[digest]:
                del sys.modules[name]
            sys.modules.update(saved)
            importlib.invalidate_caches()


def _top_level_names(folder: Path) -> set[str]:
    names: set[str] = set()
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name.isidentifier():
            names.add(entry.name)
        elif entry.suffix in (".py", ".so") and entry.name.split(".")[0].isidentifier():
            names.add(entry.name.split(".")[0])
    return names


def _resolve_handler(handler: str) -> Any:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise RuntimeError(f"Bad handler {handler!r}: expected module.function")
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


@contextmanager
def _environment(variables: dict[str, str], added: set[str]) -> Iterator[None]:
    """The function's variables in ``os.environ`` for one call.

    Variables that existed get their old values back; ones the call added stay (recorded
    in ``added``) until the fixture ends. Removing a key while the driver's thread creates
    a boto3 client races botocore's ``os.environ.copy()``, which then raises KeyError.
    Every call sets all of its own variables, so a later call never sees stale values.
    """
    saved = {name: os.environ[name] for name in variables if name in os.environ}
    added.update(name for name in variables if name not in saved)
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.update(saved)


def _bucket_permission_over_tls(bucket: Any, action: str, resource: str) -> Any:
    """moto's bucket-policy check, with conditions evaluated for a TLS request.

    moto ignores a statement's ``Condition``, so the working bucket's TLS-only policy
    (Deny s3:* when ``aws:SecureTransport`` is false) would deny every request. Every
    request here is HTTPS, so such a statement does not apply; any other conditional
    statement is kept and judged by moto as before.
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(bucket.policy)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [s for s in statements if not _denies_plain_http_only(s)]
    if not kept:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(
        action, resource
    )


def _denies_plain_http_only(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition", {})
    secure = condition.get("Bool", {}).get("aws:SecureTransport")
    return (
        statement.get("Effect") == "Deny"
        and list(condition) == ["Bool"]
        and secure in ("false", ["false"])
    )


@dataclass(frozen=True)
class S3Request:
    function: str  # the Lambda function whose handler made it, "" for other callers
    request_id: str  # the invocation (one task attempt), "" for other callers
    operation: str  # GetObject, PutObject, ListObjectsV2, ...


@contextmanager
def count_s3_requests(emulator: LambdaEmulator) -> Iterator[list[S3Request]]:
    """Record every S3 API call made through botocore, tagged with the invocation that
    made it (handlers run in the thread that invoked them)."""
    from botocore.client import BaseClient

    requests: list[S3Request] = []
    original = BaseClient._make_api_call

    def counting(self: Any, operation_name: str, api_params: Any) -> Any:
        if self.meta.service_model.service_name == "s3":
            function = getattr(emulator.current, "function", None) or ""
            request_id = getattr(emulator.current, "request_id", "") if function else ""
            requests.append(S3Request(function, request_id, operation_name))
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = counting  # type: ignore[method-assign]
    try:
        yield requests
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


@dataclass
class EmulatedAws:
    region: str
    lambdas: LambdaEmulator
    s3_budget: aws_limits.S3Budget = field(default_factory=aws_limits.S3Budget)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]


@pytest.fixture
def emulated_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedAws]:
    """moto with Step Functions execution on and Lambda run in-process from the zips."""
    from moto import mock_aws
    from moto.awslambda.models import LambdaFunction
    from moto.s3.models import FakeBucket
    from moto.stepfunctions.exceptions import ValidationException
    from moto.stepfunctions.models import StateMachineInstance
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.responses import StepFunctionResponse

    from mrspec.storage.s3 import S3Storage

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    emulator = LambdaEmulator(tmp_path / "lambda-code")
    emulator.root.mkdir()

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        return emulator.invoke(self, event)

    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", _invoke_lambda)
    monkeypatch.setattr(FakeBucket, "get_permission", _bucket_permission_over_tls)
    original_start = ExecutionWorker.start

    def start_and_wait_for_environment(self: Any) -> None:
        # moto parses the definition in the execution's thread and only then creates the
        # environment that ListMapRuns and StopExecution read: calling either right after
        # StartExecution fails with AttributeError. AWS has no such window; close it here.
        original_start(self)
        deadline = time.monotonic() + 30
        while self.env is None and time.monotonic() < deadline:
            time.sleep(0.005)

    monkeypatch.setattr(ExecutionWorker, "start", start_and_wait_for_environment)
    original_list_executions = StepFunctionResponse.list_executions

    def list_executions(self: Any) -> Any:
        # ListExecutions(mapRunArn=...) lists a Map Run's children on AWS; moto cannot and
        # crashes with TypeError. Answer like a service that does not offer it.
        if self._get_param("stateMachineArn") is None:
            raise ValidationException("moto cannot list a Map Run's child executions")
        return original_list_executions(self)

    monkeypatch.setattr(StepFunctionResponse, "list_executions", list_executions)
    # moto deep-copies a state machine, its executions included, at every StartExecution,
    # and a started execution holds a lock: a second execution of one state machine (a
    # resume's) fails with TypeError. AWS has no such limit: copy it without them.
    monkeypatch.setattr(StateMachineInstance, "__deepcopy__", _copy_without_executions, raising=False)
    budget = aws_limits.S3Budget()  # AWS's per-prefix rates; a test may lower them
    aws_limits.install(monkeypatch, budget)
    S3Storage.reset_shared()
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            yield EmulatedAws(region=REGION, lambdas=emulator, s3_budget=budget)
    finally:
        for name in emulator.added_environment:
            os.environ.pop(name, None)
    S3Storage.reset_shared()


def _copy_without_executions(self: Any, memo: dict[int, Any]) -> Any:
    import copy

    clone = type(self).__new__(type(self))
    memo[id(self)] = clone
    for name, value in vars(self).items():
        setattr(clone, name, [] if name == "executions" else copy.deepcopy(value, memo))
    return clone


def make_zip(files: dict[str, str]) -> bytes:
    """A small deployment zip from ``{path: source}``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in sorted(files.items()):
            archive.writestr(name, text)
    return buffer.getvalue()


def wait_for_execution(sfn: Any, execution_arn: str, timeout_s: float = 60) -> dict[str, Any]:
    """Poll DescribeExecution until the execution leaves RUNNING."""
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution still running after {timeout_s}s: {execution_arn}")
        time.sleep(0.05)
