"""Semantic checks: what the JSON Schema cannot say about a spec.

They run on the plain data of a spec (after YAML parsing) whatever the schema found, and
are written defensively: a value of the wrong type is skipped here because the schema has
already reported it. The loader drops a finding here when the schema already reported a
problem at the same place, so each mistake is reported once.

Checks: S3 bucket names and URI near misses (ARNs, HTTPS URLs, globs), nested or
repeated input prefixes, output overlapping an input or holding the job's own folders, sizes and their
order (bin_size >= split_size), Lambda memory and timeout after unit conversion,
entrypoints found statically under ``code.path``, the combiner of a map-only job,
``code.requirements`` existing, AWS tag rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from mrspec.spec import rules
from mrspec.spec.entrypoints import (
    builtin_problem,
    entrypoint_problem,
    is_builtin,
    module_file,
)
from mrspec.spec.model import DEFAULT_BIN_SIZE, DEFAULT_SPLIT_SIZE
from mrspec.spec.yamldoc import Finding
from mrspec.spec.yamldoc import Path as YamlPath
from mrspec.units import format_size

T = TypeVar("T")


def semantic_problems(data: Any, base: Path) -> list[Finding]:
    """Every semantic problem of the spec ``data`` whose relative paths start at ``base``."""
    if not isinstance(data, dict):
        return []
    checks = (
        _finite_numbers,
        _name,
        _steps_shape,
        _locations,
        _output_folder,
        _sizes,
        _lambda_settings,
        _code_and_entrypoints,
        _tags,
    )
    found: list[Finding] = []
    for check in checks:
        found.extend(check(data, base))
    return found


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _steps(data: dict[str, Any]) -> list[tuple[YamlPath, dict[str, Any]]]:
    """Each step's YAML path and mapping: ``[((), data)]`` for a spec without ``steps``,
    so one check covers ``map.memory`` and ``steps[2].map.memory`` alike."""
    steps = data.get("steps")
    if not isinstance(steps, list):
        return [((), data)]
    return [(("steps", i), step) for i, step in enumerate(steps) if isinstance(step, dict)]


def _dotted(path: YamlPath) -> str:
    from mrspec.spec.yamldoc import format_path

    return format_path(path)


def _steps_shape(data: dict[str, Any], base: Path) -> Iterator[Finding]:
    """A spec has either ``map``/``reduce`` or ``steps``; a later step's map tasks each
    read one part of the step before, so ``bin_size`` means nothing there."""
    if "steps" not in data:
        return
    for key in ("map", "reduce"):
        if key in data:
            yield Finding(
                (key,),
                f"a spec has either map/reduce or a steps list, not both: move {key} into "
                "a step of steps (or remove steps)",
                at_key=True,
            )
    for path, step in _steps(data)[1:]:
        if "bin_size" in _section(step, "map"):
            yield Finding(
                (*path, "map", "bin_size"),
                "a later step's map tasks read one part of the previous step's output "
                "each; bin_size applies to the first step only: remove it here",
                at_key=True,
            )


def _convert(fn: Callable[[Any], T], value: Any) -> T | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return fn(value)
    except ValueError:
        return None


def _finite_numbers(data: dict[str, Any], base: Path) -> Iterator[Finding]:
    """YAML has ``.inf`` and ``.nan``; no field of a spec means either."""

    def walk(value: Any, path: YamlPath) -> Iterator[Finding]:
        if isinstance(value, float) and not math.isfinite(value):
            yield Finding(path, f"{value} is not a finite number")
        elif isinstance(value, dict):
            for key, child in value.items():
                yield from walk(child, (*path, key))
        elif isinstance(value, list):
            for index, child in enumerate(value):
                yield from walk(child, (*path, index))

    yield from walk(data, ())


def _name(data: dict[str, Any], base: Path) -> Iterator[Finding]:
    name = data.get("name")
    if isinstance(name, str):
        problem = rules.name_problem(name)
        if problem:
            yield Finding(("name",), problem)


def _input_prefixes(data: dict[str, Any]) -> list[tuple[YamlPath, str]]:
    prefix = _section(data, "input").get("prefix")
    if isinstance(prefix, str):
        return [(("input", "prefix"), prefix)]
    if isinstance(prefix, list):
        return [(("input", "prefix", i), p) for i, p in enumerate(prefix) if isinstance(p, str)]
    return []


def _locations(data: dict[str, Any], base: Path) -> Iterator[Finding]:
    inputs = []
    for path, text in _input_prefixes(data):
        problem = rules.location_problem(text) if text else None
        if problem:
            yield Finding(path, problem)
        elif text:
            inputs.append((path, text, rules.resolve_location(text, base)))
    yield from _nested_inputs(inputs)
    output = _section(data, "output").get("prefix")
    if not isinstance(output, str) or not output:
        return
    problem = rules.location_problem(output)
    if problem:
        yield Finding(("output", "prefix"), problem)
        return
    resolved_out = rules.resolve_location(output, base)
    for path, text, resolved in inputs:
        kind = rules.overlap(resolved_out, resolved)
        if kind is None:
            continue
        how = {"same": "is the same as", "inside": "lies inside", "contains": "contains"}[kind]
        where = _where(path)
        yield Finding(
            ("output", "prefix"),
            f"output {output!r} {how} the input {text!r} ({where}); a job must not read "
            "its own output: choose an output prefix outside every input prefix",
        )


def _where(path: YamlPath) -> str:
    return "input.prefix" + (f"[{path[2]}]" if len(path) == 3 else "")


def _nested_inputs(inputs: list[tuple[YamlPath, str, str]]) -> Iterator[Finding]:
    """Two prefixes where one lists the other's objects: those records would be read twice."""
    for i, (path, text, resolved) in enumerate(inputs):
        for other_path, other_text, other in inputs[:i]:
            kind = rules.overlap(resolved, other)
            if kind == "same":
                yield Finding(path, f"input prefix {text!r} is listed twice")
            elif kind is not None:
                inner, outer = (text, other_text) if kind == "inside" else (other_text, text)
                yield Finding(
                    path,
                    f"input prefix {inner!r} lies inside {outer!r} "
                    f"({_where(other_path) if kind == 'inside' else _where(path)}): its "
                    f"objects would be read twice; list only {outer!r}",
                )
            else:
                continue
            break


