"""A process pool that runs each task attempt in its own process.

Why not ``ProcessPoolExecutor``: a long-lived worker would carry one task's memory cap,
peak RSS and heap into the next, and one killed worker breaks the whole executor. A fresh
process per attempt (forked from a fork server that has already imported the runtime, so
starting one costs milliseconds) gives every task its own cap and an honest peak, and a
crash (a signal, an abort) fails that attempt only; it is retried like any failure.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from mrspec.errors import JobFailedError
from mrspec.local.outcome import Outcome
from mrspec.runtime.results import TaskResult
from mrspec.runtime.retry import RETRY_BASE_S, retry_delay

if TYPE_CHECKING:
    from mrspec.spec.model import JobSpec

_context: Any = None


def _mp_context() -> Any:
    """The fork server context, started once per engine process.

    The fork server listens on a Unix socket under the temporary folder, whose path must
    stay under about 100 bytes; with a long ``TMPDIR`` (macOS, nested CI folders) the
    multiprocessing temporary folder goes to ``/tmp`` instead. Where no fork server can
    start at all, plain ``fork`` is used.
    """
    global _context
    if _context is None:
        from multiprocessing import forkserver, util

        if len(tempfile.gettempdir()) > 60 and os.access("/tmp", os.W_OK):
            saved, tempfile.tempdir = tempfile.tempdir, "/tmp"
            try:
                util.get_temp_dir()  # created now and cached for this process
            finally:
                tempfile.tempdir = saved
        context: Any = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["mrspec.local.worker"])
        try:
            forkserver.ensure_running()
        except OSError:
            context = multiprocessing.get_context("fork")
        _context = context
    return _context


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start a process without making it re-import the caller's ``__main__``.

    A forkserver child normally re-runs the main script (as ``__mp_main__``) so that
    functions defined there can be unpickled. Task processes only run
    ``mrspec.local.worker.run_task``, so a script calling ``run_local`` needs no
    ``if __name__ == "__main__"`` guard, and no child pays for importing it.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


@dataclass(frozen=True)
class TaskRun:
    kind: str  # "map" | "reduce"
    task_id: int
    payload: dict[str, Any]
    memory_mb: int

    @property
    def name(self) -> str:
        return f"{self.kind} task {self.task_id}"


@dataclass
class _Running:
    task: TaskRun
    attempt: int
    process: BaseProcess
    conn: Connection
    scratch: str
    deadline: float = math.inf  # time.monotonic() past which the attempt is stopped
    timed_out: bool = False


def task_fixes(spec: JobSpec | None, step: int) -> dict[str, tuple[str, str]]:
    """(memory hint, timeout hint) of a step's task kinds, naming the step's own settings
    (``steps[1].map.memory`` in a job with steps; ``spec`` None: a one-step job's)."""
    def s(path: str) -> str:
        return spec.setting(step, path) if spec is not None else path

    smaller = spec.smaller_map_input(step) if spec is not None else "lower map.bin_size"
    reduce_fix = (f"raise {s('reduce.memory')} in the spec",
                  f"raise {s('reduce.timeout')} in the spec, or add partitions"
                  + (f" ({s('reduce.partitions')})" if spec is not None and spec.has_steps
                     else ""))
    return {
        "map": (f"raise {s('map.memory')} in the spec, {smaller} or add a combiner",
                f"raise {s('map.timeout')} in the spec, or {smaller}"),
        "merge": reduce_fix,  # merge tasks run with the reduce section's settings
        "reduce": reduce_fix,
    }


class TaskPool:
    """Runs tasks ``workers`` at a time with up to ``max_attempts`` attempts each.

    ``timeouts`` maps a task kind to its phase's timeout in seconds (``map.timeout``,
    ``reduce.timeout``): an attempt still running then is stopped and retried, as Lambda
    would. Retries wait ``retry_delay`` (exponential backoff with full jitter).
    """

    def __init__(
        self,
        *,
        workers: int,
        config_json: str,
        work_prefix: str,
        scratch_root: str,
        max_attempts: int,
        timeouts: dict[str, float] | None = None,
        retry_base_s: float = RETRY_BASE_S,
        fixes: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self.workers = max(1, workers)
        self.config_json = config_json
        self.work_prefix = work_prefix
        self.scratch_root = scratch_root
        self.max_attempts = max(1, max_attempts)
        self.timeouts = dict(timeouts or {})
        self.fixes = dict(fixes or task_fixes(None, 0))
        self.retry_base_s = retry_base_s
        self.retries = 0
        self.failures: list[str] = []  # every failed attempt, for the summary

    def use(self, config_json: str, timeouts: dict[str, float],
            fixes: dict[str, tuple[str, str]]) -> None:
        """Run the next tasks with another step's config, timeouts and hints (a job with
        steps runs its steps in turn on one pool, so retries and failures add up)."""
        self.config_json = config_json
        self.timeouts = dict(timeouts)
        self.fixes = dict(fixes)

    def run(
        self,
        tasks: Sequence[TaskRun],
        on_done: Callable[[TaskRun, TaskResult], None] | None = None,
    ) -> list[TaskResult]:
        """Run every task; return their results in task order.

        Raises ``JobFailedError`` when a task fails beyond its attempts (or with an error
        retrying cannot fix); running tasks are stopped first. ``on_done`` may raise to
        stop the run too.
        """
        ctx = _mp_context()
        pending: list[tuple[float, TaskRun, int]] = [(0.0, t, 1) for t in tasks]  # not before
        running: dict[Connection, _Running] = {}
        results: dict[int, TaskResult] = {}
        try:
            while pending or running:
                now = time.monotonic()
                ready = [p for p in pending if p[0] <= now][: self.workers - len(running)]
                for item in ready:
                    pending.remove(item)
                    entry = self._start(ctx, item[1], item[2])
                    running[entry.conn] = entry
                for entry in self._wait(running, pending):
                    outcome = self._timed_out(entry) if entry.timed_out else self._finish(entry)
                    if outcome.result is not None:
                        results[entry.task.task_id] = outcome.result
                        if on_done is not None:
                            on_done(entry.task, outcome.result)
                        continue
                    message, hint, retry = self._describe(entry, outcome)
                    self.failures.append(message)
                    if retry and entry.attempt < self.max_attempts:
                        self.retries += 1
                        delay = retry_delay(entry.attempt, self.retry_base_s)
                        pending.append((time.monotonic() + delay, entry.task, entry.attempt + 1))
                        continue
                    raise JobFailedError(message, hint=hint)
        finally:
            for entry in running.values():
                self._stop(entry)
        return [results[t.task_id] for t in tasks]

    def _wait(
        self, running: dict[Connection, _Running], pending: list[tuple[float, TaskRun, int]]
    ) -> list[_Running]:
        """The attempts that finished, or passed their deadline (``timed_out``),
        waiting at most until the next deadline or the next retry that may start."""
        now = time.monotonic()
        wake = min((e.deadline for e in running.values()), default=math.inf)
        if len(running) < self.workers:
            wake = min([wake, *(p[0] for p in pending)])
        timeout = None if wake == math.inf else max(0.0, wake - now)
        if not running:
            time.sleep(timeout or 0.0)
            return []
        done: list[_Running] = []
        for conn in wait(list(running), timeout=timeout):
            assert isinstance(conn, Connection)
            done.append(running.pop(conn))
        now = time.monotonic()
        for conn, entry in list(running.items()):
            if entry.deadline <= now:
                del running[conn]
                entry.timed_out = True
                done.append(entry)
        return done

    def _timed_out(self, entry: _Running) -> Outcome:
        self._stop(entry)
        return Outcome("timeout", timeout_s=self.timeouts.get(entry.task.kind))

    def _start(self, ctx: Any, task: TaskRun, attempt: int) -> _Running:
        from mrspec.local.worker import run_task

        scratch = tempfile.mkdtemp(
            prefix=f"{task.kind}-{task.task_id:05d}-a{attempt}-", dir=self.scratch_root
        )
        parent_conn, child_conn = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=run_task,
            args=(
                dict(os.environ),
                os.getcwd(),
                child_conn,
                task.kind,
                self.config_json,
                task.payload,
                self.work_prefix,
                scratch,
                attempt,
            ),
            name=f"mrspec {task.name}",
            daemon=True,
        )
        with _main_module_hidden():
            process.start()
        child_conn.close()
        limit = self.timeouts.get(task.kind)
        deadline = time.monotonic() + limit if limit else math.inf
        return _Running(task, attempt, process, parent_conn, scratch, deadline)

    def _finish(self, entry: _Running) -> Outcome:
        try:
            outcome: Outcome | None = Outcome.from_json(entry.conn.recv())
        except (EOFError, OSError):
            outcome = None
        entry.conn.close()
        entry.process.join()
        shutil.rmtree(entry.scratch, ignore_errors=True)
        if outcome is None:
            code = entry.process.exitcode
            if code is not None and code < 0:
                try:
                    how = f"killed by {signal.Signals(-code).name}"
                except ValueError:
                    how = f"killed by signal {-code}"
            else:
                how = f"exited with code {code}"
            outcome = Outcome("crashed", message=how)
        return outcome

    def _describe(
        self, entry: _Running, outcome: Outcome
    ) -> tuple[str, str | None, bool]:
        """(message, hint, worth retrying) for a failed attempt."""
        task, attempt = entry.task, entry.attempt
        of = f"attempt {attempt} of {self.max_attempts}"
        kind, detail = outcome.status, outcome.message
        if kind == "memory":
            return (
                f"{task.name} exceeded its memory cap of {task.memory_mb} MB ({of})",
                self.fixes[task.kind][0],
                True,
            )
        if kind == "timeout":
            return (
                f"{task.name} exceeded its timeout of {outcome.timeout_s:g} s ({of})",
                self.fixes[task.kind][1],
                True,
            )
        if kind == "crashed":
            return (
                f"the worker process of {task.name} {detail} ({of}); "
                "a process killed for memory (the kernel's OOM killer) looks the same",
                None,
                True,
            )
        if kind == "failed":
            return str(detail), outcome.hint, False  # the task said retrying will not help
        return f"{task.name} failed ({of}): {detail}", None, True

    def _stop(self, entry: _Running) -> None:
        if entry.process.is_alive():
            entry.process.terminate()
        entry.process.join(timeout=5)
        if entry.process.is_alive():
            entry.process.kill()
            entry.process.join()
        entry.conn.close()
        shutil.rmtree(entry.scratch, ignore_errors=True)
