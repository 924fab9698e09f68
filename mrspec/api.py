"""What a job's code may import from mrspec: counters, the current input object, params.

Mappers, combiners and reducers are plain functions; they need nothing from mrspec.
Three things only a framework knows are offered here:

- ``increment(name, amount=1)`` bumps a user counter. The counters of every task are
  summed and shown in the run summary and in the ``_SUCCESS`` manifest.
- ``input_uri()`` names the input object the current record came from (a join tells
  its two inputs apart with it).
- ``params()`` is the job's parameters (the spec's ``params:`` with any ``--param``
  overrides): a read-only mapping of names to strings, numbers and booleans.

Outside a running task (in the user's own unit tests) all three work against a default
context: ``counters()`` returns what was counted, ``set_input(uri)`` sets the object and
``set_params(mapping)`` (or ``with using_params(n=3):``) sets the parameters, so a
function that uses them can be tested without mrspec's engine.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Mapping
from types import MappingProxyType

ParamValue = str | int | float | bool


class TaskContext:
    """Per-task state the runtime installs around user code. Not for user code."""

    __slots__ = ("counters", "input_uri", "params")

    def __init__(self, params: Mapping[str, ParamValue] | None = None) -> None:
        self.counters: Counter[str] = Counter()
        self.input_uri: str | None = None
        self.params: Mapping[str, ParamValue] = MappingProxyType(dict(params or {}))


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


def params() -> Mapping[str, ParamValue]:
    """The job's parameters: read-only (``params()["n"] = 1`` raises ``TypeError``)."""
    return _context.params


def set_params(values: Mapping[str, ParamValue]) -> Mapping[str, ParamValue]:
    """Set the parameters ``params()`` returns (for the user's own tests; the runtime
    sets them from the spec in a task) and return the previous ones."""
    previous = _context.params
    _context.params = MappingProxyType(dict(values))
    return previous


@contextlib.contextmanager
def using_params(**values: ParamValue) -> Iterator[Mapping[str, ParamValue]]:
    """``with using_params(n=3): ...`` runs the block with these parameters, then
    restores the previous ones."""
    previous = set_params(values)
    try:
        yield _context.params
    finally:
        set_params(previous)


def install(context: TaskContext) -> TaskContext:
    """Install a fresh task context and return the previous one (runtime use)."""
    global _context
    previous, _context = _context, context
    return previous
