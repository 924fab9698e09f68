"""The JSON Schema of the spec format, and its errors turned into messages a reviewer can act on.

``schema.json`` (shipped in the package) is the single source of the format's structure:
``mrspec schema`` prints it, editors use it through ``yaml-language-server``, docs/spec.md
is generated from it, and :func:`schema_problems` validates specs against it.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from mrspec.spec.yamldoc import Finding, Path, format_path

SUPPORTED_API_VERSIONS = ("mrspec/v1",)


@cache
def schema_text() -> str:
    """The schema exactly as shipped."""
    return resources.files("mrspec.spec").joinpath("schema.json").read_text(encoding="utf-8")


@cache
def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_text())
    return schema


def suggest(word: str, choices: list[str]) -> str | None:
    """The closest of ``choices`` to a misspelt ``word``, if any is close enough."""
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return lowered[word.lower()]
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


def subschema(path: Path) -> dict[str, Any] | None:
    """The schema node describing the value at ``path`` (``$ref`` followed), if any."""
    node: dict[str, Any] = load_schema()
    for part in path:
        node = _deref(node)
        if isinstance(part, int):
            items = node.get("items")
            if not isinstance(items, dict):
                return None
            node = items
            continue
        props = node.get("properties", {})
        if part in props:
            node = props[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return _deref(node)


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    target: dict[str, Any] = load_schema()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    merged = {k: v for k, v in node.items() if k != "$ref"}
    return {**target, **merged}


def schema_problems(data: Any) -> list[Finding]:
    """Every schema violation in ``data``, each with its path and a readable message."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema())
    errors = list(validator.iter_errors(data))
    # A value of the wrong type also breaks the rules for the right type (``.inf`` is no
    # integer and above the maximum): the type error says it all.
    mistyped = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    problems: list[Finding] = []
    for error in errors:
        if error.validator != "type" and tuple(error.absolute_path) in mistyped:
            continue
        problems.extend(_translate(error))
    return _required_in_field_order(problems)


def _required_in_field_order(problems: list[Finding]) -> list[Finding]:
    """Missing top-level fields in the order the format lists them (``map`` is required
    through ``if``/``then``, which the validator reports after ``required``)."""
    order = list(load_schema()["properties"])
    slots = [i for i, f in enumerate(problems) if len(f.path) == 1 and f.path[0] in order
             and f.message.startswith("missing required field")]
    ranked = sorted((problems[i] for i in slots), key=lambda f: order.index(str(f.path[0])))
    for i, finding in zip(slots, ranked, strict=True):
        problems[i] = finding
    return problems


def _translate(error: Any) -> Iterator[Finding]:
    path: Path = tuple(error.absolute_path)
    kind: str = error.validator
    value = error.instance
    where = format_path(path)
    if kind == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        for key in sorted(set(value) - set(allowed)) if isinstance(value, dict) else []:
            yield Finding((*path, key), _unknown_key(key, allowed, path), at_key=True)
        return
    if kind == "required":
        missing = error.validator_value
        for key in [k for k in missing if isinstance(value, dict) and k not in value]:
            yield Finding((*path, key), _missing(path, key), at_key=True)
        return
    if path == ("params",) and kind in ("pattern", "maxLength") and isinstance(value, str):
        # propertyNames' errors come at the mapping, the name as their instance
        from mrspec.spec.params import name_problem

        message = name_problem(value) or f"{value!r} is not a parameter name"
        yield Finding((*path, value), message, at_key=True)
        return
    if kind == "propertyNames":
        key = str(value)
        yield Finding((*path, key), _tag_key(key, error), at_key=True)
        return
    yield Finding(path, _message(kind, where, path, value, error))


def _unknown_key(key: str, allowed: list[str], parent: Path) -> str:
    guess = suggest(key, allowed)
    section = f" in {format_path(parent)}" if parent else ""
    if guess is not None:
        return f"unknown key {key!r}{section}; did you mean {guess!r}?"
    return f"unknown key {key!r}{section}; allowed keys: {', '.join(allowed)}"


def _missing(parent: Path, key: str) -> str:
    node = subschema((*parent, key)) or {}
    title = node.get("title")
    what = f" ({title})" if title else ""
    if not parent:
        return f"missing required field {key!r}{what}"
    return f"missing required field {key!r}{what} in {format_path(parent)}"


