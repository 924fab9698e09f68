"""Parse a YAML document into plain data while remembering where every node was written.

PyYAML's ``compose`` step gives a node tree whose nodes carry start marks. We build the
plain data ourselves from that tree (scalars through PyYAML's safe constructor), so that
each value's YAML path maps to its line and column, and so that duplicate keys, which
PyYAML's own constructor silently collapses to the last one, can be reported.

Paths are tuples of keys (str) and list indexes (int); ``format_path`` renders them as
``input.prefix[1]`` or ``aws.tags["cost.center"]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line and column

_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_MAX_DEPTH = 64
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


def format_path(path: Path) -> str:
    """``("input", "prefix", 1)`` -> ``input.prefix[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{_quote(part)}]"
    return out


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Finding:
    """A problem at a YAML path, not yet located in the file."""

    path: Path
    message: str
    at_key: bool = False  # locate at the key (``map:``) rather than at its value


@dataclass(frozen=True)
class Located:
    """A problem found while reading the document (before any schema check)."""

    path: Path
    line: int
    column: int
    message: str
    value_lost: bool = True  # the value at ``path`` could not be read (it became None)


@dataclass
class YamlDocument:
    """Plain data (dicts, lists, scalars) plus the position of every value and key."""

    data: Any
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)
    problems: list[Located] = field(default_factory=list)

    def position(self, path: Path, *, prefer_key: bool = False) -> Position:
        """Where ``path`` was written; its nearest written ancestor when it is missing.

        ``prefer_key`` points at ``name:`` rather than at the value, which reads better for
        problems about a mapping as a whole (a missing field, an unknown key).
        """
        probe = path
        while True:
            if prefer_key and probe in self.keys:
                return self.keys[probe]
            if probe in self.values:
                return self.values[probe]
            if probe in self.keys:
                return self.keys[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]
            prefer_key = True


class YamlSyntaxError(Exception):
    """The text is not YAML; carries the parser's position."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def _pos(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def parse(text: str) -> YamlDocument:
    """Parse one YAML document; raise :class:`YamlSyntaxError` when it is not YAML.

    An empty document (or one with only comments) gives ``data=None``. More than one
    document in the stream is a syntax error: a spec is one document.
    """
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(text, exc) from None
    try:
        node = loader.get_single_node()
        doc = YamlDocument(data=None)
        if node is not None:
            doc.data = _Builder(loader, doc).build(node, (), 0)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = exc.problem or str(exc)
        if exc.context and "expected a single document" in exc.context:
            problem = "the file holds more than one YAML document (a spec is one document)"
        raise YamlSyntaxError(problem, line, col) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(text, exc) from None
    except yaml.YAMLError as exc:  # any other error without a mark
        raise YamlSyntaxError(str(exc), 1, 1) from None
    finally:
        loader.dispose()


def _reader_error(text: str, exc: yaml.reader.ReaderError) -> YamlSyntaxError:
    """Control characters and the like: PyYAML gives a character offset, not a mark."""
    at = max(0, min(exc.position, len(text)))
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    char = exc.character
    code = f"U+{ord(char):04X}" if isinstance(char, str) else repr(char)
    return YamlSyntaxError(f"character {code} is not allowed in YAML; remove it", line, column)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, doc: YamlDocument) -> None:
        self.loader = loader
        self.doc = doc
        self.active: set[int] = set()  # the nodes being built: a repeat is a recursive alias

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.doc.values.setdefault(path, _pos(node))
        if id(node) in self.active:
            self._problem(path, node, "a recursive alias (a value that contains itself)")
            return None
        if depth > _MAX_DEPTH:
            self._problem(path, node, "nesting too deep")
            return None
        self.active.add(id(node))
        try:
            return self._build(node, path, depth)
        finally:
            self.active.discard(id(node))

    def _build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
            self._problem(path, node, f"unsupported YAML tag {node.tag!r}: remove it")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self._problem(path, node, exc.problem or str(exc))
            return None

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        written = {id(key_node) for key_node, _ in node.value}
        try:
            self.loader.flatten_mapping(node)  # apply ``<<: *anchor`` merge keys
        except yaml.MarkedYAMLError as exc:
            self._problem(path, node, exc.problem or str(exc))
        out: dict[str, Any] = {}
        first_seen: dict[str, Position] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(
                    path,
                    key_node,
                    "a key must be a plain name, not a list or mapping",
                    value_lost=False,
                )
                continue
            # Keys are taken as written: ``yes:`` is the key "yes", ``1:`` the key "1".
            key = str(key_node.value)
            child = (*path, key)
            if key in out:
                # A key written here overrides one merged in by ``<<``: forget the latter.
                self.doc.values.pop(child, None)
                self._forget_below(child)
            if id(key_node) not in written:
                self.doc.keys[child] = _pos(key_node)
                out[key] = self.build(value_node, child, depth + 1)
                continue
            if key in first_seen:
                line, _ = first_seen[key]
                self._problem(
                    child,
                    key_node,
                    f"duplicate key {key!r} (first written at line {line}); "
                    "YAML would silently keep only the last one: remove one of them",
                    value_lost=False,
                )
            first_seen.setdefault(key, _pos(key_node))
            self.doc.keys[child] = _pos(key_node)
            out[key] = self.build(value_node, child, depth + 1)
        return out

    def _forget_below(self, path: Path) -> None:
        n = len(path)
        for table in (self.doc.values, self.doc.keys):
            for known in [p for p in table if len(p) > n and p[:n] == path]:
                del table[known]

    def _problem(
        self, path: Path, node: yaml.Node, message: str, *, value_lost: bool = True
    ) -> None:
        line, col = _pos(node)
        self.doc.problems.append(Located(path, line, col, message, value_lost))
