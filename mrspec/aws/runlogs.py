"""The task logs of a run that outlive its stack: what ``mrspec logs`` prints.

Teardown deletes the functions' log groups. Before it, the driver reads them (and the
failure records in the working bucket) and saves a bounded :class:`RunLogs` in the state
directory: for every failed task its error record and the log events of each of its
attempts, and a tail of the other invocations' events. While a stack is up, the same
structure is read straight from CloudWatch.

Events are cut into invocations: Lambda writes one invocation at a time to a log
stream, from its ``START`` line (the emulator writes a stream per invocation and no
``START``) to its ``REPORT`` line. An invocation is a task attempt when the handler's
``task_started`` line (``mrspec.aws.handlers._log``) names its phase, task id and attempt;
a task that logged ``task_started`` and never ``task_finished`` is unfinished (timed out,
out of memory, stopped), which is how a task that wrote no failure record is still found.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

# Bounds on what is saved, so a 5,000-task run's record stays a few megabytes.
MAX_FAILED_TASKS = 20
MAX_EVENTS_PER_ATTEMPT = 300  # the last ones: a traceback ends an attempt's log
TAIL_EVENTS = 200  # of the other invocations, the latest
MAX_MESSAGE_CHARS = 4000


@dataclass(frozen=True)
class LogEvent:
    timestamp: int  # ms since the epoch, as CloudWatch gives it
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogEvent:
        return cls(int(data["timestamp"]), str(data["message"]))


@dataclass(frozen=True)
class Invocation:
    """One function invocation's events; ``task_id`` is None when no task was named (the
    commit function, an invocation that failed before the handler logged)."""

    phase: str
    task_id: int | None
    attempt: int
    log_group: str
    stream: str
    events: tuple[LogEvent, ...]
    finished: bool = False  # the handler logged task_finished
    left_out: int = 0  # earlier events not kept (the bound)

    @property
    def label(self) -> str:
        return self.phase if self.task_id is None else f"{self.phase}:{self.task_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "task_id": self.task_id,
            "label": self.label,
            "attempt": self.attempt,
            "log_group": self.log_group,
            "stream": self.stream,
            "finished": self.finished,
            "left_out": self.left_out,
            "events": [e.to_json() for e in self.events],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Invocation:
        task_id = data.get("task_id")
        return cls(
            phase=str(data["phase"]),
            task_id=None if task_id is None else int(task_id),
            attempt=int(data.get("attempt", 0)),
            log_group=str(data.get("log_group", "")),
            stream=str(data.get("stream", "")),
            events=tuple(LogEvent.from_json(e) for e in data.get("events", ())),
            finished=bool(data.get("finished", False)),
            left_out=int(data.get("left_out", 0)),
        )


@dataclass(frozen=True)
class FailedTask:
    phase: str
    task_id: int
    state: str  # "failed" (an error record) | "unfinished" (started, never finished)
    record: Mapping[str, Any] = field(default_factory=dict)  # the handler's error record
    attempts: tuple[Invocation, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.phase}:{self.task_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "task_id": self.task_id,
            "label": self.label,
            "state": self.state,
            "record": dict(self.record),
            "attempts": [a.to_json() for a in self.attempts],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FailedTask:
        return cls(
            phase=str(data["phase"]),
            task_id=int(data["task_id"]),
            state=str(data.get("state", "failed")),
            record=dict(data.get("record") or {}),
            attempts=tuple(Invocation.from_json(a) for a in data.get("attempts", ())),
        )


@dataclass(frozen=True)
class RunLogs:
    job: str
    run_id: str
    source: str  # "saved" (read from the state directory) | "cloudwatch" (the live stack)
    read_at: float  # unix seconds when the logs were read from CloudWatch
    log_groups: tuple[str, ...] = ()
    failed: tuple[FailedTask, ...] = ()
    tail: tuple[Invocation, ...] = ()  # the latest events of the other invocations
    failed_left_out: int = 0  # failed tasks beyond MAX_FAILED_TASKS

    def only(self, label: str) -> RunLogs:
        """The logs of one task (``map:17``, ``reduce:0``, ``commit``)."""
        return replace(
            self,
            failed=tuple(t for t in self.failed if t.label == label),
            tail=tuple(i for i in self.tail if i.label == label),
        )

    def labels(self) -> list[str]:
        seen = [t.label for t in self.failed] + [i.label for i in self.tail]
        return sorted(set(seen), key=seen.index)

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "run_id": self.run_id,
            "source": self.source,
            "read_at": self.read_at,
            "log_groups": list(self.log_groups),
            "failed": [t.to_json() for t in self.failed],
            "failed_left_out": self.failed_left_out,
            "tail": [i.to_json() for i in self.tail],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunLogs:
        return cls(
            job=str(data["job"]),
            run_id=str(data["run_id"]),
            source=str(data.get("source", "saved")),
            read_at=float(data.get("read_at", 0.0)),
            log_groups=tuple(str(g) for g in data.get("log_groups", ())),
            failed=tuple(FailedTask.from_json(t) for t in data.get("failed", ())),
            failed_left_out=int(data.get("failed_left_out", 0)),
            tail=tuple(Invocation.from_json(i) for i in data.get("tail", ())),
        )


# --------------------------------------------------------------------------- building


def gather(
    job: str,
    run_id: str,
    groups: Mapping[str, Sequence[Mapping[str, Any]]],
    records: Iterable[Mapping[str, Any]] = (),
    source: str = "cloudwatch",
) -> RunLogs:
    """A bounded :class:`RunLogs` from each log group's raw events (FilterLogEvents'
    dicts) and the handlers' failure records."""
    invocations = [inv for name, events in groups.items() for inv in invocations_of(name, events)]
    failed = failed_tasks(invocations, records)
    in_failed = {t.label for t in failed}
    others = [i for i in invocations if i.label not in in_failed]
    return RunLogs(
        job=job,
        run_id=run_id,
        source=source,
        read_at=time.time(),
        log_groups=tuple(groups),
        failed=tuple(failed[:MAX_FAILED_TASKS]),
        failed_left_out=max(0, len(failed) - MAX_FAILED_TASKS),
        tail=tuple(_tail(others, TAIL_EVENTS)),
    )


