"""Map, reduce and commit in one process (the way a Lambda handler calls them)."""

from __future__ import annotations

import importlib
import json
import tracemalloc
from pathlib import Path

import pytest
from local_jobs import (
    HOT_KEY,
    WORDCOUNT,
    make_job,
    output_lines,
    reference_counts,
    run_in_process,
    tsv_counts,
    write_words,
)

from mrspec.errors import JobFailedError
from mrspec.plan import plan_job
from mrspec.runtime import TaskConfig, TaskFailedError, run_map_task, run_reduce_task


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_words(root / "input", files=4, lines=1500, seed=11)
    return root / "input"


@pytest.mark.parametrize(
    ("combiner", "form", "spill_bytes"),
    [
        ("combiner", "record", 0),
        ("combiner", "record", 32 * 1024),  # many spills, combined again while merging
        (None, "record", 32 * 1024),
        (None, "task", 0),
        ("combiner", "task", 16 * 1024),
    ],
)
def test_word_count_equals_reference(
    tmp_path: Path, corpus: Path, combiner: str | None, form: str, spill_bytes: int
) -> None:
    spec = make_job(
        tmp_path,
        WORDCOUNT,
        inputs=str(corpus),
        combiner=combiner,
        form=form,
        mapper="task_mapper" if form == "task" else "mapper",
        split_size=20_000,
        bin_size=60_000,
    )
    manifest = run_in_process(spec, tmp_path, spill_bytes=spill_bytes)
    assert tsv_counts(spec.output.prefix) == reference_counts(corpus)
    counters = manifest["counters"]
    assert counters["map_input_records"] == sum(
        len(p.read_bytes().split(b"\n")) - p.read_bytes().endswith(b"\n") for p in corpus.iterdir()
    )
    assert counters["output_records"] == len(reference_counts(corpus))
    if spill_bytes:
        tasks = len(manifest["_map_results"])
        assert counters["spilled_runs"] > tasks if form == "record" else counters["spilled_runs"] >= tasks
    if combiner and form == "record":
        assert counters["combine_output_records"] < counters["combine_input_records"]
    assert not list((tmp_path / "work" / "shuffle").glob("*"))  # commit removed the shuffle


