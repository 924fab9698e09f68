"""Word count: the classic MapReduce example, with a combiner.

Words are runs of letters, digits and apostrophes, lowercased, so "The" and "the," are
the same word. The functions are plain Python; a test can call them directly:

    >>> list(mapper("The cat, the hat."))
    [('the', 1), ('cat', 1), ('the', 1), ('hat', 1)]
    >>> list(reducer("the", iter([1, 2])))
    [('the', 3)]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

WORD = re.compile(r"[\w']+")


def words(line: str) -> list[str]:
    """The words of a line, lowercased, without surrounding apostrophes."""
    found = (w.strip("'") for w in WORD.findall(line.lower()))
    return [w for w in found if w]


def mapper(line: str) -> Iterator[tuple[str, int]]:
    """One ``(word, 1)`` pair per word of the line."""
    for word in words(line):
        yield word, 1


def reducer(word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
    """The total count of a word."""
    yield word, sum(counts)


# A combiner has the reducer's shape: summing partial counts early is safe, and the
# output (a count) is the same kind of value the mapper emits.
combiner = reducer
