"""The exchange at scale: the real map, merge, reduce and commit code over an observed store.

    python -m mrspec.bench.scale                       # M in 1,000 / 10,000, R in 100 / 2,000
    python -m mrspec.bench.scale --maps 100000 --partitions 2000
    python -m mrspec.bench.scale --maps 4000 --partitions 64 --latency-ms 20 --slowdown 5500

    run = write M tiny input objects (mem://) -> plan (the real planner: merge levels from
          fan_in(reduce memory)) -> every map task -> every merge task, level by level ->
          the reducers (every partition, or every k-th with --reduce-sample) -> commit
          -> the output checked against a plain Counter over the inputs

Each task runs in this process, one at a time, over ``mrspec.storage.memory`` (``mem://``):
every request is counted for the task that made it (its read threads included: they run
in a copy of the task's context) and for the key prefix it went to (the two-hex-character
shard under the run's work prefix, ``input`` or ``output``). ``--latency-ms`` sleeps that
long in each request; ``--slowdown N`` answers a prefix's requests beyond N in one
second as throttled and retries them after a backoff, as botocore's adaptive mode would
(the count of throttled requests is printed). Peak memory per task is tracemalloc's peak
above the task's start, minus the bytes the task stored (its output objects live in the
store here, while Lambda streams them to S3); CPU is the process's CPU time in the task.

Per phase it prints: tasks, the largest task's GET / PUT / LIST / DELETE requests, the
largest peak memory, CPU seconds (max per task, and per record for merge and reduce),
and the busiest prefix's requests. A ``predicted`` row under each phase gives what
``mrspec plan`` predicts for the largest task of that phase (:func:`predictions`), and
the measured / predicted ratio of its GETs and of its PUT-class requests (PUT and
DeleteObjects, as S3 prices them).
"""

from __future__ import annotations

import argparse
import contextvars
import random
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrspec.plan.model import JobPlan
from mrspec.runtime.layout import failures_folder, is_shard_folder
from mrspec.runtime.manifest import Manifest
from mrspec.storage import ObjectInfo
from mrspec.storage.memory import MemoryStorage

ROOT = "mem://scale"
INPUT = f"{ROOT}/input/"
OUTPUT = f"{ROOT}/output"
WORK = f"{ROOT}/work"
VOCABULARY = 50_000
WORDS_PER_TASK = 12
CODE = """\
def mapper(line):
    for word in line.split():
        yield word, 1


def reducer(word, counts):
    yield word, sum(counts)


combiner = reducer
"""

_task: contextvars.ContextVar[str] = contextvars.ContextVar("scale_task", default="")


class Throttled(Exception):
    """A request beyond its prefix's budget in the current second (S3's 503 SlowDown)."""


@dataclass
class Meter:
    """Counts every request per task and per prefix; adds latency and throttling."""

    latency_s: float = 0.0
    slowdown: int = 0  # requests per prefix per second before throttling; 0: never
    per_task: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    per_prefix: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    throttled: Counter[str] = field(default_factory=Counter)
    _second: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __call__(self, op: str, uri: str) -> None:
        task, prefix = _task.get(), prefix_of(uri)
        phase = task.split("/", 1)[0]
        while self.slowdown and not self._admit(prefix):
            self.throttled[phase] += 1
            time.sleep(0.01)  # the client's backoff before its retry
        self.per_task[task][op] += 1
        self.per_prefix[phase][prefix] += 1
        if self.latency_s:
            time.sleep(self.latency_s)

    def _admit(self, prefix: str) -> bool:
        now = int(time.monotonic())
        second, count = self._second.get(prefix, (now, 0))
        if second != now:
            second, count = now, 0
        self._second[prefix] = (second, count + 1)
        return count < self.slowdown


def prefix_of(uri: str) -> str:
    rest = uri[len(ROOT) + 1 :] if uri.startswith(ROOT) else uri
    top, _, below = rest.partition("/")
    if top == "work":
        shard = below.split("/", 1)[0]
        return f"work/{shard}" if is_shard_folder(shard) else f"work/{shard or '-'}"
    return top


@dataclass
class TaskFigures:
    label: str
    requests: Counter[str]
    peak_bytes: int
    cpu_s: float
    records: int


@contextmanager
def measured(label: str, store: MemoryStorage, figures: dict[str, list[TaskFigures]]) -> Iterator[list[int]]:
    """Run a task under ``label`` (``phase/id``); record its figures. Yields a one-item
    list the caller sets to the task's record count."""
    token = _task.set(label)
    meter = store.observer
    if isinstance(meter, Meter):  # its per-task table grows here, not inside the task
        meter.per_task[label] = Counter()
    stored = store.stored_bytes
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    cpu = time.process_time()
    records = [0]
    try:
        yield records
    finally:
        cpu = time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1] - base - max(0, store.stored_bytes - stored)
        _task.reset(token)
    phase = label.split("/", 1)[0]
    figures[phase].append(TaskFigures(label, Counter(), max(0, peak), cpu, records[0]))