def _tag_key(key: str, error: Any) -> str:
    context = list(getattr(error, "context", []) or [])
    kinds = {c.validator for c in context}
    if "maxLength" in kinds:
        return f"tag key {key[:20]!r}... is {len(key)} characters; AWS allows at most 128"
    return "a tag key cannot be empty"


_TYPE_WORDS = {
    "object": "a mapping (key: value lines)",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}


def _type_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({value})"


def _is_written_number(text: str, types: list[str]) -> bool:
    """A quoted number where the schema wants one (``partitions: "4"``)."""
    try:
        if "integer" in types:
            int(text.strip())
        elif "number" in types:
            float(text.strip())
        else:
            return False
    except ValueError:
        return False
    return True


def _message(kind: str, where: str, path: Path, value: Any, error: Any) -> str:
    from mrspec.spec import rules

    expected = error.validator_value
    if kind == "type":
        types = [expected] if isinstance(expected, str) else list(expected)
        want = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        if not path:
            return (
                f"a spec must be a mapping of fields (apiVersion, name, input, map, ...), "
                f"got {_type_of(value)}"
            )
        if path[:2] == ("aws", "tags") and len(path) == 3:
            return f"tag values must be strings, got {_type_of(value)}; quote it"
        if path[:1] == ("params",) and len(path) == 2:
            return f"a parameter is a string, a number or true/false, got {_type_of(value)}"
        msg = f"expected {want}, got {_type_of(value)}"
        if types == ["string"] and isinstance(value, bool | int | float):
            msg += "; quote it if it is meant as text"
        elif isinstance(value, str) and _is_written_number(value, types):
            msg += f"; write {value.strip()} without quotes"
        return msg
    if kind == "enum":
        if path == ("apiVersion",):
            return f"unsupported apiVersion {value!r}; this mrspec supports " + ", ".join(
                SUPPORTED_API_VERSIONS
            )
        choices = [str(c) for c in expected]
        if path == ("aws", "log_retention_days"):
            return f"{value!r} is not a retention CloudWatch Logs accepts; use one of " + ", ".join(
                choices
            )
        guess = suggest(str(value), choices) if isinstance(value, str) else None
        hint = f"; did you mean {guess!r}?" if guess else ""
        return f"{value!r} is not one of: {', '.join(choices)}{hint}"
    if kind == "pattern":
        leaf = path[-1] if path else ""
        if path == ("name",):
            return rules.name_problem(str(value)) or f"{value!r} is not a valid job name"
        if leaf in ("entrypoint", "combiner"):
            return rules.entrypoint_syntax_problem(str(value))
        if leaf == "memory":
            return rules.memory_problem(str(value)) or f"{value!r} is not a memory size"
        if leaf == "timeout":
            return rules.timeout_problem(str(value)) or f"{value!r} is not a duration"
        if leaf in ("split_size", "bin_size"):
            return rules.size_problem(str(value)) or f"{value!r} is not a size"
        if path == ("aws", "region"):
            return rules.region_problem(str(value))
        return f"{value!r} does not match the expected form {expected}"
    if kind in ("minimum", "maximum"):
        leaf = path[-1] if path else ""
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if leaf == "memory" and whole:
            return rules.memory_range_problem(int(value)) or f"{value} is out of range"
        if leaf == "timeout" and whole:
            return rules.timeout_range_problem(int(value)) or f"{value} is out of range"
        node = subschema(path) or {}
        low, high = node.get("minimum"), node.get("maximum")
        if low is not None and high is not None:
            return f"must be {low} to {high:,}, got {value}"
        bound = "at least" if kind == "minimum" else "at most"
        return f"must be {bound} {expected}, got {value}"
    if kind == "maxLength":
        if path == ("name",):
            return rules.name_problem(str(value)) or "too long"
        if path[:2] == ("aws", "tags"):
            return f"tag value is {len(value)} characters; AWS allows at most {expected}"
        return f"at most {expected} characters, got {len(value)}"
    if kind == "minLength":
        return "must not be empty"
    if kind == "minItems":
        return "the list must not be empty"
    if kind == "maxProperties":
        return (
            f"{len(value)} tags; at most {expected} are allowed (AWS allows 50 per resource "
            "and mrspec adds 3 of its own)"
        )
    return str(error.message)
