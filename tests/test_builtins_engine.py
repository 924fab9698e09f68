"""The built-ins in the engine's fast path give what the equivalent Python functions give.

Generated keyed numbers (hot keys, ints, huge ints, floats exact in binary so that no order
of additions can change a total) run through the map, merge and reduce tasks in this
process (the Lambda call pattern) with ``mrspec.builtins`` as combiner and/or reducer, and
again with plain Python ``sum``/``min``/``max`` functions as the job's own code: the parts
must be byte-identical, and equal a direct computation. Small buffer budgets and fan-ins
make the map tasks spill and the exchange merge, so every fold site runs.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from local_jobs import make_job, output_lines, run_in_process

from mrspec.errors import JobFailedError
from mrspec.runtime.errors import TaskFailedError
from mrspec.spec.model import JobSpec

CODE = """
import json


def mapper(line):
    key, _, value = line.partition("\\t")
    yield key, json.loads(value)


def py_sum(key, values):
    yield key, sum(values)


def py_min(key, values):
    yield key, min(values)


def py_max(key, values):
    yield key, max(values)
"""

PYTHON = {"sum": sum, "min": min, "max": max}


def write_numbers(
    folder: Path, seed: int, files: int = 4, lines: int = 3000
) -> list[tuple[str, Any]]:
    """Lines ``key<TAB>json value``: a few hot keys, many cold ones; returns the pairs."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pairs: list[tuple[str, Any]] = []
    for f in range(files):
        rows = []
        for _ in range(lines):
            key = f"hot{rng.randint(0, 2)}" if rng.random() < 0.4 else f"k{rng.randint(0, 4000)}"
            value = rng.choice(
                [1, rng.randint(-500, 500), rng.randint(-64, 64) / 8, 2**70 + rng.randint(0, 99)]
            )
            pairs.append((key, value))
            rows.append(f"{key}\t{json.dumps(value)}")
        (folder / f"n{f}.txt").write_text("\n".join(rows) + "\n")
    return pairs


def with_roles(spec: JobSpec, combiner: str | None, reducer: str) -> JobSpec:
    module = spec.map.entrypoint.partition(":")[0]

    def ref(name: str | None) -> str | None:
        if name is None or name.startswith("mrspec."):
            return name
        return f"{module}:{name}"

    assert spec.reduce is not None
    return dataclasses.replace(
        spec,
        map=dataclasses.replace(spec.map, combiner=ref(combiner)),
        reduce=dataclasses.replace(spec.reduce, entrypoint=str(ref(reducer))),
    )


def run_lines(spec: JobSpec, work: Path, **changes: Any) -> tuple[list[str], dict[str, Any]]:
    manifest = run_in_process(spec, work, **changes)
    return output_lines(spec.output.prefix), manifest


