"""Load a job spec: read the file, parse YAML, validate, and build the frozen JobSpec.

The pipeline, each step adding located problems, all of them reported at once:

    bytes --utf-8--> text --yamldoc.parse--> data + positions
          --schema_problems--> --semantic_problems--> JobSpec (only when nothing is wrong)

Relative local paths (input and output prefixes, ``code.path``, ``code.requirements``)
are resolved against the spec file's folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mrspec.errors import Problem, SpecError
from mrspec.spec import model, rules
from mrspec.spec.checks import semantic_problems
from mrspec.spec.model import JobSpec
from mrspec.spec.params import frozen as frozen_params
from mrspec.spec.schema import schema_problems
from mrspec.spec.yamldoc import (
    MAX_SPEC_BYTES,
    Finding,
    YamlDocument,
    YamlLimitError,
    YamlSyntaxError,
    format_path,
    parse,
)

__all__ = ["load_spec", "validate_file", "validate_text"]


def load_spec(path: str | Path) -> JobSpec:
    """The spec at ``path``; raises :class:`SpecError` listing every problem."""
    spec, problems = validate_file(path)
    if spec is None:
        raise SpecError(problems)
    return spec


def validate_file(path: str | Path) -> tuple[JobSpec | None, list[Problem]]:
    """``(spec, [])`` for a valid spec, ``(None, problems)`` otherwise. Never raises for
    bad input: a missing file, a folder, undecodable bytes and broken YAML are problems."""
    shown = str(path)
    file = Path(path)
    try:
        if file.is_file() and file.stat().st_size > 4 * MAX_SPEC_BYTES:  # never read it all
            size = file.stat().st_size
            return None, [_whole_file(shown, f"the file has {size:,} bytes; not a spec")]
        raw = file.read_bytes()
    except FileNotFoundError:
        return None, [_whole_file(shown, "no such file")]
    except IsADirectoryError:
        hint = ""
        for name in ("job.yaml", "job.yml"):
            if (file / name).is_file():
                hint = f"; did you mean {file / name}?"
        return None, [_whole_file(shown, f"is a folder, not a spec file{hint}")]
    except OSError as exc:
        return None, [_whole_file(shown, f"cannot read the file: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8"
        return None, [Problem(shown, line, column, "", message)]
    return validate_text(
        text,
        file=shown,
        base=file.resolve().parent,
        source=file.resolve(),
        digest=hashlib.sha256(raw).hexdigest(),
    )


def validate_text(
    text: str,
    *,
    file: str = "<spec>",
    base: Path,
    source: Path | None = None,
    digest: str = "",
) -> tuple[JobSpec | None, list[Problem]]:
    """Validate spec text whose relative paths start at ``base``."""
    try:
        doc = parse(text)
    except YamlLimitError as exc:
        return None, [Problem(file, exc.line, exc.column, "", exc.message)]
    except YamlSyntaxError as exc:
        return None, [Problem(file, exc.line, exc.column, "", f"YAML syntax: {exc.message}")]
    if doc.data is None:
        return None, [
            _whole_file(
                file,
                "the file is empty; a spec needs at least apiVersion, name, input, map and output",
            )
        ]
    problems = [Problem(file, p.line, p.column, _fmt(p.path), p.message) for p in doc.problems]
    # A value YAML could not read (an unsupported tag, ...) is None in the data: the
    # schema's complaint about that None would only repeat the YAML problem.
    lost = [p.path for p in doc.problems if p.value_lost]
    structural = [f for f in schema_problems(doc.data) if not _covered(f, lost)]
    reported = [f.path for f in structural] + [p.path for p in doc.problems]
    semantic = [f for f in semantic_problems(doc.data, base) if not _covered(f, reported)]
    problems += [_locate(file, doc, f) for f in structural + semantic]
    if problems:
        problems.sort(key=lambda p: (p.line, p.column))
        return None, _unique(problems)
    return build_spec(doc.data, base, source=source, digest=digest), []


def _covered(finding: Finding, paths: list[tuple[str | int, ...]]) -> bool:
    """Whether a problem was already reported at the finding's path or an ancestor of it."""
    return any(finding.path[: len(p)] == p for p in paths)


def _fmt(path: tuple[str | int, ...]) -> str:
    return format_path(path)


