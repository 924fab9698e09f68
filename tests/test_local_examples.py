"""Every example job in specs/ run with ``mrspec apply --local`` (the CLI, as a subprocess)
equals a plain Python computation over the same input.

Two references per example: a generic one (the job's own functions in a plain loop:
read every line, map, group in a dict, reduce: no splits, shuffle, spills or processes),
and, for the examples known here, one written from the job's description alone.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mrspec import api
from mrspec.spec.loader import load_spec
from mrspec.spec.model import JobSpec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.parent.name for p in (ROOT / "specs").glob("*/job.yaml"))
Pair = tuple[str, str]  # (key, value) as text, comparable across formats


def input_files(spec: JobSpec) -> list[Path]:
    seen: dict[str, Path] = {}
    for prefix in spec.input.prefixes:
        base = Path(prefix)
        found = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in found:
            if not path.name.startswith(("_", ".")):
                seen.setdefault(str(path), path)
    return sorted(seen.values(), key=str)


def records_of(spec: JobSpec, path: Path) -> list[Any]:
    import gzip

    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    text = [(x[:-1] if x.endswith(b"\r") else x).decode("utf-8", "replace") for x in lines]
    if spec.input.format == "jsonl":
        return [json.loads(line) for line in text if line.strip()]
    return text


def load_function(spec: JobSpec, ref: str) -> Callable[..., Any]:
    module_name, _, attr = ref.partition(":")
    location = spec.code.path / f"{module_name}.py"
    module_spec = importlib.util.spec_from_file_location(f"ref_{module_name}", location)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    fn: Callable[..., Any] = getattr(module, attr)
    return fn


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def plain_loop(spec: JobSpec) -> list[Pair]:
    """The job's functions in a single plain loop, step after step."""
    pairs: list[tuple[str, Any]] = []
    for index, step in enumerate(spec.steps):
        mapper = load_function(spec, step.map.entrypoint)
        if index > 0:  # a later step's records: the pairs the step before emitted
            records = list(pairs)
            pairs = []
            if step.map.form == "task":
                pairs.extend(mapper(iter(records)) or ())
            else:
                for record in records:
                    pairs.extend(mapper(record) or ())
        elif step.map.form == "task":

            def all_records() -> Any:
                for path in input_files(spec):
                    for record in records_of(spec, path):
                        api.set_input(str(path))
                        yield record

            pairs.extend(mapper(all_records()) or ())
        else:
            for path in input_files(spec):
                api.set_input(str(path))
                for record in records_of(spec, path):
                    pairs.extend(mapper(record) or ())
        if step.reduce is not None:
            groups: dict[str, list[Any]] = collections.defaultdict(list)
            for key, value in pairs:
                groups[key].append(value)
            reducer = load_function(spec, step.reduce.entrypoint)
            pairs = [pair for key in groups for pair in (reducer(key, iter(groups[key])) or ())]
    return sorted((as_text(k), as_text(v)) for k, v in pairs)


# -- references written from each example's description, without its code -------------
def ref_wordcount(spec: JobSpec) -> list[Pair]:
    counts: collections.Counter[str] = collections.Counter()
    for path in input_files(spec):
        for line in records_of(spec, path):
            for word in re.findall(r"[\w']+", line.lower()):
                if word.strip("'"):
                    counts[word.strip("'")] += 1
    return sorted((w, str(n)) for w, n in counts.items())


def ref_grep(spec: JobSpec) -> list[Pair]:
    return sorted(
        (path.name, line)
        for path in input_files(spec)
        for line in records_of(spec, path)
        if re.search(r"\bERROR\b", line, re.IGNORECASE) or "timeout" in line.lower()
    )


def ref_logagg(spec: JobSpec) -> list[Pair]:
    sums: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for path in input_files(spec):
        for request in records_of(spec, path):
            for key in (f"status {request['status']}", f"path {request['path']}"):
                sums[key][0] += 1
                sums[key][1] += int(request.get("bytes", 0))
    return sorted((k, as_text({"requests": r, "bytes": b})) for k, (r, b) in sums.items())


def ref_join(spec: JobSpec) -> list[Pair]:
    users: dict[str, tuple[str, str]] = {}
    orders: list[list[str]] = []
    for path in input_files(spec):
        for line in records_of(spec, path):
            fields = line.split("\t")
            if path.parent.name == "users" and len(fields) == 3:
                users[fields[0]] = (fields[1], fields[2])
            elif path.parent.name == "orders" and len(fields) == 4:
                orders.append(fields)
    out = []
    for order_id, user_id, item, amount in orders:
        if user_id in users:
            name, country = users[user_id]
            row = {"user_id": user_id, "name": name, "country": country, "item": item, "amount": float(amount)}
            out.append((order_id, as_text(row)))
    return sorted(out)


def _word_counts(spec: JobSpec, shortest: int = 1) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for path in input_files(spec):
        for line in records_of(spec, path):
            for word in (w.strip("'") for w in re.findall(r"[\w']+", line.lower())):
                if word and len(word) >= shortest:
                    counts[word] += 1
    return counts


def ref_topwords(spec: JobSpec) -> list[Pair]:
    n = int(spec.params["n"])
    ranked = sorted(_word_counts(spec).items(), key=lambda wc: (-wc[1], wc[0]))[:n]
    return sorted((w, str(c)) for w, c in ranked)


def ref_freqdist(spec: JobSpec) -> list[Pair]:
    words_with = collections.Counter(_word_counts(spec, int(spec.params["min_length"])).values())
    return sorted((f"{count:06d}", str(n)) for count, n in words_with.items())


REFERENCES: dict[str, Callable[[JobSpec], list[Pair]]] = {
    "topwords": ref_topwords,
    "freqdist": ref_freqdist,
    "wordcount": ref_wordcount,
    "grep": ref_grep,
    "logagg": ref_logagg,
    "join": ref_join,
}


def read_output(prefix: Path, output_format: str) -> list[Pair]:
    manifest = json.loads((prefix / "_SUCCESS").read_text())
    pairs: list[Pair] = []
    for part in manifest["parts"]:
        for line in Path(part["uri"]).read_text(encoding="utf-8").splitlines():
            if output_format == "jsonl":
                key, value = json.loads(line)
                pairs.append((as_text(key), as_text(value)))
            else:
                key, _, value = line.partition("\t")
                pairs.append((key, value))
    return sorted(pairs)


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_runs_locally_and_equals_references(example: str, tmp_path: Path) -> None:
    job = ROOT / "specs" / example / "job.yaml"
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "mrspec", "apply", str(job), "--local", "--output", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    spec = load_spec(job)
    got = read_output(out, spec.output.format)
    assert got, "the example produced no output"
    assert summary["records"]["output"] == len(got)
    assert got == plain_loop(spec)
    reference = REFERENCES.get(example)
    if reference is not None:
        assert got == reference(spec)
    if example == "topwords":  # one part, most frequent first: the order is the output's
        lines = Path(json.loads((out / "_SUCCESS").read_text())["parts"][0]["uri"]).read_text()
        counts = [int(line.split("\t")[1]) for line in lines.splitlines()]
        assert len(counts) == spec.params["n"] and counts == sorted(counts, reverse=True)
    if len(spec.steps) > 1:
        assert [s["step"] for s in summary["steps"]] == list(range(len(spec.steps)))
        parts = json.loads((out / "_SUCCESS").read_text())["parts"]
        assert sorted(p.name for p in out.iterdir()) == sorted(
            ["_SUCCESS", *(Path(p["uri"]).name for p in parts)])
