"""The key and value types a job may emit, checked where the map side hands them on.

Keys are ``str``. Values are JSON's types: ``str``, ``int``, ``float``, ``bool``,
``None``, and lists (tuples are written as lists) and dicts with ``str`` keys of these.
The shuffle (``marshal``) could carry more (sets, bytes, complex) and the output could not,
so without this check a ``set`` passed one job shape and failed another; a ``datetime``
failed deep in the shuffle as "unmarshallable object", without key or task, and retried.

The check is one C-level pass over the values' types (``set(map(type, ...))``); only a
container or an unsupported value takes the Python path. A bad value fails the task with
``TaskFailedError``: retrying the same code on the same record cannot help.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

from mrspec.runtime.errors import TaskFailedError

SUPPORTED = "str, int, float, bool, None, and lists, tuples and dicts with str keys of these"
_SCALARS = frozenset({str, int, float, bool, type(None)})
_CONTAINERS = frozenset({list, tuple, dict})
_HINTS = {
    "datetime": "write value.isoformat()",
    "date": "write value.isoformat()",
    "set": "write sorted(value)",
    "frozenset": "write sorted(value)",
    "bytes": "write value.decode() or base64",
    "Decimal": "write str(value) or float(value)",
}


def unsupported(value: Any, depth: int = 0) -> Any:
    """The first part of ``value`` (itself, an item, a dict key) that is not supported,
    or ``None`` when all of it is (a value nested past 100 levels is unsupported)."""
    kind = type(value)
    if kind in _SCALARS:
        return None
    if kind not in _CONTAINERS or depth > 100:
        return value
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return key
            bad = unsupported(item, depth + 1)
            if bad is not None:
                return bad
        return None
    return first_unsupported(value, depth + 1)


def first_unsupported(values: Iterable[Any], depth: int = 0) -> tuple[Any] | None:
    """``(bad,)`` for the first unsupported part of ``values``, or ``None``. A tuple, so
    a bad part that is itself ``None``-like is still told apart from "all good"."""
    values = values if isinstance(values, list | tuple) else list(values)
    if set(map(type, values)) <= _SCALARS:
        return None
    for value in values:
        if type(value) in _SCALARS:
            continue
        bad = unsupported(value, depth)
        if bad is not None:
            return (bad,)
    return None


def first_bad_pair(pairs: list[Any]) -> tuple[Any, Any] | None:
    """``(key, bad part)`` for the first well-formed pair with an unsupported value; pairs
    that are not pairs are left to the caller's own check."""
    try:
        values = [pair[1] for pair in pairs]
    except (TypeError, IndexError, KeyError):
        return None
    if first_unsupported(values) is None:
        return None
    for pair in pairs:
        found = first_unsupported((pair[1],))
        if found is not None:
            return pair[0], found[0]
    return None


def first_bad_group(keys: list[str], groups: list[list[Any]]) -> tuple[str, Any] | None:
    """``(key, bad part)`` for the first group holding an unsupported value."""
    if set(map(type, chain.from_iterable(groups))) <= _SCALARS:  # the common case, in C
        return None
    for key, values in zip(keys, groups, strict=True):
        found = first_unsupported(values)
        if found is not None:
            return key, found[0]
    return None


def where(fn: Callable[..., Any] | None) -> str:
    """``wordcount.py:12`` for the ``def`` of ``fn``, or ``""``."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return ""
    return f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"


def value_error(
    task: str, key: Any, bad: Any, fn: Callable[..., Any] | None, role: str
) -> TaskFailedError:
    name = type(bad).__name__
    at = where(fn)
    by = f"the {role}" + (f" ({at})" if at else "")
    advice = _HINTS.get(name, "convert it to one of them in the " + role)
    return TaskFailedError(
        f"{task}: {by} emitted a value of type {name} ({bad!r:.80}) for key {key!r:.80}; "
        f"values may only be {SUPPORTED}",
        hint=f"{advice} (see docs/job-api.md, 'Keys and values')",
    )


def checked_pairs(out: Any, fn: Callable[..., Any], key: Any, task: str) -> Any:
    """What a (non-generator) reducer returned, as its pairs: ``None`` is none, an
    iterable is iterated; anything else is the job's mistake, named at its ``def``."""
    if out is None:
        return ()
    if isinstance(out, str | bytes) or not hasattr(type(out), "__iter__"):
        at = where(fn)
        raise TaskFailedError(
            f"{task}: the reducer{f' ({at})' if at else ''} returned {type(out).__name__} "
            f"{out!r:.60} for key {key!r:.60}; a reducer returns or yields (key, value) "
            "pairs",
            hint=f"write `yield key, value` or `return [(key, value)]` in the reducer at {at}",
        )
    return out