def _locate(file: str, doc: YamlDocument, finding: Finding) -> Problem:
    line, column = doc.position(finding.path, prefer_key=finding.at_key)
    return Problem(file, line, column, _fmt(finding.path), finding.message)


def _whole_file(file: str, message: str) -> Problem:
    return Problem(file, 1, 1, "", message)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[int, int, str, str]] = set()
    out = []
    for p in problems:
        key = (p.line, p.column, p.path, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def build_spec(
    data: dict[str, Any], base: Path, *, source: Path | None = None, digest: str = ""
) -> JobSpec:
    """The JobSpec of data that passed validation (defaults filled, units converted)."""
    inp, out = data["input"], data["output"]
    code = data.get("code") or {}
    limits = data.get("limits") or {}
    aws = data.get("aws") or {}
    prefixes = inp["prefix"] if isinstance(inp["prefix"], list) else [inp["prefix"]]
    first, *later = [_step(s) for s in data["steps"]] if "steps" in data else [_step(data)]
    requirements = code.get("requirements")
    budget = limits.get("budget_usd")
    return JobSpec(
        api_version=data["apiVersion"],
        name=data["name"],
        description=data.get("description", ""),
        input=model.InputSpec(
            prefixes=tuple(rules.resolve_location(p, base) for p in prefixes),
            format=inp.get("format", model.DEFAULT_INPUT_FORMAT),
            split_size=rules.size_bytes(inp.get("split_size", model.DEFAULT_SPLIT_SIZE)),
        ),
        map=first.map,
        reduce=first.reduce,
        later_steps=tuple(later),
        in_steps="steps" in data,
        output=model.OutputSpec(
            prefix=rules.resolve_location(out["prefix"], base),
            format=out.get("format", model.DEFAULT_OUTPUT_FORMAT),
        ),
        code=model.CodeSpec(
            path=rules.resolve_local(code.get("path", "."), base),
            requirements=rules.resolve_local(requirements, base) if requirements else None,
            exclude=tuple(code.get("exclude", ())),
        ),
        limits=model.Limits(
            max_concurrency=int(limits.get("max_concurrency", model.DEFAULT_MAX_CONCURRENCY)),
            max_attempts=int(limits.get("max_attempts", model.DEFAULT_MAX_ATTEMPTS)),
            max_bad_records=int(limits.get("max_bad_records", model.DEFAULT_MAX_BAD_RECORDS)),
            budget_usd=float(budget) if budget is not None else None,
        ),
        aws=model.AwsSpec(
            region=aws.get("region", model.DEFAULT_REGION),
            architecture=aws.get("architecture", model.DEFAULT_ARCHITECTURE),
            tags=_frozen_tags(aws.get("tags") or {}),
            log_retention_days=int(aws.get("log_retention_days", model.DEFAULT_LOG_RETENTION_DAYS)),
        ),
        params=frozen_params(data.get("params") or {}),
        source=source,
        digest=digest,
    )


def _step(data: dict[str, Any]) -> model.StepSpec:
    """A step from its ``map`` and optional ``reduce`` sections (top-level or in steps)."""
    mp = data["map"]
    reduce = None
    if "reduce" in data:
        rd = data["reduce"]
        reduce = model.ReduceSpec(
            entrypoint=rd["entrypoint"],
            partitions=int(rd.get("partitions", model.DEFAULT_PARTITIONS)),
            memory_mb=rules.memory_mb(rd.get("memory", model.DEFAULT_MEMORY_MB)),
            timeout_s=rules.timeout_seconds(rd.get("timeout", model.DEFAULT_REDUCE_TIMEOUT_S)),
        )
    return model.StepSpec(
        map=model.MapSpec(
            entrypoint=mp["entrypoint"],
            combiner=mp.get("combiner"),
            form=mp.get("form", "record"),
            memory_mb=rules.memory_mb(mp.get("memory", model.DEFAULT_MEMORY_MB)),
            timeout_s=rules.timeout_seconds(mp.get("timeout", model.DEFAULT_MAP_TIMEOUT_S)),
            bin_size=rules.size_bytes(mp.get("bin_size", model.DEFAULT_BIN_SIZE)),
        ),
        reduce=reduce,
    )


def _frozen_tags(tags: dict[str, str]) -> Any:
    from types import MappingProxyType

    return MappingProxyType(dict(tags))
