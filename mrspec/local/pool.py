"""A process pool that runs each task attempt in its own process.

Why not ``ProcessPoolExecutor``: a long-lived worker would carry one task's memory cap,
peak RSS and heap into the next, and one killed worker breaks the whole executor. A fresh
process per attempt (forked from a fork server that has already imported the runtime, so
starting one costs milliseconds) gives every task its own cap and an honest peak, and a
crash (a signal, an abort) fails that attempt only; it is retried like any failure.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import types
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from mrspec.errors import JobFailedError

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


class TaskPool:
    """Runs tasks ``workers`` at a time with up to ``max_attempts`` attempts each."""

    def __init__(
        self,
        *,
        workers: int,
        config_json: str,
        work_prefix: str,
        scratch_root: str,
        max_attempts: int,
    ) -> None:
        self.workers = max(1, workers)
        self.config_json = config_json
        self.work_prefix = work_prefix
        self.scratch_root = scratch_root
        self.max_attempts = max(1, max_attempts)
        self.retries = 0
        self.failures: list[str] = []  # every failed attempt, for the summary

    def run(
        self,
        tasks: Sequence[TaskRun],
        on_done: Callable[[TaskRun, dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Run every task; return their results in task order.

        Raises ``JobFailedError`` when a task fails beyond its attempts (or with an error
        retrying cannot fix); running tasks are stopped first. ``on_done`` may raise to
        stop the run too.
        """
        ctx = _mp_context()
        pending: deque[tuple[TaskRun, int]] = deque((t, 1) for t in tasks)
        running: dict[Connection, _Running] = {}
        results: dict[int, dict[str, Any]] = {}
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    task, attempt = pending.popleft()
                    entry = self._start(ctx, task, attempt)
                    running[entry.conn] = entry
                for conn in wait(list(running)):
                    assert isinstance(conn, Connection)
                    entry = running.pop(conn)
                    outcome = self._finish(entry)
                    if outcome[0] == "ok":
                        results[entry.task.task_id] = outcome[1]
                        if on_done is not None:
                            on_done(entry.task, outcome[1])
                        continue
                    message, hint, retry = self._describe(entry, outcome)
                    self.failures.append(message)
                    if retry and entry.attempt < self.max_attempts:
                        self.retries += 1
                        pending.append((entry.task, entry.attempt + 1))
                        continue
                    raise JobFailedError(message, hint=hint)
        finally:
            for entry in running.values():
                self._stop(entry)
        return [results[t.task_id] for t in tasks]

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
        return _Running(task, attempt, process, parent_conn, scratch)

    def _finish(self, entry: _Running) -> tuple[str, Any, Any]:
        try:
            outcome: tuple[str, Any, Any] = entry.conn.recv()
        except (EOFError, OSError):
            outcome = ("crashed", None, None)
        entry.conn.close()
        entry.process.join()
        shutil.rmtree(entry.scratch, ignore_errors=True)
        if outcome[0] == "crashed":
            code = entry.process.exitcode
            if code is not None and code < 0:
                try:
                    how = f"killed by {signal.Signals(-code).name}"
                except ValueError:
                    how = f"killed by signal {-code}"
            else:
                how = f"exited with code {code}"
            outcome = ("crashed", how, None)
        return outcome

    def _describe(
        self, entry: _Running, outcome: tuple[str, Any, Any]
    ) -> tuple[str, str | None, bool]:
        """(message, hint, worth retrying) for a failed attempt."""
        task, attempt = entry.task, entry.attempt
        of = f"attempt {attempt} of {self.max_attempts}"
        kind, detail, extra = outcome
        if kind == "memory":
            return (
                f"{task.name} exceeded its memory cap of {task.memory_mb} MB ({of})",
                f"raise {task.kind}.memory in the spec"
                + (", lower map.bin_size or add a combiner" if task.kind == "map" else ""),
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
            return str(detail), extra, False  # the task said retrying will not help
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
