"""Word count: the classic MapReduce example, with a combiner.

The functions are plain Python; ``tests/`` in your own project can call them directly:

    >>> list(mapper("the cat the"))
    [('the', 1), ('cat', 1), ('the', 1)]
    >>> list(reducer("the", iter([1, 1])))
    [('the', 2)]
"""

from collections.abc import Iterable, Iterator


def mapper(line: str) -> Iterator[tuple[str, int]]:
    for word in line.split():
        yield word, 1


def reducer(word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
    yield word, sum(counts)


# A combiner has the reducer's shape: summing partial counts is safe to do early.
combiner = reducer
