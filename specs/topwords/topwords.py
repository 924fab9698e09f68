"""Top words: a two-step job. Step 0 counts words; step 1 keeps the ``n`` most frequent.

Step 1's mapper gets step 0's output pairs, ``(word, count)`` tuples, and sends each to
the single key ``"top"`` as ``[count, word]``, so one reducer sees every candidate; the
combiner (reducer-shaped, same value type) keeps each map task's ``n`` best first.
``n`` comes from the spec's ``params`` (or ``--param n=...``):

    >>> from mrspec import api
    >>> list(words("The cat, the hat."))
    [('the', 1), ('cat', 1), ('the', 1), ('hat', 1)]
    >>> with api.using_params(n=2):
    ...     list(top("top", iter([[1, "cat"], [2, "the"], [1, "hat"]])))
    [('the', 2), ('cat', 1)]
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator

from mrspec.api import params

WORD = re.compile(r"[\w']+")
Candidate = list  # [count, word]: a list, the JSON type a value travels as


def words(line: str) -> Iterator[tuple[str, int]]:
    """One ``(word, 1)`` pair per word, lowercased, without surrounding apostrophes."""
    for found in WORD.findall(line.lower()):
        word = found.strip("'")
        if word:
            yield word, 1


def total(word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
    """A word's count (also step 0's combiner: partial sums are summed again)."""
    yield word, sum(counts)


def by_count(pair: tuple[str, int]) -> Iterator[tuple[str, list[int | str]]]:
    """Step 1's mapper: one ``(word, count)`` pair of step 0 -> a candidate for the top."""
    word, count = pair
    yield "top", [count, word]


def _best(candidates: Iterable[list[int | str]]) -> list[list[int | str]]:
    """The ``n`` most frequent candidates, most frequent first, ties in word order."""
    n = int(params().get("n", 10))
    return heapq.nsmallest(n, candidates, key=lambda c: (-int(c[0]), str(c[1])))


def best(key: str, candidates: Iterable[list[int | str]]) -> Iterator[tuple[str, list[int | str]]]:
    """Step 1's combiner: a map task's ``n`` best candidates, still under ``"top"``."""
    for candidate in _best(candidates):
        yield key, candidate


def top(key: str, candidates: Iterable[list[int | str]]) -> Iterator[tuple[str, int]]:
    """Step 1's reducer: the ``n`` best words as ``(word, count)``, in rank order."""
    for count, word in _best(candidates):
        yield str(word), int(count)
