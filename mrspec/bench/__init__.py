"""Word count, side by side: the local engine against hand-written Python on the same files.

(``python -m mrspec.bench.scale`` is the other benchmark here: the exchange at 100,000
map tasks, see ``mrspec.bench.scale``.)

    python -m mrspec.bench                      # 256 MiB: Linux docs if installed, else generated
    python -m mrspec.bench --size 64MiB --corpus /usr/share/doc/linux-doc-6.1
    python -m mrspec.bench --generate --vocab 1000   # generated text, small vocabulary

Rows (all on the same corpus files, in one run):

- ``counter-2proc``: a hand-written ``collections.Counter`` over the files in 2 processes
  (``multiprocessing.Pool``), merged at the end: the target's yardstick.
- ``counter-1proc``: the same in one process.
- ``mapper-only``: the per-record mapper alone (iterating its pairs) in one process.
- ``plain-loop``: the same user functions (mapper, then reducer per key) in a plain
  single-process loop, values grouped in a dict of lists.
- ``engine-record+combiner``: ``mrspec`` local engine, per-record mapper with a combiner.
- ``engine-record+builtin``: the same per-record mapper with ``mrspec.builtins:sum`` as
  combiner and reducer (the engine's fast path, see ``mrspec.runtime.aggregate``).
- ``engine-task``: the local engine with a task-level mapper (in-mapper combining).

Every row's counts are checked against ``counter-1proc``'s. Two ratios are printed: each
row's best time over ``counter-2proc``'s best, and the median over the rounds of the
row's time over ``counter-2proc``'s in the same round (paired, so a burst of load on a
shared machine that slows one round does not decide the result).
docs/performance.md records the figures.
"""

from __future__ import annotations

import argparse
import collections
import functools
import gzip
import importlib
import itertools
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from mrspec.spec.model import DEFAULT_BIN_SIZE
from mrspec.units import format_size, parse_size

LINUX_DOC = "/usr/share/doc/linux-doc-6.1"
FILE_SIZE = 16 * 1024**2

JOB_CODE = """\
from collections import Counter


def mapper(line):
    for word in line.split():
        yield word, 1


def reducer(word, counts):
    yield word, sum(counts)


combiner = reducer


def task_mapper(lines):
    counts = Counter()
    for line in lines:
        counts.update(line.split())
    yield from counts.items()
"""


# -- corpus ---------------------------------------------------------------------------------
def _source_texts(folder: Path) -> Iterator[bytes]:
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name = path.name
        if name.endswith(".gz"):
            try:
                yield gzip.decompress(path.read_bytes())
            except (OSError, EOFError):
                continue
        elif name.endswith((".txt", ".rst", ".html", ".md")):
            yield path.read_bytes()


def _generated_texts(seed: int, words: int = 50_000) -> Iterator[bytes]:
    """Sentences over a Zipf-distributed vocabulary of ``words`` words (fewer distinct ones
    when short words collide), with punctuation and some markup."""
    rng = random.Random(seed)
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    vocab = [
        "".join(rng.choice(letters[: rng.randint(6, 26)]) for _ in range(rng.randint(1, 12)))
        for _ in range(words)
    ]
    cumulative = list(itertools.accumulate(1 / (i + 1) ** 1.05 for i in range(len(vocab))))
    while True:
        lines = []
        for _ in range(20_000):
            line = rng.choices(vocab, cum_weights=cumulative, k=rng.randint(0, 18))
            if line and rng.random() < 0.3:
                line[-1] += rng.choice(".,;:")
            if rng.random() < 0.05:
                line.insert(0, rng.choice(["*", "-", "::", "..", "#"]))
            lines.append(" ".join(line))
        yield ("\n".join(lines) + "\n").encode()


def build_corpus(
    size: int, source: Path | None, folder: Path, seed: int = 42, vocab: int = 50_000
) -> list[Path]:
    """Files of 16 MiB (cut at a line end) holding ``size`` bytes of text; the source is
    cycled if it is shorter. Equal files keep the engine's map tasks equal."""
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    pending = bytearray()
    written = 0

    def emit(data: bytes) -> None:
        path = folder / f"corpus-{len(files):04d}.txt"
        path.write_bytes(data)
        files.append(path)

    while written + len(pending) < size:
        texts = _source_texts(source) if source is not None else _generated_texts(seed, vocab)
        produced = False
        for text in texts:
            produced = True
            pending += text
            while len(pending) >= FILE_SIZE and written < size:
                cut = pending.rfind(b"\n", 0, min(FILE_SIZE, size - written)) + 1 or FILE_SIZE
                emit(bytes(pending[:cut]))
                written += cut
                del pending[:cut]
            if written + len(pending) >= size:
                break
        if not produced:
            raise SystemExit(f"no text files found under {source}")
    if written < size and pending:
        emit(bytes(pending[: size - written]))
    return files


