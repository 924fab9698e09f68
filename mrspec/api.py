"""What a job's code may import from mrspec: counters and the current input object.

Mappers, combiners and reducers are plain functions; they need nothing from mrspec.
Two things only a framework knows are offered here:

- ``increment(name, amount=1)`` bumps a user counter. The counters of every task are
  summed and shown in the run summary and in the ``_SUCCESS`` manifest.
- ``input_uri()`` names the input object the current record came from (a join tells
  its two inputs apart with it).

Outside a running task (in the user's own unit tests) both work against a default
context: ``counters()`` returns what was counted and ``set_input(uri)`` sets the object,
so a mapper that uses them can be tested without mrspec's engine.
"""

from __future__ import annotations

from collections import Counter


class TaskContext:
    """Per-task state the runtime installs around user code. Not for user code."""

    __slots__ = ("counters", "input_uri")

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.input_uri: str | None = None


_context = TaskContext()


def increment(name: str, amount: int = 1) -> None:
    """Add ``amount`` to the user counter ``name``."""
    _context.counters[name] += amount


def input_uri() -> str | None:
    """The input object (``s3://bucket/key`` or a local path) of the current record."""
    return _context.input_uri


def counters() -> dict[str, int]:
    """The user counters counted so far in this process (for the user's own tests)."""
    return dict(_context.counters)


def set_input(uri: str | None) -> None:
    """Set the current input object (the runtime does this; tests may too)."""
    _context.input_uri = uri


def install(context: TaskContext) -> TaskContext:
    """Install a fresh task context and return the previous one (runtime use)."""
    global _context
    previous, _context = _context, context
    return previous
