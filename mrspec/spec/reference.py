"""The Markdown field reference (docs/spec.md), generated from ``schema.json``.

``mrspec schema --markdown`` prints it; a test fails when docs/spec.md differs, so the
reference and the schema cannot drift apart.
"""

from __future__ import annotations

import json
from typing import Any

from mrspec.spec.schema import load_schema

_KINDS = {
    "#/$defs/size": "size",
    "#/$defs/memory": "memory",
    "#/$defs/timeout": "duration",
    "#/$defs/entrypoint": "`module:function`",
}

_INTRO = """\
# Job spec reference (apiVersion `mrspec/v1`)

<!-- Generated from mrspec/spec/schema.json by `mrspec schema --markdown`; do not edit.
     tests/test_spec_docs.py fails when this file is out of date. -->

A job spec is one YAML file, usually `job.yaml` next to the job's Python code. The format
is defined by a JSON Schema shipped with mrspec (`mrspec schema` prints it). Editors using
yaml-language-server (VS Code's YAML extension, for one) validate and complete a spec that
starts with:

```yaml
# yaml-language-server: $schema=../../mrspec/spec/schema.json
```

`mrspec validate FILE...` checks everything below and more (see *Checks beyond the
schema*) and prints each problem as `FILE:LINE:COL: field.path: message`.

A minimal spec (every other field takes its default):

```yaml
apiVersion: mrspec/v1
name: wordcount
input:
  prefix: input/            # relative to this file, or s3://bucket/prefix
map:
  entrypoint: wordcount:mapper
reduce:
  entrypoint: wordcount:reducer
output:
  prefix: out/
```

## Values

- **Paths.** Local paths (`input.prefix`, `output.prefix`, `code.path`,
  `code.requirements`) are relative to the spec file's folder; `~` is expanded.
  S3 locations are `s3://bucket/prefix` URIs; an S3 prefix is a plain key prefix, so
  `s3://b/logs` also names `s3://b/logs-old/x` (end it with `/` to mean a folder).
- **Sizes** (`split_size`, `bin_size`): bytes as an integer, or a number with a unit:
  binary `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024; `K`, `M`, `G`, `T` and `Ki`, `Mi`,
  `Gi`, `Ti` mean the same), decimal `KB`, `MB`, `GB`, `TB` (powers of 1000), `B`, in any
  case. For example `64MiB`.
- **Memory** (`map.memory`, `reduce.memory`): Lambda's unit, megabytes, where Lambda's
  "MB" are MiB. An integer is megabytes (`1769`). A size string is accepted when it comes
  to a whole number of MiB: `2GiB` is 2048, `1769MiB` or `1769M` is 1769. `1GB` (decimal,
  953.67 MiB) is refused with the integer to write instead. 128 to 10,240; 1,769 is one
  full vCPU and CPU grows with memory.
- **Durations** (`map.timeout`, `reduce.timeout`): seconds as an integer, or a number
  with a unit: `s`/`sec`, `m`/`min`, `h`, `d`. For example `90s`, `5m`. 1 s to 900 s (15 min).

"""

_CHECKS = """\
## Checks beyond the schema

`mrspec validate` (and every command that loads a spec) also checks, reporting every
problem at once with its line and column:

- unknown keys at every level, with a did-you-mean suggestion; duplicate keys (which
  YAML would otherwise silently collapse to the last one);
- the job name rule, with a suggested fix;
- Lambda limits after unit conversion: memory 128 to 10,240 MB, timeouts 1 to 900 s;
- `map.bin_size` at least `input.split_size` (a map task reads whole splits);
- S3 bucket names against the S3 naming rules (3 to 63 characters, lowercase letters,
  digits, dots and dashes, no IP addresses, no reserved prefixes or suffixes), and near
  misses of `s3://` such as `s3:/bucket`, an S3 ARN or HTTPS URL (with the `s3://` URI
  meant) and globs (with the prefix meant);
- input prefixes neither repeated nor nested in each other (their objects would be read
  twice);
- the output prefix neither equal to, inside, nor containing any input prefix (local
  folders and S3 key prefixes alike), and a local output neither equal to nor containing
  the spec's folder, `code.path` or the working directory (replacing it would remove the
  job's own files);
- entrypoints: the module (`a.b` is `a/b.py` or `a/b/__init__.py` under `code.path`)
  exists and binds the function at top level (a `def`, an assignment such as
  `combiner = reducer`, or an import), and where it is a `def`, its parameters take the
  call (a mapper one record, or one iterator in task form; a combiner and a reducer a key
  and its values). The code is parsed with `ast`, never imported or run; no top-level
  module in `code.path` is named like a standard-library module (it would hide it);
- built-in aggregators (`mrspec.builtins:sum`, `min`, `max`) are looked up in mrspec, not
  `code.path`, serve only as a combiner or reducer, and a misspelt one (or module name)
  gets a did-you-mean;
- `map.combiner` only with a `reduce` section;
- either `map`/`reduce` or `steps`, not both; every check of `map` and `reduce` applies
  to each step and is located inside it (`steps[1].reduce.memory`); `bin_size` only in
  the first step;
- `params` names are letters, digits and underscores (not starting with a digit, at most
  64 characters), values strings, finite numbers or booleans;
- `code.path` is a folder and `code.requirements` a file; `code.exclude` globs are
  relative, use `/`, and do not leave out a module an entrypoint needs;
- AWS tags: at most 47 (mrspec adds 3 of its own to AWS's 50), keys up to 128
  characters and starting with neither `aws:` nor `mrspec:`, values up to 256
  characters, letters, digits, spaces and `_ . : / = + - @` only;
- `aws.region` looks like a region name, `aws.log_retention_days` is a value CloudWatch
  Logs accepts;
- the job name and entrypoints are ASCII: a look-alike such as a Cyrillic `о` is named
  with its Unicode name and the ASCII text meant;
- a quoted number where a number is wanted is refused with "write 4 without quotes"
  (memory accepts it: `"512"` is 512 MB);
- YAML itself: syntax errors (an unclosed quote or bracket is reported where it was
  opened), an empty file, a list or scalar instead of a mapping, non-UTF-8 bytes,
  unsupported tags, several documents in one file, and bounds no spec comes near: 1 MiB
  of text, 64 levels of nesting, 100,000 values with every alias expanded.
"""