# -- the contenders --------------------------------------------------------------------------
def _count_file(path: str) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            counts.update(line.split())
    return counts


def counter_processes(files: list[Path], processes: int) -> dict[str, int]:
    if processes == 1:
        total: collections.Counter[str] = collections.Counter()
        for path in files:
            total.update(_count_file(str(path)))
        return dict(total)
    with get_context("fork").Pool(processes) as pool:
        total = collections.Counter()
        for counts in pool.imap_unordered(_count_file, [str(p) for p in files]):
            total.update(counts)
    return dict(total)


def _lines(files: list[Path]) -> Iterator[str]:
    for path in files:
        with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
            for line in f:
                yield line.rstrip("\r\n") if line.endswith("\n") else line


def mapper_only(files: list[Path], mapper: Callable[[str], Any]) -> int:
    pairs = 0
    for line in _lines(files):
        for _ in mapper(line):
            pairs += 1
    return pairs


def plain_loop(files: list[Path], module: Any) -> dict[str, int]:
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for line in _lines(files):
        for key, value in module.mapper(line):
            groups[key].append(value)
    return {k: v for key in groups for k, v in module.reducer(key, groups[key])}


def engine(
    files: list[Path], code_dir: Path, out_dir: Path, *, form: str, workers: int, bin_size: int
) -> tuple[Path, dict[str, Any]]:
    """Run the job with ``run_local``; return its output folder and summary. Reading the
    output back (``read_counts``) is a check, done outside the timed run."""
    from mrspec.local.engine import LocalOptions, run_local

    spec = bench_spec(files, code_dir, out_dir, form=form, partitions=workers, bin_size=bin_size)
    summary = run_local(spec, LocalOptions(workers=workers, overwrite=True))
    return out_dir / form, summary


def bench_spec(
    files: list[Path], code_dir: Path, out_dir: Path, *, form: str, partitions: int, bin_size: int
) -> Any:
    """The word-count job of an engine row: ``form`` is "record" (Python combiner),
    "builtin" or "task"."""
    from mrspec.spec.model import CodeSpec, InputSpec, JobSpec, MapSpec, OutputSpec, ReduceSpec

    # form "builtin": the record mapper with mrspec.builtins:sum as combiner and reducer
    aggregate = {"task": None, "record": "benchjob:combiner", "builtin": "mrspec.builtins:sum"}
    spec = JobSpec(
        name=f"bench-{form}",
        input=InputSpec(prefixes=(str(files[0].parent),), format="text"),
        map=MapSpec(
            entrypoint="benchjob:task_mapper" if form == "task" else "benchjob:mapper",
            combiner=aggregate[form],
            form="task" if form == "task" else "record",
            bin_size=bin_size,
        ),
        reduce=ReduceSpec(
            entrypoint="mrspec.builtins:sum" if form == "builtin" else "benchjob:reducer",
            partitions=partitions,
        ),
        output=OutputSpec(prefix=str(out_dir / form)),
        code=CodeSpec(path=code_dir),
    )
    return spec


