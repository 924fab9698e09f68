"""Inverted index: for every word, the sorted list of documents that contain it.

The mapper uses the ``task`` form: it sees every record of its map task, so it can
de-duplicate (word, document) pairs in memory and emit each pair once per task, however
often the word occurs. ``mrspec.api.input_uri()`` names the document of the current
record; read it inside the loop, since a task may span several documents.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator

from mrspec.api import input_uri

WORD = re.compile(r"[a-z0-9']+")


def document_name(uri: str) -> str:
    """``s3://bucket/docs/river.txt`` or ``/data/docs/river.txt`` -> ``river.txt``."""
    return posixpath.basename(uri.replace("\\", "/"))


def mapper(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """One ``(word, document)`` pair per distinct word of each document in the task."""
    seen: set[tuple[str, str]] = set()
    for line in lines:
        document = document_name(input_uri() or "")
        for word in WORD.findall(line.lower()):
            word = word.strip("'")
            if word and (word, document) not in seen:
                seen.add((word, document))
                yield word, document


def reducer(word: str, documents: Iterable[str]) -> Iterator[tuple[str, list[str]]]:
    """The word with the sorted, de-duplicated list of its documents."""
    yield word, sorted(set(documents))