def invocations_of(log_group: str, events: Sequence[Mapping[str, Any]]) -> list[Invocation]:
    """Cut a group's events into invocations, stream by stream, in time order."""
    by_stream: dict[str, list[Mapping[str, Any]]] = {}
    for event in events:
        by_stream.setdefault(str(event.get("logStreamName", "")), []).append(event)
    found: list[Invocation] = []
    default_phase = log_group.rsplit("-", 1)[-1]  # /aws/lambda/mrspec-<job>-<run>-<fn>
    for stream, stream_events in by_stream.items():
        current: list[LogEvent] = []
        # sorted() is stable: events logged in the same millisecond keep their order
        for event in sorted(stream_events, key=lambda e: int(e.get("timestamp", 0))):
            message = str(event.get("message", "")).rstrip("\n")[:MAX_MESSAGE_CHARS]
            if message.startswith("START RequestId") and current:
                found.append(_invocation(log_group, stream, default_phase, current))
                current = []
            current.append(LogEvent(int(event.get("timestamp", 0)), message))
            if message.startswith("REPORT RequestId"):
                found.append(_invocation(log_group, stream, default_phase, current))
                current = []
        if current:
            found.append(_invocation(log_group, stream, default_phase, current))
    return sorted(found, key=lambda i: i.events[0].timestamp if i.events else 0)


def _invocation(group: str, stream: str, phase: str, events: list[LogEvent]) -> Invocation:
    task_id: int | None = None
    attempt, finished = 0, False
    for event in events:
        fields = _mrspec_fields(event.message)
        if fields.get("event") == "task_started" and task_id is None:
            phase = str(fields.get("phase", phase))
            task_id = int(fields.get("task_id", 0))
            attempt = int(fields.get("attempt", 0))
        elif fields.get("event") == "task_finished":
            finished = True
    kept = events[-MAX_EVENTS_PER_ATTEMPT:]
    return Invocation(
        phase, task_id, attempt, group, stream, tuple(kept), finished, len(events) - len(kept)
    )


def _mrspec_fields(message: str) -> dict[str, Any]:
    if not message.startswith('{"mrspec"'):
        return {}
    try:
        data = json.loads(message)
    except ValueError:
        return {}
    fields = data.get("mrspec") if isinstance(data, dict) else None
    return fields if isinstance(fields, dict) else {}


def failed_tasks(
    invocations: Sequence[Invocation], records: Iterable[Mapping[str, Any]]
) -> list[FailedTask]:
    """Tasks with an error record, then tasks that started and never finished."""
    attempts: dict[tuple[str, int], list[Invocation]] = {}
    for inv in invocations:
        if inv.task_id is not None:
            attempts.setdefault((inv.phase, inv.task_id), []).append(inv)
    found: dict[tuple[str, int], FailedTask] = {}
    for record in records:
        if "task_id" not in record:
            continue
        key = (str(record.get("phase", "")), int(record["task_id"]))
        found[key] = FailedTask(key[0], key[1], "failed", dict(record), _ordered(attempts.get(key)))
    for key, tries in attempts.items():
        if key not in found and not any(t.finished for t in tries):
            found[key] = FailedTask(key[0], key[1], "unfinished", {}, _ordered(tries))
    return list(found.values())


def _ordered(tries: list[Invocation] | None) -> tuple[Invocation, ...]:
    return tuple(sorted(tries or (), key=lambda i: (i.attempt, i.events[0].timestamp if i.events else 0)))


def _tail(invocations: Sequence[Invocation], limit: int) -> list[Invocation]:
    """The latest ``limit`` events of ``invocations``, still grouped by invocation."""
    kept: list[Invocation] = []
    budget = limit
    for inv in reversed(invocations):
        if budget <= 0:
            break
        events = inv.events[-budget:]
        budget -= len(events)
        kept.append(replace(inv, events=events, left_out=inv.left_out + len(inv.events) - len(events)))
    return list(reversed(kept))


# --------------------------------------------------------------------------- sources


def from_cloudwatch(session: Any, job: str, run_id: str, log_groups: Sequence[str]) -> RunLogs:
    """A live stack's task logs, read from its functions' log groups."""
    from mrspec.aws.readback import log_events

    groups = {name: log_events(session, name) for name in log_groups}
    return gather(job, run_id, groups, source="cloudwatch")


def function_log_groups(names: Iterable[str]) -> list[str]:
    """The Lambda functions' groups among a stack's log groups (not Step Functions')."""
    return [n for n in names if n.startswith("/aws/lambda/")]
