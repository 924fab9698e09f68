"""The body of one task process: cap its memory, run the task, send the outcome back.

Runs in a fresh process forked from a small fork server (one process per task attempt),
so a task's memory cap, peak memory and crash are its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

from mrspec.errors import MrspecError
from mrspec.local.outcome import Outcome
from mrspec.runtime import buffer
from mrspec.runtime.config import TaskConfig
from mrspec.runtime.dispatch import run_task as dispatch
from mrspec.runtime.retry import retryable


def limit_memory(memory_mb: int) -> None:
    """Cap the address space of this process at ``memory_mb``.

    ``RLIMIT_AS`` rather than ``RLIMIT_DATA``: measured here, a worker's virtual size
    stays within a few MB of its resident size, so the address-space cap stops the task
    at about the same resident peak Lambda would (``RLIMIT_DATA`` let the resident peak
    pass the cap by the size of the interpreter's code).
    """
    single_malloc_arena()
    cap = memory_mb * 1024**2
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def single_malloc_arena() -> None:
    """Keep glibc's allocator to one arena in this process.

    Each thread that meets contention in ``malloc`` may get an arena of its own, and each
    arena reserves 64 MiB of address space that is never touched. Under ``RLIMIT_AS``
    that reservation counts: a 128 MB reduce task with its read threads (61 MB resident
    peak) passed on an idle machine and ended in ``MemoryError`` on a busy one (30 runs
    in 30 with both cores busy, where contention is the rule). With one arena, 0 in 30.
    The address space follows the resident size again, which is what the cap assumes. A C library that
    is not glibc has no ``mallopt`` and keeps its own behaviour.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        pass


def isolate_sys_path(caller_cwd: str) -> None:
    """Drop the caller's working folder from ``sys.path`` (``''`` under ``python -m`` or
    ``-c``, or its absolute path): a ``statistics.py`` lying where mrspec was started must
    not shadow the standard library for the job. Only the job's ``code.path``, put first
    when its entrypoints load, comes before the standard library."""
    here = os.path.realpath(caller_cwd)
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.realpath(p) != here]


def run_task(
    environ: dict[str, str],
    cwd: str,
    conn: Connection,
    kind: str,
    config_json: str,
    payload: dict[str, Any],
    work_prefix: str,
    scratch_dir: str,
    attempt: int,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine handles Ctrl-C and stops us
    # The fork server started with the environment of its time; a task sees the engine's
    # current one (AWS_ENDPOINT_URL, credentials, ...) and working folder, as a fresh
    # process would.
    os.environ.clear()
    os.environ.update(environ)
    isolate_sys_path(cwd)
    os.chdir(cwd)
    config = TaskConfig.from_json(config_json)
    buffer.RETAIN = []  # this process exits after the task: skip freeing the map output
    try:
        limit_memory(config.memory_mb(kind))
        result = dispatch(
            kind, payload, config, work_prefix=work_prefix, scratch_dir=scratch_dir, attempt=attempt
        )
        outcome = Outcome("ok", result)
    except MemoryError:
        outcome = Outcome("memory")
    except MrspecError as exc:  # "failed": the retry policy says another attempt cannot help
        outcome = Outcome("error" if retryable(exc) else "failed", message=exc.message, hint=exc.hint)
    except Exception as exc:
        outcome = Outcome(
            "error", message=f"{type(exc).__name__}: {exc}", hint=traceback.format_exc(limit=-3)
        )
    try:
        conn.send(outcome.to_json())
    finally:
        conn.close()