def write_inputs(store: MemoryStorage, maps: int, seed: int) -> list[ObjectInfo]:
    """``maps`` tiny text objects (one map task each); word ranks follow a Zipf-like law,
    so a few keys are hot in every task."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(VOCABULARY)]
    weights = [1 / (i + 1) for i in range(VOCABULARY)]
    objects = []
    for i in range(maps):
        words = rng.choices(vocabulary, weights, k=WORDS_PER_TASK)
        data = (" ".join(words[:6]) + "\n" + " ".join(words[6:]) + "\n").encode()
        uri = f"{INPUT}part-{i:06d}.txt"
        store.objects[uri] = data
        objects.append(ObjectInfo(uri, len(data)))
    return objects


def reference(store: MemoryStorage) -> Counter[str]:
    counts: Counter[str] = Counter()
    for uri, data in store.objects.items():
        if uri.startswith(INPUT):
            counts.update(data.decode().split())
    return counts


def output_counts(store: MemoryStorage) -> Counter[str]:
    counts: Counter[str] = Counter()
    for uri, data in store.objects.items():
        if uri.startswith(f"{OUTPUT}/part-"):
            for line in data.decode().splitlines():
                key, value = line.split("\t")
                counts[key] += int(value)
    return counts


def make_job(code_dir: Path, partitions: int, reduce_memory: int) -> Any:
    from mrspec.spec.model import CodeSpec, InputSpec, JobSpec, MapSpec, OutputSpec, ReduceSpec

    (code_dir / "scalejob.py").write_text(CODE)
    return JobSpec(
        name="scale",
        input=InputSpec(prefixes=(INPUT,), format="text", split_size=1024**2),
        map=MapSpec(entrypoint="scalejob:mapper", combiner="scalejob:combiner", bin_size=1),
        reduce=ReduceSpec(entrypoint="scalejob:reducer", partitions=partitions, memory_mb=reduce_memory),
        output=OutputSpec(prefix=OUTPUT),
        code=CodeSpec(path=code_dir),
        digest="0" * 64,
    )


def predictions(
    spec: Any, plan: JobPlan, manifest: Manifest, merged: int | None = None
) -> dict[str, dict[str, float]]:
    """``plan``'s per-phase predictions (``mrspec.cost.phases.predict_phases``, what ``plan
    --json`` prints under ``per_task``) for the largest task of each phase, with the
    shuffle and output ratios this run measured (as ``plan --sample`` would measure
    them) and the first merge level's output ratio (``merged``: the data bytes it
    wrote), so the requests are compared on the same bytes. ``held_kib`` is the predicted
    peak above the runtime's own memory, the figure the harness measures."""
    from mrspec.cost.assumptions import default_assumptions
    from mrspec.cost.phases import predict_phases
    from mrspec.cost.stack import review_model

    counters = manifest.counters
    read = max(1, counters.get("map_input_bytes", 1))
    shuffled = counters.get("shuffle_bytes", 0)
    measured = {"shuffle_ratio": shuffled / read, "output_ratio": counters.get("output_bytes", 0) / read}
    if merged is not None and shuffled:
        measured["merge_output_ratio"] = merged / shuffled
    a = default_assumptions().with_values(measured, "measured")
    out: dict[str, dict[str, float]] = {}
    for phase in predict_phases(spec, plan, review_model(spec, plan), a):
        figures = phase.per_task.to_json()
        figures["held_kib"] = (figures["peak_memory_mb"] - a["runtime_memory_mb"]) * 1024
        out[phase.name] = figures
    return out


