"""Helpers for runtime and local-engine tests: write a job's code and input, build its spec."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

from mrspec.local.engine import plan_shape
from mrspec.plan import JobPlan, plan_job
from mrspec.plan.model import ReduceTask
from mrspec.plan.planner import plan_exchange, reduce_inputs
from mrspec.runtime import (
    TaskConfig,
    commit,
    prepare_output,
    run_map_task,
    run_merge_task,
    run_reduce_task,
)
from mrspec.spec.model import (
    CodeSpec,
    InputSpec,
    JobSpec,
    Limits,
    MapSpec,
    OutputSpec,
    ReduceSpec,
)

WORDCOUNT = """
def mapper(line):
    for word in line.split():
        yield word, 1

def reducer(word, counts):
    yield word, sum(counts)

combiner = reducer

def task_mapper(lines):
    counts = {}
    for line in lines:
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    yield from counts.items()
"""

# One key gets every value of a line's count (plus one "cold" key): the reducer must see
# them streamed, since a materialised list of them is what the memory tests guard against.
HOT_KEY = """
def mapper(line):
    for i in range(int(line)):
        yield "hot", i
    yield "cold", 1

def reducer(key, values):
    n = total = 0
    for v in values:
        n += 1
        total += v
    yield key, [n, total]
"""


def write_code(root: Path, code: str) -> str:
    """Write ``code`` as a uniquely named module under ``root/code``; return its name."""
    name = f"job_{uuid.uuid4().hex[:12]}"
    folder = root / "code"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(code))
    return name


def make_job(
    root: Path,
    code: str,
    *,
    inputs: str | list[str] | None = None,
    output: str | None = None,
    mapper: str = "mapper",
    reducer: str | None = "reducer",
    combiner: str | None = None,
    form: str = "record",
    fmt: str = "text",
    output_format: str = "tsv",
    partitions: int = 3,
    split_size: int = 64 * 1024,
    bin_size: int = 128 * 1024,
    map_memory: int = 512,
    reduce_memory: int = 512,
    max_attempts: int = 1,
    max_bad_records: int = 0,
    map_timeout: int = 180,
) -> JobSpec:
    module = write_code(root, code)
    prefixes = [inputs] if isinstance(inputs, str) else (inputs or [str(root / "input")])
    return JobSpec(
        name="test-job",
        input=InputSpec(prefixes=tuple(prefixes), format=fmt, split_size=split_size),  # type: ignore[arg-type]
        map=MapSpec(
            entrypoint=f"{module}:{mapper}",
            combiner=f"{module}:{combiner}" if combiner else None,
            form=form,  # type: ignore[arg-type]
            memory_mb=map_memory,
            timeout_s=map_timeout,
            bin_size=bin_size,
        ),
        reduce=(
            ReduceSpec(entrypoint=f"{module}:{reducer}", partitions=partitions, memory_mb=reduce_memory)
            if reducer
            else None
        ),
        output=OutputSpec(prefix=output or str(root / "out"), format=output_format),  # type: ignore[arg-type]
        code=CodeSpec(path=root / "code"),
        limits=Limits(max_attempts=max_attempts, max_bad_records=max_bad_records),
        digest="0" * 64,
    )


def with_fan_in(plan: JobPlan, fan: int, budget: int | None = None) -> JobPlan:
    """``plan`` with the merge levels a fan-in of ``fan`` gives (tests use tiny fan-ins to
    get several merge levels out of a few map tasks), and with merge tasks cut into
    partition ranges so each covers at most ``budget`` input bytes (None: the default)."""
    import dataclasses

    covered = [t.input_bytes for t in plan.map_tasks]
    extra = {} if budget is None else {"budget": budget}
    levels = plan_exchange(covered, fan, plan.partitions, **extra)
    reduces = tuple(
        ReduceTask(t.partition, reduce_inputs(levels, len(plan.map_tasks), t.partition))
        for t in plan.reduce_tasks
    )
    return dataclasses.replace(plan, merge_levels=levels, reduce_tasks=reduces)


def run_in_process(
    spec: JobSpec, work: Path, fan: int | None = None, budget: int | None = None,
    **config_changes: Any,
) -> dict[str, Any]:
    """Plan, map, merge, reduce and commit in this process (no engine): the Lambda call
    pattern. ``fan`` replaces the plan's fan-in, ``budget`` its merge task byte bound."""
    import dataclasses
    import time

    config = dataclasses.replace(TaskConfig.from_spec(spec), **config_changes)
    plan = plan_job(spec)
    if fan is not None:
        plan = with_fan_in(plan, fan, budget)
    prepare_output(config, overwrite=True)
    started = time.time()
    work_prefix = str(work / "work")
    scratch = work / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    maps = [
        run_map_task(config, task, work_prefix=work_prefix, scratch_dir=str(scratch))
        for task in plan.map_tasks
    ]
    for level in plan.merge_levels:
        for merge in level.tasks:
            run_merge_task(config, merge, work_prefix=work_prefix, scratch_dir=str(scratch))
    reduces = [
        run_reduce_task(
            config, t.partition, work_prefix=work_prefix, scratch_dir=str(scratch), inputs=t.inputs
        )
        for t in plan.reduce_tasks
    ]
    manifest = commit(
        config, work_prefix=work_prefix, shape=plan_shape(plan), started=started
    ).to_json()
    manifest["_map_results"] = maps
    manifest["_reduce_results"] = reduces
    manifest["_plan"] = plan
    return manifest


def output_lines(prefix: str | Path) -> list[str]:
    """Every line of the parts the ``_SUCCESS`` manifest lists (local output)."""
    manifest = json.loads((Path(prefix) / "_SUCCESS").read_text())
    lines: list[str] = []
    for part in manifest["parts"]:
        data = Path(part["uri"]).read_bytes()
        assert len(data) == part["size"]
        chunk = data.decode().splitlines()
        assert len(chunk) == part["records"]
        lines.extend(chunk)
    return lines


def tsv_counts(prefix: str | Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in output_lines(prefix):
        key, value = line.split("\t")
        assert key not in out, f"key {key!r} written twice"
        out[key] = int(value)
    return out


def write_words(folder: Path, files: int, lines: int, seed: int, words: int = 3000) -> None:
    """Seeded text with a Zipf-like word distribution."""
    import random

    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(words)]
    weights = [1 / (i + 1) for i in range(words)]
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        text = "\n".join(
            " ".join(rng.choices(vocab, weights, k=rng.randint(0, 15))) for _ in range(lines)
        )
        (folder / f"part{f:03d}.txt").write_text(text + ("\n" if f % 2 else ""))


def reference_counts(folder: Path) -> dict[str, int]:
    from collections import Counter

    counts: Counter[str] = Counter()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            counts.update(path.read_bytes().decode("utf-8", "replace").split())
    return dict(counts)
