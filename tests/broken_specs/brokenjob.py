"""Job code shared by the broken specs in this folder (the specs are what is broken)."""

from collections.abc import Iterable, Iterator


def mapper(line: str) -> Iterator[tuple[str, int]]:
    for word in line.split():
        yield word, 1


def reducer(key: str, values: Iterable[int]) -> Iterator[tuple[str, int]]:
    yield key, sum(values)


class Mapper:
    """Not a function: an entrypoint naming it is refused."""
