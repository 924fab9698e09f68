"""Built-in aggregators: ``sum``, ``min`` and ``max``, as a job's combiner and reducer.

In a spec::

    map:
      entrypoint: wordcount:mapper
      combiner: mrspec.builtins:sum
    reduce:
      entrypoint: mrspec.builtins:sum

They are plain reducer-shaped functions (``(key, values)`` in, ``(key, value)`` pairs
out), so a job's own code and tests can import and call them::

    >>> from mrspec import builtins
    >>> list(builtins.sum("the", [1, 2, 3]))
    [('the', 6)]
    >>> list(builtins.max("p95", [3, 7.5, 2]))
    [('p95', 7.5)]

What makes them more than three short functions is that the engine recognises them: the
map task then keeps one running total per key instead of a list of values (and counts
keys in C when every value is ``1``), and the merge and reduce tasks fold the shuffled
entries without building value lists (``mrspec.runtime.aggregate``).

Values: ``int``, ``float`` and ``bool``, mixed freely, as Python's own ``sum``, ``min``
and ``max`` take them (``sum`` of an ``int`` and a ``float`` is a ``float``; a ``bool`` is
0 or 1, so ``sum`` of flags counts the true ones and ``max`` is "any"). ``None``, ``str``
and every other type are refused, and so is ``NaN`` for ``min`` and ``max`` (a comparison
with ``NaN`` is false, so the answer would depend on the order values arrive in, which no
job controls). ``sum`` accepts ``NaN`` and
the infinities; its result is ``NaN`` whatever the order. A key with no values yields no
pair. A refused value raises ``BuiltinValueError`` naming the key, the value and its type;
in a task it fails the task (see docs/job-api.md).

Standard library only: this module ships in the Lambda package with the runtime.
"""

from __future__ import annotations

import builtins as _py
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from operator import ne
from typing import Any

PREFIX = "mrspec.builtins:"
NUMBERS = frozenset({int, float, bool})
CHUNK = 4096  # values checked and folded at a time: C-level passes, bounded memory


class BuiltinValueError(TypeError):
    """A value a built-in aggregator does not accept (a ``TypeError``, as ``sum`` of a
    ``str`` would raise)."""


@dataclass(frozen=True)
class Aggregator:
    """One built-in: its name, the C-level fold over a list (``sum``, ``min``, ``max``),
    whether it accepts ``NaN``, and its words for the documentation and errors."""

    name: str
    fold: Callable[[Iterable[Any]], Any]
    accepts_nan: bool
    summary: str

    @property
    def ref(self) -> str:
        return PREFIX + self.name

    @property
    def accepted(self) -> str:
        return "int, float and bool values" + ("" if self.accepts_nan else " other than NaN")

    def first_bad(self, values: list[Any]) -> tuple[Any] | None:
        """``(bad,)`` for the first value it refuses, or ``None``: one C-level pass over
        the types (and, for floats, ``v != v`` for ``NaN``) in the common case."""
        kinds = set(map(type, values))
        if kinds <= NUMBERS and (
            self.accepts_nan or float not in kinds or not any(map(ne, values, values))
        ):
            return None
        for value in values:
            if type(value) not in NUMBERS or (not self.accepts_nan and value != value):
                return (value,)
        return None  # unreachable: the C-level pass found one

    def refusal(self, key: Any, value: Any) -> str:
        """What is wrong with ``value``, for an error message."""
        return (
            f"{self.ref} got a value of type {type(value).__name__} ({value!r:.60}) for key "
            f"{key!r:.80}; it accepts only {self.accepted}"
        )

    def total(self, key: Any, values: Iterable[Any]) -> list[Any]:
        """``[result]`` for the key's values (``[]`` for none), checked a chunk at a time
        so that a hot key's values are never all in memory."""
        stream = iter(values)
        result: list[Any] = []
        while chunk := list(islice(stream, CHUNK)):
            bad = self.first_bad(chunk)
            if bad is not None:
                raise BuiltinValueError(self.refusal(key, bad[0]))
            # the running result goes first: sum adds in arrival order, min and max keep
            # the first of equal values, as one call over all the values would
            result = [self.fold(result + chunk)]
        return result


SUM = Aggregator("sum", _py.sum, True, "the total of the values")
MIN = Aggregator("min", _py.min, False, "the smallest value (the first seen of equal ones)")
MAX = Aggregator("max", _py.max, False, "the largest value (the first seen of equal ones)")
AGGREGATORS: dict[str, Aggregator] = {a.name: a for a in (SUM, MIN, MAX)}


def aggregator(ref: str | None) -> Aggregator | None:
    """The built-in an entrypoint names (``"mrspec.builtins:sum"``), or ``None``."""
    if ref is None or not ref.startswith(PREFIX):
        return None
    return AGGREGATORS.get(ref[len(PREFIX) :])


def sum(key: str, values: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """``(key, total)``: the sum of the key's int, float and bool values."""
    for result in SUM.total(key, values):
        yield key, result


def min(key: str, values: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """``(key, smallest)``: the smallest of the key's int, float and bool values."""
    for result in MIN.total(key, values):
        yield key, result


def max(key: str, values: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """``(key, largest)``: the largest of the key's int, float and bool values."""
    for result in MAX.total(key, values):
        yield key, result
