"""Frequency distribution of words: two steps, each with a reduce.

Step 0 is a word count; step 1's mapper gets its ``(word, count)`` tuples and emits
``(count, 1)`` (the count as a zero-padded string key, so the output sorts by it), and
step 1's reducer sums them: how many distinct words occur exactly that many times.

    >>> list(count_of(("harbour", 3)))
    [('000003', 1)]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from mrspec.api import params

WORD = re.compile(r"[\w']+")


def words(line: str) -> Iterator[tuple[str, int]]:
    """``(word, 1)`` per word of at least ``params()["min_length"]`` characters."""
    shortest = int(params().get("min_length", 1))
    for found in WORD.findall(line.lower()):
        word = found.strip("'")
        if len(word) >= max(1, shortest):
            yield word, 1


def total(key: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
    """The sum of a key's counts: step 0's reducer, and both steps' combiner."""
    yield key, sum(counts)


def count_of(pair: tuple[str, int]) -> Iterator[tuple[str, int]]:
    """Step 1's mapper: a word's count becomes the key, one word its value."""
    _, count = pair
    yield f"{count:06d}", 1