def _output_folder(data: dict[str, Any], base: Path) -> Iterator[Finding]:
    """A local output that is, or holds, the job's own folders: replacing that output
    (--overwrite) would remove the spec and the code."""
    output = _section(data, "output").get("prefix")
    if not isinstance(output, str) or not output or rules.location_problem(output):
        return
    if output.startswith("s3://"):
        return
    resolved = rules.resolve_local(output, base)
    code_text = _section(data, "code").get("path", ".")
    folders = [("the spec's folder", base.resolve()), ("the working directory", Path.cwd())]
    if isinstance(code_text, str) and code_text:
        folders.insert(1, ("code.path", rules.resolve_local(code_text, base)))
    for what, folder in folders:
        kind = rules.overlap(str(resolved), str(folder))
        if kind in ("same", "contains"):
            how = "is" if kind == "same" else "contains"
            yield Finding(
                ("output", "prefix"),
                f"output {output!r} {how} {what} ({folder}); replacing that output would "
                "remove the job's own files: write the output to a folder of its own, "
                "such as 'out/'",
            )
            return


def _sizes(data: dict[str, Any], base: Path) -> Iterator[Finding]:
    split_value = _section(data, "input").get("split_size")
    first, step = (_steps(data) or [((), {})])[0]
    bin_path = (*first, "map", "bin_size")
    bin_value = _section(step, "map").get("bin_size")
    for path, value in ((("input", "split_size"), split_value), (bin_path, bin_value)):
        problem = _convert(rules.size_problem, value) if value is not None else None
        if problem:
            yield Finding(path, problem)
    # Compare the two sizes when both are readable; an unset one takes its default.
    split = DEFAULT_SPLIT_SIZE if split_value is None else _convert(rules.size_bytes, split_value)
    bin_ = DEFAULT_BIN_SIZE if bin_value is None else _convert(rules.size_bytes, bin_value)
    if split is not None and bin_ is not None and 0 < bin_ < split:
        yield Finding(
            bin_path if bin_value is not None else ("input", "split_size"),
            f"{_dotted(bin_path)} ({format_size(bin_)}) is smaller than input.split_size "
            f"({format_size(split)}); a map task reads whole splits: make bin_size at "
            "least split_size",
        )


def _lambda_settings(data: dict[str, Any], base: Path) -> Iterator[Finding]:
    for at, step in _steps(data):
        for section in ("map", "reduce"):
            values = _section(step, section)
            memory = values.get("memory")
            if isinstance(memory, int | float | str) and not isinstance(memory, bool):
                problem = rules.memory_problem(memory)
                if problem:
                    yield Finding((*at, section, "memory"), problem)
            timeout = values.get("timeout")
            if isinstance(timeout, int | float | str) and not isinstance(timeout, bool):
                problem = rules.timeout_problem(timeout)
                if problem:
                    yield Finding((*at, section, "timeout"), problem)
        if "reduce" not in step and _section(step, "map").get("combiner") is not None:
            what = "a map-only job" if not at else "a map-only step"
            yield Finding(
                (*at, "map", "combiner"),
                f"{what} (no reduce section) has no shuffle for a combiner to shrink: "
                f"remove {_dotted((*at, 'map', 'combiner'))} or add a reduce section",
            )


