"""The map buffer of the built-ins (``AggregatingBuffer``) against Python's own functions.

Its ``insert`` takes a word count's batch (every value the int 1) through a C-level fast
path and any other batch through per-value checks; the two must agree with each other
and with ``sum``/``min``/``max`` over each key's values in order, whatever mix of 1,
True, 1.0, other ints, huge ints and floats a batch holds, with or without spills. A pair
that is not a pair fails as it does in the list buffer, and a refused value hidden among
ones still fails naming its key, type and role.
"""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from mrspec.builtins import AGGREGATORS
from mrspec.runtime.aggregate import AggregatingBuffer, totals
from mrspec.runtime.buffer import MapBuffer
from mrspec.runtime.errors import TaskFailedError
from mrspec.runtime.shuffle import merge_blocks, read_segment_blocks
from mrspec.storage.local import LocalStorage

PYTHON = {"sum": sum, "min": min, "max": max}
# What a batch of 1s gets mixed with; floats are multiples of 1/8, exact in binary, so
# that a spill (which regroups the additions) cannot change a float total either.
KINDS = ["ones", "all_true", "one_true", "one_float", "one_two", "negative", "huge", "mixed"]


def batch(rng: random.Random, kind: str) -> list[tuple[str, Any]]:
    """A mapper's batch: mostly hot keys, valued 1 except for what ``kind`` adds."""
    keys = [f"hot{rng.randint(0, 3)}" if rng.random() < 0.5 else f"k{rng.randint(0, 300)}" for _ in range(rng.randint(1, 400))]
    pairs: list[tuple[str, Any]] = [(key, 1) for key in keys]
    at = rng.randrange(len(pairs))
    odd = {
        "all_true": None,
        "one_true": True,
        "one_float": 1.0,
        "one_two": 2,
        "negative": -rng.randint(1, 9),
        "huge": 2**70 + rng.randint(0, 9),
        "mixed": rng.randint(-64, 64) / 8,
        "ones": 1,
    }[kind]
    if kind == "all_true":
        return [(key, True) for key in keys]
    pairs[at] = (pairs[at][0], odd)
    return pairs


def batches(seed: int, count: int = 60) -> list[list[tuple[str, Any]]]:
    rng = random.Random(seed)
    return [batch(rng, rng.choice(KINDS)) for _ in range(count)]