def read_counts(folder: Path) -> dict[str, int]:
    """The word counts of an engine run's tsv parts."""
    counts: dict[str, int] = {}
    for path in sorted(folder.glob("part-*")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition("\t")
                counts[key.replace("\\\\", "\\")] = int(value)
    return counts


# -- main -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mrspec.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--size", default="256MiB", help="corpus size (default 256MiB)")
    parser.add_argument(
        "--corpus", help=f"folder of text (default: {LINUX_DOC} if installed, else generated)"
    )
    parser.add_argument(
        "--generate", action="store_true", help="use generated text even if the Linux docs exist"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="engine workers and Counter processes"
    )
    parser.add_argument(
        "--bin-size",
        default="auto",
        help="engine map task size (default: the spec default, 128MiB, or less so that "
        "every worker gets a task)",
    )
    parser.add_argument(
        "--vocab",
        type=int,
        default=50_000,
        help="words in the generated text's vocabulary (default 50000)",
    )
    parser.add_argument("--only", help="comma-separated rows to run (default: all)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds (every row once per round); the best time of each row is shown",
    )
    parser.add_argument(
        "--work-dir", help="where to build the corpus (default: a temporary folder)"
    )
    args = parser.parse_args(argv)
    size = parse_size(args.size)
    source: Path | None = None
    if args.corpus:
        source = Path(args.corpus)
    elif not args.generate and Path(LINUX_DOC).is_dir():
        source = Path(LINUX_DOC)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="mrspec-bench-"))
    try:
        return _run(args, size, source, work)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, size: int, source: Path | None, work: Path) -> int:
    files = build_corpus(size, source, work / "corpus", vocab=args.vocab)
    total = sum(p.stat().st_size for p in files)
    code_dir = work / "code"
    code_dir.mkdir(exist_ok=True)
    (code_dir / "benchjob.py").write_text(JOB_CODE)
    sys.path.insert(0, str(code_dir))
    module = importlib.import_module("benchjob")
    print(
        f"corpus: {len(files)} files, {format_size(total)} from "
        f"{source or f'generated text (seed 42, {args.vocab} words)'}; "
        f"{os.cpu_count()} CPUs, workers={args.workers}",
        flush=True,
    )
    if args.bin_size == "auto":
        per_worker = -(-total // args.workers)
        bin_size = min(DEFAULT_BIN_SIZE, -(-per_worker // FILE_SIZE) * FILE_SIZE)
    else:
        bin_size = parse_size(args.bin_size)
    rows: dict[str, Callable[[], Any]] = {
        "counter-2proc": lambda: counter_processes(files, args.workers),
        "counter-1proc": lambda: counter_processes(files, 1),
        "mapper-only": lambda: mapper_only(files, module.mapper),
        "plain-loop": lambda: plain_loop(files, module),
    }
    for name, form in (("engine-record+combiner", "record"), ("engine-record+builtin", "builtin"),
                       ("engine-task", "task")):
        rows[name] = functools.partial(
            engine, files, code_dir, work / "out", form=form, workers=args.workers,
            bin_size=bin_size,
        )
    only = set(args.only.split(",")) if args.only else set(rows)
    print(f"engine map task size: {format_size(bin_size)}", flush=True)
    best: dict[str, float] = {}
    notes: dict[str, str] = {}
    ratios: dict[str, list[float]] = collections.defaultdict(list)
    reference: dict[str, int] | None = None
    for round_ in range(1, args.repeat + 1):
        print(f"round {round_}/{args.repeat}, load average {_load()}", flush=True)
        yardstick: float | None = None
        for name, run in rows.items():
            if name not in only:
                continue
            start = time.perf_counter()
            result = run()
            seconds = time.perf_counter() - start
            if name == "counter-2proc":
                yardstick = seconds
            ratio = ""
            if yardstick is not None:
                ratios[name].append(seconds / yardstick)
                ratio = f" {seconds / yardstick:6.2f}x counter-2proc of this round"
            print(f"  {name:<24} {seconds:8.2f} s{ratio}", flush=True)
            counts = read_counts(result[0]) if isinstance(result, tuple) else result
            if isinstance(counts, dict):
                reference = reference if reference is not None else counts
                if counts != reference:
                    raise SystemExit(f"{name}: the counts differ from the first row's")
            if seconds < best.get(name, float("inf")):
                best[name] = seconds
                if isinstance(result, tuple):
                    notes[name] = _engine_note(result[1])
    print(f"\nbest of {args.repeat} round(s); load average at the end {_load()}")
    _print_table(best, ratios, notes, total)
    print("every row's word counts were identical" if reference is not None else "")
    return 0


def _print_table(
    best: dict[str, float], ratios: dict[str, list[float]], notes: dict[str, str], total: int
) -> None:
    """Each row's best time, throughput, and ratios to the ``counter-2proc`` yardstick."""
    print(
        f"{'run':<24} {'seconds':>8} {'MB/s':>7} {'x counter-2proc':>16} {'median of rounds':>17}"
    )
    base = best.get("counter-2proc")
    for name, seconds in best.items():
        ratio = f"{seconds / base:.2f}x" if base else "-"
        paired = f"{statistics.median(ratios[name]):.2f}x" if ratios[name] else "-"
        print(f"{name:<24} {seconds:8.2f} {total / 1e6 / seconds:7.1f} {ratio:>16} {paired:>17}")
        if name in notes:
            print(f"{'':<24} {notes[name]}")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _engine_note(summary: dict[str, Any]) -> str:
    phases = summary["timings"]
    memory = summary["memory"]
    peak = max(m["peak_bytes_max"] for m in memory.values()) / 1024**2
    return (
        f"map {phases.get('map_seconds', 0):.2f}s, reduce {phases.get('reduce_seconds', 0):.2f}s, "
        f"{summary['tasks']['map']} map + {summary['tasks']['reduce']} reduce tasks, "
        f"peak task memory {peak:.0f} MB of {memory['map']['cap_mb']} MB"
    )