def run(maps: int, partitions: int, *, reduce_memory: int, reduce_sample: int, meter: Meter, seed: int) -> dict[str, Any]:
    from mrspec.plan.planner import make_plan
    from mrspec.runtime import (
        RunShape,
        TaskConfig,
        commit,
        run_map_task,
        run_merge_task,
        run_reduce_task,
    )

    MemoryStorage.reset_shared()
    store = MemoryStorage.shared()
    objects = write_inputs(store, maps, seed)
    figures: dict[str, list[TaskFigures]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="mrspec-scale-") as tmp:
        spec = make_job(Path(tmp), partitions, reduce_memory)
        plan = make_plan(spec, objects)
        config = TaskConfig.from_spec(spec)  # compressed shuffle, as in Lambda
        scratch = str(Path(tmp) / "scratch")
        store.observer = meter
        tracemalloc.start()
        clock = time.perf_counter()
        try:
            for task in plan.map_tasks:
                with measured(f"map/{task.task_id}", store, figures) as n:
                    mapped = run_map_task(config, task, work_prefix=WORK, scratch_dir=scratch)
                    n[0] = mapped.counters.get("map_output_records", 0)
            merged: int | None = None
            for level in plan.merge_levels:
                for merge in level.tasks:
                    with measured(f"{level.phase}/{merge.task_id}", store, figures) as n:
                        result = run_merge_task(config, merge, work_prefix=WORK, scratch_dir=scratch)
                        n[0] = result.merge.records
                    if level.level == 1:
                        merged = (merged or 0) + result.merge.bytes
            sampled = [t for t in plan.reduce_tasks if t.partition % reduce_sample == 0]
            for t in plan.reduce_tasks:
                label = f"reduce/{t.partition}" if t in sampled else f"unsampled/{t.partition}"
                with measured(label, store, figures) as n:
                    reduced = run_reduce_task(config, t.partition, work_prefix=WORK, scratch_dir=scratch, inputs=t.inputs)
                    n[0] = reduced.counters.get("reduce_input_records", 0)
            check = reference(store)
            with measured("commit/0", store, figures) as n:
                # the commit handler first lists the failure records (none may be left)
                list(store.list(failures_folder(WORK)))
                manifest = commit(config, work_prefix=WORK, shape=RunShape.of_plan(plan), started=0.0, timings=None, extra=None)
                n[0] = len(manifest.parts)
        finally:
            tracemalloc.stop()
            store.observer = None
        seconds = time.perf_counter() - clock
        correct = output_counts(store) == check
    for measured_tasks in figures.values():  # attach each task's request counts
        for done in measured_tasks:
            done.requests = meter.per_task[done.label]
    return {"plan": plan, "spec": spec, "figures": figures, "seconds": seconds, "correct": correct,
            "manifest": manifest, "merged": merged}


def table(result: dict[str, Any], meter: Meter) -> list[str]:
    plan: JobPlan = result["plan"]
    predicted = predictions(result["spec"], plan, result["manifest"], result["merged"])
    levels = [len(m.tasks) for m in plan.merge_levels]
    lines = [
        f"M={len(plan.map_tasks):,} R={plan.partitions:,} fan-in F={plan.merge_levels[0].fan_in if plan.merge_levels else '-'} "
        f"merge levels {levels or 'none'}; {result['seconds']:.1f}s; output "
        + ("matches the reference" if result["correct"] else "DIFFERS FROM THE REFERENCE"),
        f"{'phase':<10}{'tasks':>8}{'GET':>7}{'PUT':>6}{'LIST':>6}{'DEL':>6}{'peak KiB':>10}"
        f"{'CPU s max':>11}{'µs/record':>11}{'busiest prefix':>16}{'throttled':>10}",
    ]
    for phase, tasks in result["figures"].items():
        if phase == "unsampled":
            continue
        top = Counter({op: max(t.requests[op] for t in tasks) for op in ("GET", "PUT", "LIST", "DELETE")})
        records = sum(t.records for t in tasks)
        cpu = sum(t.cpu_s for t in tasks)
        per_record = f"{cpu / records * 1e6:.2f}" if records and phase != "commit" else "-"
        busiest = max(meter.per_prefix[phase].values(), default=0)
        lines.append(
            f"{phase:<10}{len(tasks):>8,}{top['GET']:>7}{top['PUT']:>6}{top['LIST']:>6}{top['DELETE']:>6}"
            f"{max(t.peak_bytes for t in tasks) / 1024:>10.0f}{max(t.cpu_s for t in tasks):>11.4f}"
            f"{per_record:>11}{busiest:>16,}{meter.throttled[phase]:>10,}"
        )
        guess = predicted.get(phase)
        if guess:
            lines.append(
                f"{'  predicted':<18}{guess['get_requests']:>7.0f}{guess['put_requests']:>6.0f}"
                f"{guess['list_requests']:>6.0f}{'':>6}{guess['held_kib']:>10.0f}"
                f"{'':>11}{'':>11}   GET x{_ratio(top['GET'], guess['get_requests'])}"
                f" PUT+DEL x{_ratio(top['PUT'] + top['DELETE'], guess['put_requests'])}"
            )
    return lines


def _ratio(measured: float, predicted: float) -> str:
    """measured / predicted, as printed beside a prediction."""
    return f"{measured / predicted:.2f}" if predicted else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mrspec.bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--maps", type=int, action="append", help="map tasks M (repeatable; default 1,000 and 10,000)")
    parser.add_argument("--partitions", type=int, action="append", help="partitions R (repeatable; default 100 and 2,000)")
    parser.add_argument("--reduce-memory", type=int, default=1769, help="reduce (and merge) memory in MB; sets F")
    parser.add_argument("--reduce-sample", type=int, default=1, help="measure every k-th reducer (all still run)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument("--slowdown", type=int, default=0, help="requests per prefix per second before throttling")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for maps in args.maps or [1000, 10_000]:
        for partitions in args.partitions or [100, 2000]:
            meter = Meter(latency_s=args.latency_ms / 1000, slowdown=args.slowdown)
            result = run(
                maps, partitions, reduce_memory=args.reduce_memory,
                reduce_sample=args.reduce_sample, meter=meter, seed=args.seed,
            )
            print("\n".join(table(result, meter)), flush=True)
            print()
            if not result["correct"]:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
