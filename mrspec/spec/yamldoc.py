"""Parse a YAML document into plain data while remembering where every node was written.

PyYAML's ``compose`` step gives a node tree whose nodes carry start marks. We build the
plain data ourselves from that tree (scalars through PyYAML's safe constructor), so that
each value's YAML path maps to its line and column, and so that duplicate keys, which
PyYAML's own constructor silently collapses to the last one, can be reported.

Paths are tuples of keys (str) and list indexes (int); ``format_path`` renders them as
``input.prefix[1]`` or ``aws.tags["cost.center"]``.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line and column

_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_MAX_DEPTH = 64
# A spec is a page of YAML. These bounds keep a hostile or broken file (a "billion laughs"
# alias bomb of a few hundred bytes, thousands of nested brackets) from exhausting memory
# or the stack: both are checked on PyYAML's event stream, before any node tree is built.
MAX_SPEC_BYTES = 1024 * 1024
MAX_VALUES = 100_000  # values in the document with every alias expanded
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


class YamlLimitError(YamlSyntaxError):
    """The text is YAML, but too large, too deep or expanding too far to be a spec."""


def check_bounds(text: str) -> None:
    """Raise :class:`YamlLimitError` for a document past a bound; PyYAML's parser walks
    the events without recursion and without expanding aliases, so this pass is cheap."""
    if len(text) > MAX_SPEC_BYTES:
        raise YamlLimitError(
            f"the file has {len(text):,} characters; a spec is at most {MAX_SPEC_BYTES:,}",
            1,
            1,
        )
    lines = _Lines(text)
    sizes: dict[str, int] = {}  # anchor -> values it expands to
    stack: list[tuple[str | None, int]] = []  # open collections: (anchor, values so far)
    total = 0
    # libyaml's event parser when PyYAML has it: this pass then costs a tenth of the parse
    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        line, column = lines.of(event.start_mark)
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= _MAX_DEPTH:
                raise YamlLimitError(
                    f"nesting deeper than {_MAX_DEPTH} levels; a spec is a few levels deep",
                    line,
                    column,
                )
            stack.append((event.anchor, 1))
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
        elif isinstance(event, yaml.AliasEvent):
            anchor, size = None, sizes.get(str(event.anchor), 1)
        elif isinstance(event, yaml.ScalarEvent):
            anchor, size = event.anchor, 1
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        if stack:
            stack[-1] = (stack[-1][0], stack[-1][1] + size)
        else:
            total += size
        if total + sum(n for _, n in stack) > MAX_VALUES:
            raise YamlLimitError(
                f"the document expands to more than {MAX_VALUES:,} values (YAML aliases "
                "repeating each other?); a spec is small: write the values out",
                line,
                column,
            )


class _Lines:
    """Positions counted as editors count them: PyYAML also breaks lines at U+0085,
    U+2028 and U+2029, which would put a problem below the file's last line."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def of(self, mark: Any) -> Position:
        if mark is None:
            return (1, 1)
        line = bisect.bisect_right(self.starts, mark.index)
        return line, mark.index - self.starts[line - 1] + 1


def parse(text: str) -> YamlDocument:
    """Parse one YAML document; raise :class:`YamlSyntaxError` when it is not YAML.

    An empty document (or one with only comments) gives ``data=None``. More than one
    document in the stream is a syntax error: a spec is one document.
    """
    try:
        check_bounds(text)
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(text, exc) from None
    except yaml.YAMLError:
        loader = yaml.SafeLoader(text)  # the syntax error is reported with its mark below
    try:
        node = loader.get_single_node()
        doc = YamlDocument(data=None)
        if node is not None:
            doc.data = _Builder(loader, doc, _Lines(text)).build(node, (), 0)
        return doc
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, _Lines(text)) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(text, exc) from None
    except yaml.YAMLError as exc:  # any other error without a mark
        raise YamlSyntaxError(str(exc), 1, 1) from None
    finally:
        loader.dispose()


_OPENED = {
    "while scanning a quoted scalar": "the quote opened here is never closed",
    "while parsing a flow sequence": "the '[' opened here is not closed",
    "while parsing a flow mapping": "the '{' opened here is not closed",
}


def _syntax_error(exc: yaml.MarkedYAMLError, lines: _Lines) -> YamlSyntaxError:
    """PyYAML's error, pointed at the line to change: for an unclosed quote or bracket
    that is where it was opened, not where the parser gave up (often the file's end)."""
    line, col = lines.of(exc.problem_mark or exc.context_mark)
    problem = exc.problem or str(exc)
    context = exc.context or ""
    opened = exc.context_mark
    if context in _OPENED and opened is not None and lines.of(opened)[0] < line:
        problem = f"{_OPENED[context]} ({problem} at line {line})"
        line, col = lines.of(opened)
    elif "expected a single document" in context:
        problem = "the file holds more than one YAML document (a spec is one document)"
    elif "'\\t'" in problem or "\t" in problem:
        problem += ": YAML indents with spaces, never tabs"
    elif problem == "mapping values are not allowed here":
        problem += " (a value holding ': ' must be quoted: key: 'a: b')"
    elif context == "while parsing a block mapping" and "<scalar>" in problem:
        problem += " (a quoted value goes on after its closing quote: write 'it''s' or \"it's\")"
    return YamlSyntaxError(problem, line, col)


def _reader_error(text: str, exc: yaml.reader.ReaderError) -> YamlSyntaxError:
    """Control characters and the like: PyYAML gives a character offset, not a mark."""
    at = max(0, min(exc.position, len(text)))
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    char = exc.character
    code = f"U+{ord(char):04X}" if isinstance(char, str) else repr(char)
    return YamlSyntaxError(f"character {code} is not allowed in YAML; remove it", line, column)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, doc: YamlDocument, lines: _Lines) -> None:
        self.lines = lines
        self.loader = loader
        self.doc = doc
        self.active: set[int] = set()  # the nodes being built: a repeat is a recursive alias

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.doc.values.setdefault(path, self.lines.of(node.start_mark))
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
                self.doc.keys[child] = self.lines.of(key_node.start_mark)
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
            first_seen.setdefault(key, self.lines.of(key_node.start_mark))
            self.doc.keys[child] = self.lines.of(key_node.start_mark)
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
        line, col = self.lines.of(node.start_mark)
        self.doc.problems.append(Located(path, line, col, message, value_lost))
