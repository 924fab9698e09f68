"""The fast path of the built-in aggregators (``mrspec.builtins``) in the tasks.

    map task, built-in combiner:   pairs -> {key: running total} (AggregatingBuffer)
                                   -> sorted (key, [total]) entries, spilled and written
                                      like any map buffer's
    merge task / map-side merge:   equal keys of several runs -> [fold(values)] (combine_for)
    reduce task, built-in reducer: merged entries -> (key, fold of its values) (totals),
                                   streamed: no list of a key's values is ever built

A user's Python combiner makes the map buffer hold every value in a list until the buffer
fills (``runtime.buffer``); a built-in folds each value into its key's total as it
arrives, so memory is one number per key and no combine pass is needed. When a batch of
pairs all carry the ``int`` 1 (a word count) a ``sum`` counts the keys in C
(``Counter.update``). The values are checked a batch at a time in C (their types; ``NaN``
for ``min`` and ``max``): a refused value fails the task, not retried (the same value
would be refused again), naming the key, the value and the built-in's role.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from itertools import accumulate, chain, compress, islice, starmap
from operator import itemgetter, ne, not_, sub
from typing import Any, cast

from mrspec.builtins import SUM, Aggregator
from mrspec.runtime.buffer import MapBuffer
from mrspec.runtime.errors import TaskFailedError
from mrspec.runtime.shuffle import Entry

# Estimated bytes per key of a totals dict, beyond the key's characters: the str header
# (49), the dict's entry and index at its fullest, and a float or large int (24-32).
# Measured with tracemalloc on 10K to 1M fresh keys: 80 to 112 bytes (small-int totals,
# which are shared objects, the low end); the margin covers the dict's resize, which
# holds the old and the new table at once. A list buffer costs 232 + 41 per value.
AGG_KEY_COST = 144

_MISSING = object()
_VALUE: Callable[..., Any] = {}.get  # (key, value) -> value, for any hashable key
_first = itemgetter(0)
_second = itemgetter(1)


def refused(task: str, agg: Aggregator, role: str, key: Any, value: Any) -> TaskFailedError:
    """The error for a value ``agg`` refuses, where it ran as ``role``."""
    return TaskFailedError(
        f"{task}: {agg.ref} (the {role}) got a value of type {type(value).__name__} "
        f"({value!r:.60}) for key {key!r:.80}; it accepts only {agg.accepted}",
        hint=f"emit {agg.accepted} from the mapper (see docs/job-api.md, 'Built-in aggregators')",
    )


class AggregatingBuffer(MapBuffer):
    """A map buffer holding ``{key: total}`` for a built-in combiner.

    It spills and writes through ``MapBuffer`` (sorted ``(key, [total])`` entries per
    partition), and its size is estimated per key (``AGG_KEY_COST``), so its spill
    threshold is as honest as the list buffer's. ``combine_input_records`` counts every
    pair folded, ``combine_output_records`` every entry written.
    """

    def __init__(self, agg: Aggregator, **kwargs: Any) -> None:
        self.agg = agg
        super().__init__(combiner=None, **kwargs)
        self.pending = 0  # pairs folded since the last entries were written

    def _empty(self) -> dict[str, Any]:
        return Counter() if self.agg is SUM else {}

    def insert(self, pairs: list[Any]) -> None:
        """Fold ``(key, value)`` pairs into the totals; a pair that is not a 2-item
        sequence raises ValueError or TypeError, as in ``MapBuffer.insert``."""
        if self.agg is SUM:
            try:
                # Each pair's value in one C-level pass: an empty dict's ``get(key,
                # default)`` returns the default. A pair of more than two items (or none)
                # raises TypeError; one of a single item gives None, which is not 1.
                values = list(starmap(_VALUE, pairs))
            except TypeError:
                values = []
            # Every value equal to 1 (list.count: an identity test per value) and an int
            # total (so no float among them): a word count's batch, its keys counted in
            # C straight from the pairs. Insertion took 70 ns a pair against 98 when the
            # keys and values were listed and the pairs' lengths summed in separate
            # passes (word count batches of 1,000 distinct words).
            if values.count(1) == len(pairs) and type(sum(values)) is int:
                cast(Counter[str], self.groups).update(map(_first, pairs))
                return
        self._insert_checked(pairs)

    def _insert_checked(self, pairs: list[Any]) -> None:
        """``insert`` for any batch: the pairs' shape and every value checked first."""
        count = len(pairs)
        try:
            # lengths add up to 2 per pair, and none is short (IndexError): all pairs
            keys = list(map(_first, pairs))
            values = list(map(_second, pairs))
            if sum(map(len, pairs)) != 2 * count:
                raise ValueError("every pair must be (key, value)")
        except IndexError as exc:
            raise ValueError("every pair must be (key, value)") from exc
        totals = self.groups
        bad = self.agg.first_bad(values)
        if bad is not None:
            key = keys[next(i for i, v in enumerate(values) if v is bad[0])]
            raise refused(self.task_name, self.agg, "combiner", key, bad[0])
        if self.agg is SUM:
            get = totals.get
            for key, value in zip(keys, values, strict=True):
                totals[key] = get(key, 0) + value
            return
        _fold_extreme(totals, keys, values, self.agg.name == "min")

    def estimate(self) -> int:
        return int(len(self.groups) * (AGG_KEY_COST + self.key_len))

    def _sample(self) -> None:
        if self.groups:
            key = next(reversed(self.groups))
            self.key_len = 0.8 * self.key_len + 0.2 * len(key) if isinstance(key, str) else 64.0

    def added(self, count: int) -> bool:
        """Account for ``count`` folded pairs; spill when the totals are over budget
        (there is nothing to combine: they are combined). True when ``groups`` changed."""
        self.counters["map_output_records"] += count
        self.counters["combine_input_records"] += count
        self._sample()
        estimate = self.estimate()
        self.peak_estimate = max(self.peak_estimate, estimate)
        if estimate <= self.budget:
            return False
        self.spill()
        return True

    def _sorted_partitions(self) -> list[list[Entry]]:
        totals = self.groups
        keys = list(totals)
        pids = self._partition_ids(keys)
        # each total as a one-value list, in C: the shuffle's entries are (key, [values])
        entries = list(zip(keys, map(list, zip(totals.values())), strict=True))
        self.counters["combine_output_records"] += len(entries)
        return self._split(entries, pids)

    def _run_combine(self) -> Callable[[str, list[Any]], list[Any]] | None:
        return combine_for(self.agg, self.counters)


