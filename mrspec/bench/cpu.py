"""CPU seconds of the word-count rows: the local-engine bench for a machine shared with
other work, where wall times move by 3x between rounds.

    python -m mrspec.bench.cpu                          # 256 MiB of the Linux docs (or generated)
    python -m mrspec.bench.cpu --generate --vocab 1000  # generated text, small vocabulary

Each row runs in forked processes, one after the other, and is charged the CPU seconds
the kernel accounted to them (``os.wait4``'s rusage: user + system), so other tenants'
load changes the figures only through caches and memory bandwidth:

- ``counter``: the hand-written ``collections.Counter`` over every file in one process
  (what ``counter-2proc`` of ``python -m mrspec.bench`` spreads over two);
- ``mapper-only`` and ``mapper+Counter``: the floor of any engine that calls the
  per-record mapper: its pairs iterated (``deque(chain.from_iterable(map(mapper, f)),
  0)``), then the same with their keys counted in C (``Counter(map(itemgetter(0),
  ...))``), lines read as ``counter`` reads them, no checks, sort, shuffle or output;
- ``engine-record+combiner``, ``engine-record+builtin``, ``engine-task``: the engine's
  map tasks, then its reduce tasks, each in its own process as the local engine runs
  them (``mrspec.runtime`` with the local engine's settings: uncompressed shuffle, map
  output kept until the process exits), the rows of ``python -m mrspec.bench``.

With two workers or processes each, a row's wall time on a quiet machine is about half
its CPU seconds, so the CPU ratio to ``counter`` estimates the target's ratio to
``counter-2proc`` without the load's noise (it overstates it: ``counter-2proc`` also
pays for pickling and merging its processes' counts in the parent, serially). Every
row's counts are checked; ``--only`` picks rows.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

from mrspec.bench import (
    JOB_CODE,
    LINUX_DOC,
    bench_spec,
    build_corpus,
    counter_processes,
    read_counts,
)
from mrspec.units import format_size, parse_size

FLOORS = ("mapper-only", "mapper+Counter")
FORMS = {
    "engine-record+combiner": "record",
    "engine-record+builtin": "builtin",
    "engine-task": "task",
}


def forked_cpu(fn: Callable[[], Any]) -> float:
    """Run ``fn`` in a forked child; return the child's CPU seconds (user + system)."""
    pid = os.fork()
    if pid == 0:  # the child: run, then leave without the parent's exit handlers
        code = 0
        try:
            fn()
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"a benchmark process failed (wait status {status})")
    return usage.ru_utime + usage.ru_stime


def mapper_floor(
    files: list[Path], mapper: Callable[[str], Any], count: bool
) -> dict[str, int] | None:
    """The per-record mapper over every line, its pairs consumed in C: iterated only, or
    their keys counted (``count``: the word counts, returned)."""
    counts: collections.Counter[str] = collections.Counter()
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            pairs = chain.from_iterable(map(mapper, f))
            if count:
                counts.update(map(itemgetter(0), pairs))
            else:
                collections.deque(pairs, 0)
    return dict(counts) if count else None


