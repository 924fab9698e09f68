"""The example jobs under specs/: they validate, follow the conventions, and their
functions compute what a plain reference computation over the bundled input gives.

The jobs run here through a tiny in-memory MapReduce (one map task per input file,
combiner per task, group by key, reducer per key): it tests the examples' code, not
mrspec's engine, which has its own end-to-end tests.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mrspec import api
from mrspec.spec.loader import validate_file
from mrspec.spec.model import JobSpec

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted((REPO / "specs").glob("*/job.yaml"))
EXPECTED = {"wordcount", "invertedindex", "join", "grep", "logagg"}


def test_every_expected_example_exists() -> None:
    assert {p.parent.name for p in SPECS} >= EXPECTED


@pytest.mark.parametrize("spec_file", SPECS, ids=lambda p: p.parent.name)
def test_example_validates_and_follows_conventions(spec_file: Path) -> None:
    spec, problems = validate_file(spec_file)
    assert problems == [], "\n".join(p.format() for p in problems)
    assert spec is not None
    first = spec_file.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../mrspec/spec/schema.json"
    assert (spec_file.parent / "../../mrspec/spec/schema.json").resolve().is_file()
    folder = spec_file.parent.resolve()
    assert spec.output.prefix == str(folder / "out")
    for prefix in spec.input.prefixes:
        assert Path(prefix).is_relative_to(folder / "input")
    data = [f for f in (folder / "input").rglob("*") if f.is_file()]
    assert data and sum(f.stat().st_size for f in data) < 64 * 1024
    assert spec.partitions <= 4


def load(spec: JobSpec, entrypoint: str) -> Callable[..., Any]:
    """The function an entrypoint names, loaded from the job's folder under a unique name."""
    module_name, _, func = entrypoint.partition(":")
    path = spec.code.path / f"{module_name}.py"
    unique = f"example_{spec.name.replace('-', '_')}_{module_name}"
    module_spec = importlib.util.spec_from_file_location(unique, path)
    assert module_spec is not None and module_spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    function: Callable[..., Any] = getattr(module, func)
    return function


def records(spec: JobSpec, path: Path) -> Iterator[Any]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if spec.input.format == "jsonl":
            if line.strip():
                yield json.loads(line)
        else:
            yield line


def run_in_memory(spec: JobSpec) -> tuple[list[tuple[str, Any]], dict[str, int]]:
    """Output pairs (sorted by key within the job) and user counters of a tiny run."""
    previous = api.install(api.TaskContext())
    try:
        mapper = load(spec, spec.map.entrypoint)
        combiner = load(spec, spec.map.combiner) if spec.map.combiner else None
        files = sorted(f for p in spec.input.prefixes for f in Path(p).rglob("*") if f.is_file())
        shuffled: dict[str, list[Any]] = defaultdict(list)
        output: list[tuple[str, Any]] = []
        for file in files:  # one map task per file
            api.set_input(str(file))

            def task_records(file: Path = file) -> Iterator[Any]:
                yield from records(spec, file)

            if spec.map.form == "task":
                pairs = list(mapper(task_records()))
            else:
                pairs = [pair for record in task_records() for pair in mapper(record)]
            for key, _ in pairs:
                assert isinstance(key, str)
            json.dumps(pairs)  # values must be JSON-serializable
            if spec.map_only:
                output.extend(pairs)
                continue
            if combiner is not None:
                grouped: dict[str, list[Any]] = defaultdict(list)
                for key, value in pairs:
                    grouped[key].append(value)
                pairs = [p for key in grouped for p in combiner(key, iter(grouped[key]))]
            for key, value in pairs:
                shuffled[key].append(value)
        if spec.reduce is not None:
            reducer = load(spec, spec.reduce.entrypoint)
            for key in sorted(shuffled):
                output.extend(reducer(key, iter(shuffled[key])))
        return output, api.counters()
    finally:
        api.install(previous)


def example(name: str) -> JobSpec:
    spec, problems = validate_file(REPO / "specs" / name / "job.yaml")
    assert spec is not None, problems
    return spec


def input_files(spec: JobSpec) -> list[Path]:
    return sorted(f for p in spec.input.prefixes for f in Path(p).rglob("*") if f.is_file())


def test_wordcount_matches_a_plain_count() -> None:
    spec = example("wordcount")
    output, _ = run_in_memory(spec)
    text = " ".join(f.read_text() for f in input_files(spec)).lower()
    expected = Counter(re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*", text))
    assert dict(output) == dict(expected)
    assert dict(output)["the"] > 50


def test_invertedindex_lists_the_documents_of_each_word() -> None:
    spec = example("invertedindex")
    output, _ = run_in_memory(spec)
    expected: dict[str, set[str]] = defaultdict(set)
    for file in input_files(spec):
        for word in re.findall(r"[a-z0-9]+", file.read_text().lower()):
            expected[word].add(file.name)
    assert dict(output) == {w: sorted(d) for w, d in expected.items()}
    assert dict(output)["bread"] == ["bread.txt", "station.txt"]


def test_join_pairs_every_order_with_its_user() -> None:
    spec = example("join")
    output, counters = run_in_memory(spec)
    folder = spec.source.parent if spec.source else REPO
    users = {
        fields[0]: fields[1:]
        for line in (folder / "input/users/users.tsv").read_text().splitlines()
        for fields in [line.split("\t")]
    }
    expected = {}
    orphans = 0
    for file in sorted((folder / "input/orders").glob("*.tsv")):
        for line in file.read_text().splitlines():
            order_id, user_id, item, amount = line.split("\t")
            if user_id not in users:
                orphans += 1
                continue
            name, country = users[user_id]
            expected[order_id] = {
                "user_id": user_id,
                "name": name,
                "country": country,
                "item": item,
                "amount": float(amount),
            }
    assert dict(output) == expected and len(output) == len(expected)
    assert orphans > 0 and counters == {"orders_without_user": orphans}


def test_grep_keeps_error_and_timeout_lines_and_counts() -> None:
    spec = example("grep")
    assert spec.map_only
    output, counters = run_in_memory(spec)
    expected = [
        (file.name, line)
        for file in input_files(spec)
        for line in file.read_text().splitlines()
        if "ERROR" in line.split() or "timeout" in line.lower()
    ]
    assert output == expected and expected
    total = sum(len(f.read_text().splitlines()) for f in input_files(spec))
    assert counters == {"lines_scanned": total, "lines_matched": len(expected)}


def test_logagg_sums_requests_and_bytes() -> None:
    spec = example("logagg")
    output, _ = run_in_memory(spec)
    expected: dict[str, dict[str, int]] = defaultdict(lambda: {"requests": 0, "bytes": 0})
    for file in input_files(spec):
        for line in file.read_text().splitlines():
            request = json.loads(line)
            for key in (f"status {request['status']}", f"path {request['path']}"):
                expected[key]["requests"] += 1
                expected[key]["bytes"] += request["bytes"]
    assert dict(output) == dict(expected)


def test_logagg_combiner_is_safe_to_apply_repeatedly() -> None:
    spec = example("logagg")
    assert spec.map.combiner is not None
    combiner = load(spec, spec.map.combiner)
    values = [[1, 10], [1, 20], [1, 5]]
    once = [v for _, v in combiner("k", iter(values))]
    twice = [v for _, v in combiner("k", iter([*once, [1, 1]]))]
    assert once == [[3, 35]] and twice == [[4, 36]]