def test_hot_key_is_streamed_to_the_reducer(tmp_path: Path) -> None:
    code = HOT_KEY
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "n.txt").write_text("200000\n" * 6)
    spec = make_job(tmp_path, code, partitions=1, split_size=7, bin_size=14)
    config = TaskConfig.from_spec(spec)
    config = TaskConfig.from_dict({**config.to_dict(), "spill_bytes": 1024 * 1024})
    work = str(tmp_path / "work")
    maps = [
        run_map_task(config, task, work_prefix=work, scratch_dir=str(tmp_path), attempt=1)
        for task in plan_job(spec).map_tasks
    ]
    assert len(maps) == 3 and all(m.counters["spilled_runs"] >= 2 for m in maps)
    tracemalloc.start()
    try:
        run_reduce_task(config, 0, maps, work_prefix=work, scratch_dir=str(tmp_path), attempt=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n = 1_200_000
    assert output_lines_sorted(spec.output.prefix, maps) == [
        "cold\t[6,6]",
        f"hot\t[{n},{6 * (200000 * 199999 // 2)}]",
    ]
    # 1.2 million distinct ints held at once would need > 40 MB
    assert peak < 16 * 1024**2, peak


def output_lines_sorted(prefix: str, maps: object) -> list[str]:
    return sorted((Path(prefix) / "part-00000").read_text().splitlines())


def test_non_str_key_fails_the_task_clearly(tmp_path: Path) -> None:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("1\n2\n")
    spec = make_job(tmp_path, "def mapper(line):\n    yield int(line), 1\n\ndef reducer(k, v):\n    yield k, 1\n")
    with pytest.raises(TaskFailedError, match="key 1 of type int; keys must be str"):
        run_in_process(spec, tmp_path)


def test_map_only_keeps_input_order_and_none_emits_nothing(tmp_path: Path) -> None:
    code = """
    from mrspec.api import increment
    def mapper(line):
        increment("seen")
        if "keep" not in line:
            return None
        return [(line.split()[0], line)]
    """
    lines = [f"{i} {'keep' if i % 3 else 'drop'}" for i in range(3000)]
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("\n".join(lines))
    spec = make_job(tmp_path, code, reducer=None, split_size=5000, bin_size=10_000)
    manifest = run_in_process(spec, tmp_path)
    expected = [f"{line.split()[0]}\t{line}" for line in lines if "keep" in line]
    assert output_lines(spec.output.prefix) == expected
    assert len(manifest["parts"]) == len(manifest["_map_results"]) > 1
    assert manifest["user_counters"] == {"seen": 3000}


def test_bad_records_are_skipped_within_the_limit(tmp_path: Path) -> None:
    code = """
    def mapper(line):
        if line.startswith("boom"):
            raise ValueError("cannot parse " + line)
        yield "ok", 1
    def reducer(k, v):
        yield k, sum(v)
    """
    lines = ["fine", "boom 1", "fine", "fine", "boom 2"]
    data = "\n".join(lines) + "\n"
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text(data)
    spec = make_job(tmp_path, code, max_bad_records=2)
    manifest = run_in_process(spec, tmp_path)
    assert output_lines(spec.output.prefix) == ["ok\t3"]
    offsets = [data.index("boom 1"), data.index("boom 2")]
    assert [(b["offset"], b["uri"]) for b in manifest["bad_records"]] == [
        (o, str(tmp_path / "input" / "a.txt")) for o in offsets
    ]
    assert "ValueError: cannot parse boom 1" in manifest["bad_records"][0]["error"]
    spec = make_job(tmp_path, code, max_bad_records=1)
    with pytest.raises(TaskFailedError, match=rf"a\.txt at byte {offsets[1]}: ValueError"):
        run_in_process(spec, tmp_path)


def test_no_public_runtime_function_shares_a_submodule_name() -> None:
    # Importing a submodule binds it as a package attribute, which would silently replace a
    # public function of the same name (as ``mrspec.runtime.commit`` once did).
    import pkgutil

    import mrspec.runtime as runtime

    submodules = {m.name for m in pkgutil.iter_modules(runtime.__path__)}
    assert "committer" in submodules
    assert not submodules & set(runtime.__all__)
    for name in submodules:
        importlib.import_module(f"mrspec.runtime.{name}")
    assert all(callable(getattr(runtime, name)) for name in runtime.__all__ if name[0].islower())


COMBINER_JOB = """
def mapper(line):
    word, n = line.split()
    for i in range(int(n)):
        yield word, i

def reducer(word, values):
    yield word, sorted(values)
"""


@pytest.mark.parametrize(
    ("combiner", "expected"),
    [
        # the usual shape, one pair per key: combined in bulk
        ("def combiner(k, vs):\n    yield k, sum(vs)", {"a": [10], "b": [1], "c": [0]}),
        # a plain function returning a list, None for one key (which then reaches no reducer)
        (
            "def combiner(k, vs):\n    vs = list(vs)\n    return None if k == 'b' else [(k, max(vs))]",
            {"a": [4], "c": [0]},
        ),
        # several pairs for some keys, none for others: checked key by key
        (
            "def combiner(k, vs):\n    for v in vs:\n        if v % 2 == 0:\n            yield k, v",
            {"a": [0, 2, 4], "b": [0], "c": [0]},
        ),
    ],
)
def test_combiner_results_reach_the_reducer(tmp_path: Path, combiner: str, expected: dict[str, list[int]]) -> None:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("a 5\nb 2\nc 1\n")
    spec = make_job(tmp_path, COMBINER_JOB + combiner, combiner="combiner", partitions=1)
    manifest = run_in_process(spec, tmp_path)
    got = {k: json.loads(v) for k, _, v in (line.partition("\t") for line in output_lines(spec.output.prefix))}
    assert got == expected
    counters = manifest["counters"]
    # the combiner sees the keys with several values: a (5 values) and b (2)
    assert counters["combine_input_records"] == 7
    assert counters["combine_output_records"] == sum(len(v) for k, v in expected.items() if k != "c")


@pytest.mark.parametrize(
    ("combiner", "error"),
    [
        (
            "def combiner(k, vs):\n    if k == 'b':\n        raise KeyError('no ' + k)\n    yield k, sum(vs)",
            r"the combiner raised on key 'b': KeyError: 'no b'",
        ),
        (
            "def combiner(k, vs):\n    yield k.upper(), sum(vs)",
            r"the combiner must yield \(key, value\) pairs with the key it was given \('a'\); it yielded \('A', 10\)",
        ),
        (
            "def combiner(k, vs):\n    yield [k, sum(vs)]",
            r"with the key it was given \('a'\); it yielded \['a', 10\]",
        ),
    ],
)
def test_combiner_mistakes_name_the_key(tmp_path: Path, combiner: str, error: str) -> None:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("a 5\nb 2\nc 1\n")
    spec = make_job(tmp_path, COMBINER_JOB + combiner, combiner="combiner", partitions=1)
    with pytest.raises(JobFailedError, match=error):
        run_in_process(spec, tmp_path)


def test_reducer_may_return_a_list_or_none(tmp_path: Path) -> None:
    code = """
def mapper(line):
    yield line, 1

def reducer(key, values):
    return None if key == "skip" else [(key, sum(values)), (key + "!", 0)]
"""
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("x\nskip\nx\ny\n")
    spec = make_job(tmp_path, code, partitions=1)
    manifest = run_in_process(spec, tmp_path)
    assert output_lines(spec.output.prefix) == ["x\t2", "x!\t0", "y\t1", "y!\t0"]
    assert manifest["counters"]["reduce_input_groups"] == 3


@pytest.mark.parametrize("where", ["reducer", "combiner", "task_mapper"])
def test_a_falsy_return_other_than_none_fails_loudly(tmp_path: Path, where: str) -> None:
    # None means "no pairs"; 0, False or "" is a bug in the job and must not vanish silently
    code = """
def mapper(line):
    yield line, 1

def task_mapper(lines):
    return 0

def reducer(key, values):
    return 0 if key == "b" else [(key, sum(values))]

def combiner(key, values):
    return 0
"""
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("a\nb\nb\n")
    spec = make_job(
        tmp_path,
        code,
        partitions=1,
        combiner="combiner" if where == "combiner" else None,
        form="task" if where == "task_mapper" else "record",
        mapper="task_mapper" if where == "task_mapper" else "mapper",
    )
    with pytest.raises(JobFailedError, match="int"):
        run_in_process(spec, tmp_path)


@pytest.mark.parametrize("bad_at", [0, 1, 127, 128, 700, 999])  # chunk starts, ends, middles
def test_a_bad_record_inside_a_chunk_is_skipped_and_counters_count_once(
    tmp_path: Path, bad_at: int
) -> None:
    # The record form maps RECORD_CHUNK records at a time; a record that raises sends the
    # rest of the task record by record, after undoing the chunk's user counters.
    from mrspec.runtime import maptask

    assert maptask.RECORD_CHUNK == 128
    code = """
from mrspec.api import increment

def mapper(line):
    increment("calls")
    n = int(line)
    if n < 0:
        raise ValueError("negative")
    if n % 7 == 0:
        return None  # no pairs for this record
    increment("kept")
    return [("w" + str(n % 5), 1), ("all", n)]

def reducer(key, values):
    yield key, sum(values)
"""
    numbers = [-1 if i == bad_at else i for i in range(1000)]
    data = "".join(f"{n}\n" for n in numbers)
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "n.txt").write_text(data)
    spec = make_job(tmp_path, code, partitions=2, max_bad_records=1)
    manifest = run_in_process(spec, tmp_path)
    good = [n for n in numbers if n >= 0]
    kept = [n for n in good if n % 7]
    expected = {"all": sum(kept)}
    for n in kept:
        expected[f"w{n % 5}"] = expected.get(f"w{n % 5}", 0) + 1
    assert tsv_counts(spec.output.prefix) == expected
    # every call counted once: the failed chunk's counts were undone before its records ran again
    assert manifest["user_counters"] == {"calls": 1000, "kept": len(kept)}
    assert [b["offset"] for b in manifest["bad_records"]] == [data.index("-1")]
    assert manifest["counters"]["map_output_records"] == 2 * len(kept)


@pytest.mark.parametrize("bad_at", [None, 3, 300])
def test_map_only_chunks_keep_input_order_around_a_bad_record(tmp_path: Path, bad_at: int | None) -> None:
    code = """
def mapper(line):
    n = int(line)
    if n < 0:
        raise ValueError("negative")
    return [(str(n), n * n)] if n % 2 else [(str(n), 0), (str(n), 1)]
"""
    numbers = [-1 if i == bad_at else i for i in range(900)]
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "n.txt").write_text("".join(f"{n}\n" for n in numbers))
    spec = make_job(tmp_path, code, reducer=None, max_bad_records=1)
    manifest = run_in_process(spec, tmp_path)
    expected = [
        line
        for n in numbers
        if n >= 0
        for line in ([f"{n}\t{n * n}"] if n % 2 else [f"{n}\t0", f"{n}\t1"])
    ]
    assert output_lines(spec.output.prefix) == expected
    assert manifest["counters"].get("bad_records", 0) == (bad_at is not None)