def _fold_extreme(totals: dict[str, Any], keys: list[str], values: list[Any], low: bool) -> None:
    """Keep each key's smallest (``low``) or largest value; of equal values the first
    seen, as ``min`` and ``max`` over the values in order would."""
    get = totals.get
    if low:
        for key, value in zip(keys, values, strict=True):
            current = get(key, _MISSING)
            if current is _MISSING or value < current:
                totals[key] = value
        return
    for key, value in zip(keys, values, strict=True):
        current = get(key, _MISSING)
        if current is _MISSING or value > current:
            totals[key] = value


def combine_for(
    agg: Aggregator, counters: Counter[str] | dict[str, int]
) -> Callable[[str, list[Any]], list[Any]]:
    """``combine(key, values) -> [fold]`` for merging runs whose values were checked when
    they entered the shuffle."""
    fold = agg.fold

    def combine(key: str, values: list[Any]) -> list[Any]:
        counters["combine_input_records"] += len(values)
        counters["combine_output_records"] += 1
        return [fold(values)]

    return combine


def _int_sums(folded: list[int], starts: list[bool], carried: int) -> list[int]:
    """Each key's total from the int totals of its consecutive entries (``starts``
    marks each key's first entry), plus ``carried`` for the first key: differences of
    the running sum taken at each key's last entry, all C-level passes. Exact for ints
    (not for floats, whose sums depend on the order of additions)."""
    running = list(accumulate(folded, initial=carried))
    ends = list(compress(running[1:], chain(islice(starts, 1, None), (True,))))
    return list(map(sub, ends, chain((0,), ends)))


def _checked(batches: Iterator[list[Entry]], agg: Aggregator, task: str) -> Iterator[list[Entry]]:
    """The merged batches, each one's values checked in one C-level pass (a job whose
    combiner is not the built-in sends the mapper's values as they are)."""
    for batch in batches:
        bad = agg.first_bad(list(chain.from_iterable(map(_second, batch))))
        if bad is not None:
            key = next(k for k, vs in batch if any(v is bad[0] for v in vs))
            raise refused(task, agg, "reducer", key, bad[0])
        yield batch


def totals(
    batches: Iterator[list[Entry]],
    agg: Aggregator,
    task: str,
    track: list[Any],
    checked: bool = False,
) -> Iterator[tuple[str, Any]]:
    """``(key, fold of its values)`` for each key of the merged, key-sorted batches.

    ``checked``: the values were checked by ``agg`` already (it was also the combiner, so
    every value entered the shuffle through ``AggregatingBuffer.insert``), else each
    batch is checked here."""
    if not checked:
        batches = _checked(batches, agg, task)
    # chain runs the per-key loop in C; the generator steps once per batch
    return chain.from_iterable(_total_batches(batches, agg, track))


def _total_batches(
    batches: Iterator[list[Entry]], agg: Aggregator, track: list[Any]
) -> Iterator[list[tuple[str, Any]]]:
    """The output pairs of each merged batch (see ``totals``).

    Per batch, in C-level passes: each entry's values folded (``map(sum, ...)``), the
    entries that start a key found by comparing each key with the one before, and the
    pairs of keys held by one entry zipped up; Python runs only for the further entries
    of a key (one per map task or merge input, or a hot key's pieces), and not even then
    for a ``sum`` of ints (``_int_sums``). A key's entries fold in their order, and a key
    cut across two batches is carried over. No list of a
    key's values is built. ``track`` is ``[key, keys so far]``, as ``shuffle.grouped``
    keeps it.
    """
    fold = agg.fold
    pending: list[tuple[str, Any]] = []  # the last key of the previous batch, unfinished
    for batch in batches:
        if not batch:
            continue
        keys = list(map(_first, batch))
        folded = list(map(fold, map(_second, batch)))
        starts = list(map(ne, keys, chain((None,), keys)))
        out_keys = list(compress(keys, starts))
        out = list(compress(folded, starts))
        carried: Any = 0  # the unfinished key's total from the previous batch
        if pending and pending[0][0] == out_keys[0]:
            carried = pending[0][1]
            out[0] = fold((carried, out[0]))
        elif pending:
            track[1] += 1
            yield pending
        if len(out_keys) < len(keys):  # keys held by several entries: fold the rest in
            if agg is SUM and type(sum(folded, carried)) is int:  # no float: any order
                out = _int_sums(folded, starts, carried)
            else:
                group = list(accumulate(starts))  # 1 + the index in out of each entry's key
                for i in compress(range(len(keys)), map(not_, starts)):
                    at = group[i] - 1
                    out[at] = fold((out[at], folded[i]))
        track[0] = out_keys[-1]
        track[1] += len(out_keys) - 1
        pairs = list(zip(out_keys, out, strict=True))
        pending = [pairs.pop()]
        yield pairs
    if pending:
        track[1] += 1
        yield pending