@pytest.mark.parametrize("name", ["sum", "min", "max"])
@pytest.mark.parametrize(
    ("roles", "spill_bytes", "fan"),
    [
        ("both", 0, None),
        ("both", 64 * 1024, 2),  # spills in every map task, two merge levels
        ("combiner", 64 * 1024, None),
        ("reducer", 0, 2),
    ],
)
def test_built_ins_equal_the_python_functions_and_a_direct_computation(
    tmp_path: Path, name: str, roles: str, spill_bytes: int, fan: int | None
) -> None:
    pairs = write_numbers(tmp_path / "input", seed=len(roles) + spill_bytes)
    base = make_job(tmp_path, CODE, partitions=3, split_size=16 * 1024, bin_size=32 * 1024)
    builtin = f"mrspec.builtins:{name}"
    python = f"py_{name}"
    fast = with_roles(
        base,
        builtin if roles in ("both", "combiner") else None,
        builtin if roles in ("both", "reducer") else python,
    )
    slow = with_roles(base, python if roles != "reducer" else None, python)
    out_fast = dataclasses.replace(
        fast, output=dataclasses.replace(fast.output, prefix=str(tmp_path / "fast"))
    )
    out_slow = dataclasses.replace(
        slow, output=dataclasses.replace(slow.output, prefix=str(tmp_path / "slow"))
    )
    got, manifest = run_lines(out_fast, tmp_path / "w1", fan=fan, spill_bytes=spill_bytes)
    want, _ = run_lines(out_slow, tmp_path / "w2", fan=fan, spill_bytes=spill_bytes)

    assert sorted(got) == sorted(want)
    groups: dict[str, list[Any]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    direct = {key: PYTHON[name](values) for key, values in groups.items()}
    assert dict(line.split("\t") for line in got) == {k: str(v) for k, v in direct.items()}
    counters = manifest["counters"]
    assert counters["map_output_records"] == len(pairs)
    if spill_bytes and roles != "reducer":
        assert counters["spilled_runs"] > 0  # the spill path ran
    if roles != "reducer":
        # the built-in folds every pair as it arrives (a Python combiner skips lone values)
        # (and spilled runs and merge inputs fold again: their values count once more)
        assert counters["combine_input_records"] >= len(pairs)
        if not spill_bytes and fan is None:
            assert counters["combine_input_records"] == len(pairs)
        assert 0 < counters["combine_output_records"] < len(pairs)


@pytest.mark.parametrize("roles", ["combiner", "reducer"])
@pytest.mark.parametrize(("bad", "kind"), [('"12"', "str"), ("null", "NoneType"), ("[1]", "list")])
def test_a_refused_value_fails_the_task_naming_key_value_and_role(
    tmp_path: Path, roles: str, bad: str, kind: str
) -> None:
    folder = tmp_path / "input"
    folder.mkdir()
    (folder / "a.txt").write_text("a\t1\nb\t2.5\nthe key\t" + bad + "\nc\t3\n")
    spec = with_roles(
        make_job(tmp_path, CODE, partitions=2),
        "mrspec.builtins:sum" if roles == "combiner" else None,
        "mrspec.builtins:sum",
    )
    with pytest.raises(TaskFailedError) as failed:
        run_in_process(spec, tmp_path / "w")
    message = str(failed.value)
    assert f"mrspec.builtins:sum (the {roles}) got a value of type {kind}" in message
    assert "for key 'the key'" in message
    assert "accepts only int, float and bool values" in message
    assert isinstance(failed.value, JobFailedError)


def test_min_refuses_nan_on_the_map_side(tmp_path: Path) -> None:
    folder = tmp_path / "input"
    folder.mkdir()
    (folder / "a.txt").write_text("a\t1\nb\tNaN\n")
    spec = with_roles(
        make_job(tmp_path, CODE, partitions=1), "mrspec.builtins:min", "mrspec.builtins:min"
    )
    with pytest.raises(TaskFailedError, match=r"type float \(nan\) for key 'b'.*other than NaN"):
        run_in_process(spec, tmp_path / "w")


@pytest.mark.parametrize("value", [1, 2.5])
@pytest.mark.parametrize("keys", [10_000, 50_000])
def test_the_totals_estimate_covers_their_measured_memory(
    tmp_path: Path, value: Any, keys: int
) -> None:
    """The spill threshold stays honest: the buffer's estimate of its totals is at least
    what tracemalloc measures them to hold (keys built as a mapper builds them)."""
    import tracemalloc
    from collections import Counter

    from mrspec.builtins import SUM
    from mrspec.runtime.aggregate import AggregatingBuffer

    words = " ".join(f"word{i:07d}" for i in range(keys)).split()  # fresh str objects
    buffer = AggregatingBuffer(
        SUM,
        partitions=2,
        budget=2**40,
        scratch_dir=str(tmp_path),
        counters=Counter(),
        task_name="map task 0",
    )
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for start in range(0, keys, 2560):
        pairs = [(w, value) for w in words[start : start + 2560]]
        buffer.insert(pairs)
        buffer.added(len(pairs))
        del pairs
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(buffer.groups) == keys
    # the keys themselves existed before (in ``words``): count their bytes as held too
    key_bytes = sum(map(sys.getsizeof, words))
    assert buffer.estimate() >= held + key_bytes
    assert buffer.estimate() < 2 * (held + key_bytes)  # and not wildly over


def write_mostly_ones(folder: Path, seed: int, files: int = 4, lines: int = 3000) -> list[tuple[str, Any]]:
    """A word count's values (``1``) with, now and then, a run of lines whose values are
    ``true``, ``1.0``, another int or a float: most map batches all ones (the fast path),
    some not. Returns the pairs."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pairs: list[tuple[str, Any]] = []
    for f in range(files):
        rows = []
        odd: list[Any] = []
        for i in range(lines):
            if i % 500 == 0:
                odd = rng.choice([[], [], [True], [1.0], [2, -3], [0.125, 1]])
            key = f"hot{rng.randint(0, 2)}" if rng.random() < 0.4 else f"k{rng.randint(0, 4000)}"
            value = rng.choice(odd) if odd and rng.random() < 0.05 else 1
            pairs.append((key, value))
            rows.append(f"{key}\t{json.dumps(value)}")
        (folder / f"n{f}.txt").write_text("\n".join(rows) + "\n")
    return pairs


@pytest.mark.parametrize("name", ["sum", "min", "max"])
@pytest.mark.parametrize(("spill_bytes", "fan"), [(0, None), (64 * 1024, 2)])
def test_built_ins_on_mostly_ones_equal_the_python_functions(
    tmp_path: Path, name: str, spill_bytes: int, fan: int | None
) -> None:
    pairs = write_mostly_ones(tmp_path / "input", seed=spill_bytes + 3)
    base = make_job(tmp_path, CODE, partitions=3, split_size=16 * 1024, bin_size=32 * 1024)
    fast = with_roles(base, f"mrspec.builtins:{name}", f"mrspec.builtins:{name}")
    slow = with_roles(base, f"py_{name}", f"py_{name}")
    got, _ = run_lines(
        dataclasses.replace(fast, output=dataclasses.replace(fast.output, prefix=str(tmp_path / "fast"))),
        tmp_path / "w1", fan=fan, spill_bytes=spill_bytes,
    )  # fmt: skip
    want, _ = run_lines(
        dataclasses.replace(slow, output=dataclasses.replace(slow.output, prefix=str(tmp_path / "slow"))),
        tmp_path / "w2", fan=fan, spill_bytes=spill_bytes,
    )  # fmt: skip
    assert sorted(got) == sorted(want)
    groups: dict[str, list[Any]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    direct = {key: json.dumps(PYTHON[name](values)) for key, values in groups.items()}
    assert dict(line.split("\t") for line in got) == direct