def direct(name: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[Any]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    return {key: PYTHON[name](values) for key, values in groups.items()}


def new_buffer(name: str, tmp_path: Path, budget: int = 2**40) -> AggregatingBuffer:
    return AggregatingBuffer(
        AGGREGATORS[name],
        partitions=2,
        budget=budget,
        scratch_dir=str(tmp_path),
        counters=Counter(),
        task_name="map task 0",
    )


def typed(totals: dict[str, Any]) -> dict[str, tuple[type, Any]]:
    """Values with their types: 2 and 2.0 (and 1 and True) are equal, not the same."""
    return {key: (type(value), value) for key, value in totals.items()}


@pytest.mark.parametrize("name", ["sum", "min", "max"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_totals_equal_python_for_every_mix_of_values(tmp_path: Path, name: str, seed: int) -> None:
    buffer = new_buffer(name, tmp_path)
    every: list[tuple[str, Any]] = []
    for pairs in batches(seed):
        buffer.insert(pairs)
        buffer.added(len(pairs))
        every += pairs
    assert typed(buffer.groups) == typed(direct(name, every))


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_batch_alone_equals_python_sum(tmp_path: Path, kind: str) -> None:
    rng = random.Random(kind)
    buffer = new_buffer("sum", tmp_path)
    pairs = batch(rng, kind)
    buffer.insert(pairs)
    assert typed(buffer.groups) == typed(direct("sum", pairs))


def spilled_totals(buffer: AggregatingBuffer, tmp_path: Path, name: str) -> dict[str, Any]:
    """Finish the buffer into a shuffle object; read each partition back and fold it as
    the reduce task does."""
    path = tmp_path / "shuffle.body"
    with open(path, "wb") as out:
        index = buffer.finish(out, compress=False)
    buffer.remove_runs()
    found: dict[str, Any] = {}
    for offset, length, _ in index:
        run = read_segment_blocks(LocalStorage(), str(path), offset, length, 64 * 1024)
        found.update(totals(merge_blocks([run]), AGGREGATORS[name], "reduce task 0", [None, 0]))
    return found


@pytest.mark.parametrize("name", ["sum", "min", "max"])
def test_spilled_totals_equal_python(tmp_path: Path, name: str) -> None:
    buffer = new_buffer(name, tmp_path, budget=8 * 1024)  # a few dozen keys: spills often
    every: list[tuple[str, Any]] = []
    for pairs in batches(seed=7, count=120):
        buffer.insert(pairs)
        buffer.added(len(pairs))
        every += pairs
    assert buffer.counters["spilled_runs"] > 2
    assert typed(spilled_totals(buffer, tmp_path, name)) == typed(direct(name, every))


@pytest.mark.parametrize(
    "bad",
    [("a", 1, 2), ("a",), (), None, (["a"], 1)],
    ids=["three items", "one item", "empty", "None", "unhashable key"],
)
def test_a_pair_that_is_not_a_pair_fails_as_in_the_list_buffer(tmp_path: Path, bad: Any) -> None:
    pairs = [("x", 1)] * 50 + [bad] + [("y", 1)] * 50
    plain = MapBuffer(
        partitions=2,
        budget=2**40,
        scratch_dir=str(tmp_path),
        combiner=None,
        counters=Counter(),
        task_name="map task 0",
    )
    with pytest.raises((TypeError, ValueError)) as expected:
        plain.insert(pairs)
    with pytest.raises((TypeError, ValueError)) as got:
        new_buffer("sum", tmp_path).insert(pairs)
    assert type(got.value) is type(expected.value)


@pytest.mark.parametrize(
    ("name", "bad", "kind"),
    [
        ("sum", "1", "str"),
        ("sum", None, "NoneType"),
        ("sum", Decimal(1), "Decimal"),
        ("sum", Fraction(1), "Fraction"),
        ("sum", [1], "list"),
        ("min", float("nan"), "float"),
        ("max", "1", "str"),
    ],
)
def test_a_refused_value_among_ones_names_key_type_and_role(
    tmp_path: Path, name: str, bad: Any, kind: str
) -> None:
    pairs: list[tuple[str, Any]] = [("the", 1)] * 100 + [("odd key", bad)] + [("a", 1)] * 100
    with pytest.raises(TaskFailedError) as failed:
        new_buffer(name, tmp_path).insert(pairs)
    message = str(failed.value)
    assert f"mrspec.builtins:{name} (the combiner) got a value of type {kind}" in message
    assert "for key 'odd key'" in message


def test_sum_takes_nan_among_ones_as_python_does(tmp_path: Path) -> None:
    buffer = new_buffer("sum", tmp_path)
    buffer.insert([("a", 1), ("a", float("nan")), ("b", 1)])
    assert buffer.groups["b"] == 1 and buffer.groups["a"] != buffer.groups["a"]


def entry_batches(seed: int) -> list[list[tuple[str, list[Any]]]]:
    """Merged, key-sorted batches as the reduce task gets them: a key's entries (one per
    map task, or a hot key's pieces) next to each other, some cut across two batches;
    each batch all ints, or with a float (multiples of 1/8) or a bool among them."""
    rng = random.Random(seed)
    entries: list[tuple[str, list[Any]]] = []
    for i in range(400):
        for _ in range(rng.choice([1, 1, 2, 3, 5])):
            values = [rng.choice([1, rng.randint(-9, 9), 2**65]) for _ in range(rng.randint(1, 4))]
            entries.append((f"k{i:04d}", values))
    out, start = [], 0
    while start < len(entries):
        size = rng.randint(1, 60)
        piece = entries[start : start + size]
        if rng.random() < 0.3:  # a float or a bool in this batch
            key, values = piece[-1]
            piece[-1] = (key, [*values, rng.choice([True, rng.randint(-64, 64) / 8])])
        out.append(piece)
        start += size
    return out


@pytest.mark.parametrize("name", ["sum", "min", "max"])
@pytest.mark.parametrize("seed", [1, 2])
def test_reduce_totals_over_keys_in_several_entries_equal_python(name: str, seed: int) -> None:
    merged = entry_batches(seed)
    track: list[Any] = [None, 0]
    got = list(totals(iter(merged), AGGREGATORS[name], "reduce task 0", track, checked=True))
    groups: dict[str, list[Any]] = {}
    for piece in merged:
        for key, values in piece:
            groups.setdefault(key, []).extend(values)
    want = [(key, PYTHON[name](values)) for key, values in groups.items()]
    assert [(k, type(v), v) for k, v in got] == [(k, type(v), v) for k, v in want]
    assert track == [want[-1][0], len(want)]