def _code_and_entrypoints(data: dict[str, Any], base: Path) -> Iterator[Finding]:
    code = _section(data, "code")
    code_text = code.get("path", ".")
    if not isinstance(code_text, str) or not code_text:
        return
    code_path = rules.resolve_local(code_text, base)
    requirements = code.get("requirements")
    if isinstance(requirements, str) and requirements:
        req_path = rules.resolve_local(requirements, base)
        if not req_path.exists():
            yield Finding(("code", "requirements"), f"{requirements!r} does not exist ({req_path})")
        elif not req_path.is_file():
            yield Finding(("code", "requirements"), f"{requirements!r} is not a file ({req_path})")
    if not code_path.is_dir():
        what = "does not exist" if not code_path.exists() else "is not a folder"
        yield Finding(
            ("code", "path") if "path" in code else ("code",) if code else (),
            f"code.path {code_text!r} {what} ({code_path}); it is resolved against the "
            "spec file's folder",
            at_key="path" not in code,
        )
        return
    yield from _stdlib_shadows(code_path, ("code", "path") if "path" in code else ())
    excludes = code.get("exclude")
    patterns = [p for p in excludes if isinstance(p, str)] if isinstance(excludes, list) else []
    for index, pattern in enumerate(patterns):
        problem = rules.exclude_pattern_problem(pattern)
        if problem:
            yield Finding(("code", "exclude", index), problem)
    dropped: set[tuple[int, str]] = set()
    for at, step, section, key, entry in _entrypoints(data):
        if is_builtin(entry):  # in mrspec itself: nothing to find under code.path
            problem = builtin_problem(entry, mapper=(section, key) == ("map", "entrypoint"))
            if problem:
                yield Finding((*at, section, key), problem)
            continue
        problem = entrypoint_problem(code_path, entry, _calls(step, section, key))
        if problem:
            yield Finding((*at, section, key), problem)
            continue
        module = module_file(code_path, entry.partition(":")[0])
        if module is None:
            continue
        rel = module.relative_to(code_path).as_posix()
        for index, pattern in enumerate(patterns):
            if rules.excludes(pattern, rel) and (index, rel) not in dropped:
                dropped.add((index, rel))
                yield Finding(
                    ("code", "exclude", index),
                    f"{pattern!r} leaves {rel} out of the Lambda package, but "
                    f"{_dotted((*at, section, key))} ({entry}) needs it",
                )


def _entrypoints(
    data: dict[str, Any],
) -> Iterator[tuple[YamlPath, dict[str, Any], str, str, str]]:
    """(step path, step, section, key, "module:function") of every well-formed entrypoint."""
    for at, step in _steps(data):
        for section, key in (("map", "entrypoint"), ("map", "combiner"), ("reduce", "entrypoint")):
            entry = _section(step, section).get(key)
            if isinstance(entry, str) and rules.is_entrypoint(entry):
                yield at, step, section, key, entry


# Standard-library names no task code imports: a job's test.py hides nothing that matters.
_NEVER_IMPORTED = frozenset({"test", "this", "antigravity", "idlelib", "turtledemo", "__phello__"})


def _stdlib_shadows(code_path: Path, where: YamlPath) -> Iterator[Finding]:
    """code.path comes first on the tasks' sys.path (in Lambda too: /var/task), so a
    ``json.py`` there would replace the standard library's json for mrspec's task code."""
    import sys

    try:
        entries = sorted(code_path.iterdir())
    except OSError:
        return
    for entry in entries:
        name = entry.stem if entry.suffix == ".py" else entry.name
        package = entry.is_dir() and (entry / "__init__.py").is_file()
        shadows = name in sys.stdlib_module_names and name not in _NEVER_IMPORTED
        if (entry.suffix == ".py" or package) and shadows:
            yield Finding(
                where,
                f"code.path holds {entry.name}, which would hide the standard library's "
                f"{name!r} module from mrspec's task code and yours: rename it",
                at_key=not where,
            )


def _calls(step: dict[str, Any], section: str, key: str) -> tuple[int, str]:
    """How the runtime calls an entrypoint: positional arguments and the words for it."""
    if section == "map" and key == "entrypoint":
        if _section(step, "map").get("form") == "task":
            return 1, "a task-form mapper is called with one iterator: def mapper(records)"
        return 1, "a mapper is called with one record: def mapper(record)"
    what = "combiner" if key == "combiner" else "reducer"
    return 2, f"a {what} is called with a key and its values: def {what}(key, values)"


def _tags(data: dict[str, Any], base: Path) -> Iterator[Finding]:
    tags = _section(data, "aws").get("tags")
    if not isinstance(tags, dict):
        return
    for key, value in tags.items():
        if not isinstance(value, str):
            continue
        problem = rules.tag_problem(key, value)
        if problem:
            what, message = problem
            yield Finding(("aws", "tags", key), message, at_key=what == "key")