def engine_cpu(spec: Any, work: Path) -> tuple[float, float]:
    """(map CPU s, reduce CPU s) of running ``spec``'s tasks one process per task."""
    from mrspec.local.engine import plan_shape
    from mrspec.plan import plan_job
    from mrspec.runtime import (
        TaskConfig,
        buffer,
        commit,
        prepare_output,
        run_map_task,
        run_reduce_task,
    )

    shutil.rmtree(work, ignore_errors=True)
    scratch = work / "scratch"
    scratch.mkdir(parents=True)
    prefix = str(work / "work")
    plan = plan_job(spec)
    config = dataclasses.replace(TaskConfig.from_spec(spec), compress_shuffle=False)
    prepare_output(config, overwrite=True)
    started = time.time()

    def map_task(task: Any) -> None:
        buffer.RETAIN = []  # as the local worker: the process exits right after its task
        run_map_task(config, task, work_prefix=prefix, scratch_dir=str(scratch), attempt=1)

    def reduce_task(task: Any) -> None:
        run_reduce_task(
            config, task.partition, None, work_prefix=prefix, scratch_dir=str(scratch),
            attempt=1, inputs=task.inputs,
        )  # fmt: skip

    maps = reduces = 0.0
    for task in plan.map_tasks:
        maps += forked_cpu(lambda task=task: map_task(task))  # type: ignore[misc]
    for part in plan.reduce_tasks:
        reduces += forked_cpu(lambda part=part: reduce_task(part))  # type: ignore[misc]
    commit(config, work_prefix=prefix, shape=plan_shape(plan), started=started)
    return maps, reduces


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mrspec.bench.cpu", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--size", default="256MiB", help="corpus size (default 256MiB)")
    parser.add_argument("--corpus", help=f"folder of text (default: {LINUX_DOC} if installed)")
    parser.add_argument("--generate", action="store_true", help="use generated text")
    parser.add_argument(
        "--vocab", type=int, default=50_000, help="generated vocabulary (default 50000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds; the least CPU of each row is shown"
    )
    parser.add_argument("--partitions", type=int, default=2, help="reduce partitions (default 2)")
    parser.add_argument(
        "--only", help="comma-separated rows besides counter (default: all): "
        + ", ".join((*FLOORS, *FORMS))
    )
    args = parser.parse_args(argv)
    source = Path(args.corpus) if args.corpus else None
    if source is None and not args.generate and Path(LINUX_DOC).is_dir():
        source = Path(LINUX_DOC)
    work = Path(tempfile.mkdtemp(prefix="mrspec-bench-cpu-"))
    try:
        files = build_corpus(parse_size(args.size), source, work / "corpus", vocab=args.vocab)
        total = sum(p.stat().st_size for p in files)
        code_dir = work / "code"
        code_dir.mkdir()
        (code_dir / "benchjob.py").write_text(JOB_CODE)
        sys.path.insert(0, str(code_dir))
        bin_size = -(-total // 2 // (16 * 1024**2)) * 16 * 1024**2  # two map tasks, as 2 workers
        print(
            f"corpus: {len(files)} files, {format_size(total)} from "
            f"{source or f'generated text (seed 42, {args.vocab} words)'}; map tasks of "
            f"{format_size(bin_size)}; load average {_load()}",
            flush=True,
        )
        _rounds(args, files, code_dir, work, bin_size)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _rounds(
    args: argparse.Namespace, files: list[Path], code_dir: Path, work: Path, bin_size: int
) -> None:
    least: dict[str, float] = {}
    phases: dict[str, tuple[float, float]] = {}
    only = set(args.only.split(",")) if args.only else {*FLOORS, *FORMS}
    ratios: dict[str, list[float]] = {name: [] for name in (*FLOORS, *FORMS) if name in only}
    reference = counter_processes(files, 1)
    mapper = importlib.import_module("benchjob").mapper
    if "mapper+Counter" in only and mapper_floor(files, mapper, True) != reference:
        raise SystemExit("mapper+Counter: the counts differ from the Counter's")
    for round_ in range(1, args.repeat + 1):
        base = forked_cpu(lambda: counter_processes(files, 1))
        least["counter"] = min(least.get("counter", base), base)
        print(f"round {round_}: counter {base:.2f} CPU s (load {_load()})", flush=True)
        for name in ratios:
            if name in FLOORS:
                count = name == "mapper+Counter"
                cpu = forked_cpu(lambda count=count: mapper_floor(files, mapper, count))  # type: ignore[misc]
                split = ""
            else:
                spec = bench_spec(
                    files, code_dir, work / "out", form=FORMS[name],
                    partitions=args.partitions, bin_size=bin_size,
                )  # fmt: skip
                maps, reduces = engine_cpu(spec, work / "run")
                if read_counts(work / "out" / FORMS[name]) != reference:
                    raise SystemExit(f"{name}: the counts differ from the Counter's")
                cpu = maps + reduces
                split = f" ({maps:.2f} map + {reduces:.2f} reduce)"
            ratios[name].append(cpu / base)
            if cpu < least.get(name, float("inf")):
                least[name] = cpu
                if split:
                    phases[name] = (maps, reduces)
            print(f"  {name:<24} {cpu:7.2f} CPU s{split}, {cpu / base:.2f}x counter", flush=True)
    print(f"\nleast of {args.repeat} round(s); load average at the end {_load()}")
    print(f"{'row':<24} {'CPU s':>7} {'x counter':>10} {'median of rounds':>17}")
    for name, cpu in least.items():
        paired = f"{statistics.median(ratios[name]):.2f}x" if name in ratios else "1.00x"
        detail = (
            f"  ({phases[name][0]:.2f} map + {phases[name][1]:.2f} reduce)"
            if name in phases
            else ""
        )
        print(f"{name:<24} {cpu:7.2f} {cpu / least['counter']:9.2f}x {paired:>17}{detail}")
    print("every row's word counts were identical")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