def _kind(node: dict[str, Any]) -> str:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref in _KINDS:
        return _KINDS[ref]
    if "enum" in node and len(node["enum"]) > 4:
        return "integer" if all(isinstance(v, int) for v in node["enum"]) else "string"
    if "enum" in node:
        return " | ".join(f"`{v}`" for v in node["enum"])
    types = node.get("type", "")
    types = [types] if isinstance(types, str) else list(types)
    words = {"object": "mapping", "array": "list", "string": "string"}
    if types == ["string", "array"]:
        return "string or list of strings"
    values = node.get("additionalProperties")
    if types == ["object"] and isinstance(values, dict):
        kinds = values.get("type", "string")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        plural = [f"{k}s" for k in kinds]
        listed = ", ".join(plural[:-1]) + " or " + plural[-1] if len(plural) > 1 else plural[0]
        return "mapping of " + listed
    if types == ["array"] and isinstance(node.get("items"), dict) and "properties" in node["items"]:
        return "list of steps"
    if types == ["array"]:
        return "list of strings"
    return " or ".join(words.get(t, t) for t in types)


def _default(name: str, node: dict[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" in node:
        value = node["default"]
        text = value if isinstance(value, str) else json.dumps(value)
        return f"`{text}`" if text != "" else '`""`'
    return "unset"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_reference() -> str:
    schema = load_schema()
    out = [_INTRO, "## Fields\n"]
    top_required = set(schema.get("required", []))
    # a mapping with fixed fields is a section of its own; free mappings (params) are rows
    scalars = [(k, v) for k, v in schema["properties"].items()
               if "properties" not in v and k != "steps"]
    sections = [(k, v) for k, v in schema["properties"].items() if "properties" in v]
    out.append("### Top level\n")
    out.append(_table([(k, v, k in top_required) for k, v in scalars], schema))
    for key, section in sections:
        required = key in top_required
        note = "required" if required else "optional"
        if key == "reduce":
            note = "optional: leave it out for a map-only job"
        if key == "map":
            note = "required, unless the job has `steps`"
        out.append(f"### `{key}` ({note})\n")
        out.append(f"{section['description']}\n")
        needed = set(section.get("required", []))
        rows = [
            (f"{key}.{name}", node, name in needed) for name, node in section["properties"].items()
        ]
        out.append(_table(rows, schema))
    out.append(_steps_section(schema["properties"]["steps"], schema))
    out.append(_CHECKS)
    return "\n".join(out)


def _steps_section(steps: dict[str, Any], schema: dict[str, Any]) -> str:
    step = steps["items"]
    rows = [
        (f"steps[].{name}", {**node, **_STEP_FIELDS[name]}, name in step.get("required", []))
        for name, node in step["properties"].items()
    ]
    return "\n".join([
        "### `steps` (optional: instead of `map` and `reduce`)\n",
        f"{steps['description']}\n",
        _table(rows, schema),
        _STEPS_EXAMPLE,
    ])


_STEP_FIELDS = {
    "map": {"type": "object", "title": "Step mapper", "description": "The step's `map` section: every field of "
            "`map` above (`bin_size` only in the first step: a later step's map tasks each "
            "read one part of the step before)."},
    "reduce": {"type": "object", "title": "Step reducer", "description": "The step's optional `reduce` section: "
               "every field of `reduce` above. Leave it out for a map-only step."},
}

_STEPS_EXAMPLE = """\
Count the words, then keep the `n` most frequent in one sorted part:

```yaml
steps:
  - map: {entrypoint: topwords:words, combiner: topwords:total}
    reduce: {entrypoint: topwords:total, partitions: 4}
  - map: {entrypoint: topwords:by_count}     # gets (word, count) tuples
    reduce: {entrypoint: topwords:top, partitions: 1}
params:
  n: 10
```
"""


def _table(rows: list[tuple[str, dict[str, Any], bool]], schema: dict[str, Any]) -> str:
    lines = ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, node, required in rows:
        meaning = f"**{node.get('title', '')}.** {node.get('description', '')}"
        if len(node.get("enum", ())) > 4:
            meaning += " One of: " + ", ".join(str(v) for v in node["enum"]) + "."
        lines.append(
            f"| `{name}` | {_cell(_kind(node))} | {_default(name, node, required)} "
            f"| {_cell(meaning)} |"
        )
    return "\n".join(lines) + "\n"
