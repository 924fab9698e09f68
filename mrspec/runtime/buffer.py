"""The map-side buffer: group by key in memory, combine, spill sorted runs, write the shuffle.

Pairs are grouped as ``{key: [values]}`` while the mapper runs (one dict lookup per
pair). The buffer's size is *estimated* (keys, values and container overheads, with a
sampled value size) and compared with the task's budget. When it is full the combiner
runs over the buffer (once per fill: a combine scans every key); when that does not bring
it under three quarters of the budget, the groups are sorted, partitioned and spilled to
a run file in the scratch folder. The combiner also runs once before the final write. The shuffle object is the merge of the runs (or the buffer itself
when nothing spilled).

Partitioning uses CRC-32 of the key's UTF-8 bytes, identical in every process and on
every machine (Python's ``hash`` of a ``str`` is salted per process).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from itertools import compress
from operator import itemgetter
from typing import Any, BinaryIO

from mrspec.runtime.errors import TaskFailedError, UserCodeError
from mrspec.runtime.loading import pairs_of
from mrspec.runtime.shuffle import Entry, merge_runs, read_segment_blocks, write_object
from mrspec.runtime.values import first_bad_group, first_unsupported, value_error
from mrspec.storage.local import LocalStorage

KEY_COST = 232  # str header, dict slot, list header and growth, per distinct key
VALUE_SLOT = 9  # list pointer plus growth, per value
RUN_WINDOW = 1024**2  # read window per spilled run during the final merge

_first = itemgetter(0)

# When a list, ``MapBuffer.finish`` appends the written entries to it instead of freeing
# them. A task process that exits right after its task (the local engine's) sets it:
# freeing a million keys with their lists and tuples one by one took about 0.8 s of a
# 128 MiB word-count map task, work that the process exit makes unnecessary. Lambda's
# warm processes run many tasks and leave it None.
RETAIN: list[Any] | None = None


def partition_of(key: str, partitions: int) -> int:
    """The reduce partition of a key: stable CRC-32 of its UTF-8 bytes."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions


class MapBuffer:
    def __init__(
        self,
        *,
        partitions: int,
        budget: int,
        scratch_dir: str,
        combiner: Callable[..., Any] | None,
        counters: dict[str, int],
        task_name: str,
        mapper: Callable[..., Any] | None = None,
    ) -> None:
        self.mapper = mapper  # named (with its file and line) when a value is unsupported
        self.groups: dict[str, Any] = self._empty()  # key -> [values] (or a total, see runtime.aggregate)
        self.partitions = partitions
        self.budget = budget
        self.scratch_dir = scratch_dir
        self.combiner = combiner
        self.counters = counters
        self.task_name = task_name
        self.values = 0  # values held in groups
        self.fresh = 0  # values added since the last combine
        self.key_len = 16.0  # sampled average key length
        self.value_size = 32.0  # sampled average value object size
        self.runs: list[tuple[str, list[list[int]]]] = []
        self.peak_estimate = 0

    def _empty(self) -> dict[str, Any]:
        return {}

    def insert(self, pairs: list[Any]) -> None:
        """Add ``(key, value)`` pairs to the groups (callers then account for them with
        ``added``). A pair that is not a 2-tuple, or an unhashable key, raises TypeError
        or ValueError."""
        # setdefault looks each key up once (get plus a store looked a new key up twice),
        # at the price of an empty list per pair: 17% fewer instructions for the insertion
        add = self.groups.setdefault
        for key, value in pairs:
            add(key, []).append(value)

    # -- accounting -------------------------------------------------------------------
    def estimate(self) -> int:
        keys = len(self.groups)
        return int(keys * (KEY_COST + self.key_len) + self.values * (VALUE_SLOT + self.value_size))

    def _sample(self) -> None:
        if not self.groups:
            return
        key = next(reversed(self.groups))
        values = self.groups[key]
        self.key_len = 0.8 * self.key_len + 0.2 * len(key) if isinstance(key, str) else 64.0
        value = values[-1]
        # small ints are shared objects; count them as a pointer only
        size = 0 if type(value) is int and -5 <= value <= 256 else sys.getsizeof(value)
        if isinstance(value, list | dict | tuple):
            size *= 4  # containers hold further objects
        self.value_size = max(0.8 * self.value_size + 0.2 * size, size / 2)

    def added(self, count: int) -> bool:
        """Account for ``count`` new values; combine or spill when needed.

        Returns True when ``groups`` was replaced (callers re-read it).
        """
        self.values += count
        self.fresh += count
        self.counters["map_output_records"] += count
        self._sample()
        estimate = self.estimate()
        self.peak_estimate = max(self.peak_estimate, estimate)
        if estimate <= self.budget:
            return False
        # Full. Combining scans every key, so it runs only now, and only when enough
        # values arrived since the last time; if it frees too little, spill instead.
        if self.combiner is not None and self.fresh > self.values // 4:
            self.combine()
            if self.estimate() <= self.budget * 3 // 4:
                return False
        self.spill()
        return True

    # -- combine ------------------------------------------------------------------------
    def combine(self) -> None:
        combiner = self.combiner
        assert combiner is not None
        groups = self.groups
        consumed = produced = total = 0
        for key, values in groups.items():
            n = len(values)
            if n < 2:
                total += n
                continue
            out = self._combine_one(combiner, key, values)
            consumed += n
            produced += len(out)
            total += len(out)
            groups[key] = out
        self.counters["combine_input_records"] += consumed
        self.counters["combine_output_records"] += produced
        self.values = total
        self.fresh = 0

    def _combine_one(self, combiner: Callable[..., Any], key: str, values: list[Any]) -> list[Any]:
        try:
            pairs = list(pairs_of(combiner(key, iter(values))))
        except Exception as exc:
            raise UserCodeError(
                f"{self.task_name}: the combiner raised on key {key!r}: {type(exc).__name__}: {exc}"
            ) from exc
        out: list[Any] = []
        for pair in pairs:
            if not (isinstance(pair, tuple) and len(pair) == 2 and pair[0] == key):
                raise TaskFailedError(
                    f"{self.task_name}: the combiner must yield (key, value) pairs with the "
                    f"key it was given ({key!r}); it yielded {pair!r}"
                )
            out.append(pair[1])
        return out

    def _combine_merged(self, key: str, values: list[Any]) -> list[Any]:
        assert self.combiner is not None
        self.counters["combine_input_records"] += len(values)
        out = self._combine_one(self.combiner, key, values)
        self.counters["combine_output_records"] += len(out)
        found = first_unsupported(out)
        if found is not None:
            raise value_error(self.task_name, key, found[0], self.combiner, "combiner")
        return out

    # -- sort, spill, write ---------------------------------------------------------------
    def _sorted_partitions(self) -> list[list[Entry]]:
        """The groups as sorted entries per partition, combined on the way.

        Hashing, partitioning, picking the keys that need the combiner and sorting are
        C-level passes (``map``, ``compress``, ``sorted``); Python runs per key only for
        keys with several values when there is a combiner. Each partition is sorted on
        its own, by key alone (keys are distinct): cheaper than one sort of all keys.
        """
        groups = self.groups
        keys = list(groups)
        pids = self._partition_ids(keys)
        values = list(groups.values())
        if self.combiner is not None:
            combined = list(map((1).__lt__, map(len, values)))  # the keys it will combine
            values = self._combine_all(keys, values)
        self._check_values(keys, values, combined if self.combiner is not None else None)
        entries = list(zip(keys, values, strict=True))
        if self.combiner is not None and not all(values):
            keep = list(map(bool, values))  # keys the combiner dropped reach no reducer
            entries, pids = list(compress(entries, keep)), list(compress(pids, keep))
        return self._split(entries, pids)

    def _partition_ids(self, keys: list[str]) -> list[int]:
        """The partition of each key, in C-level passes (``partition_of`` per key only
        for keys with lone surrogates). A key that is not a ``str`` fails the task."""
        count = self.partitions
        try:
            return list(map(count.__rmod__, map(zlib.crc32, map(str.encode, keys))))
        except (TypeError, AttributeError):
            self._check_keys()
            raise
        except UnicodeEncodeError:  # lone surrogates: encode them as they are
            return [partition_of(key, count) for key in keys]

    def _split(self, entries: list[Entry], pids: list[int]) -> list[list[Entry]]:
        """The entries sorted by key within each partition."""
        count = self.partitions
        if count == 1:
            return [sorted(entries, key=_first)]
        return [sorted(compress(entries, map(p.__eq__, pids)), key=_first) for p in range(count)]

    def _check_values(
        self, keys: list[str], values: list[list[Any]], combined: list[bool] | None
    ) -> None:
        """Every value about to enter the shuffle is of a supported type (one C-level pass
        over the types, after the combiner: fewer values; see ``runtime.values``)."""
        bad = first_bad_group(keys, values)
        if bad is None:
            return
        by_combiner = combined is not None and combined[keys.index(bad[0])]
        fn, role = (self.combiner, "combiner") if by_combiner else (self.mapper, "mapper")
        raise value_error(self.task_name, bad[0], bad[1], fn, role)

    def _combine_all(self, keys: list[str], values: list[list[Any]]) -> list[list[Any]]:
        combiner = self.combiner
        assert combiner is not None
        consumed = produced = 0
        for i in compress(range(len(keys)), map((1).__lt__, map(len, values))):
            consumed += len(values[i])
            values[i] = self._combine_one(combiner, keys[i], values[i])
            produced += len(values[i])
        self.counters["combine_input_records"] += consumed
        self.counters["combine_output_records"] += produced
        return values

    def _check_keys(self) -> None:
        for key in self.groups:
            if type(key) is not str:
                raise TaskFailedError(
                    f"{self.task_name}: the mapper yielded the key {key!r} of type "
                    f"{type(key).__name__}; keys must be str",
                    hint="convert keys with str() or json.dumps() in the mapper",
                )

    def spill(self) -> None:
        path = os.path.join(self.scratch_dir, f"run-{len(self.runs):04d}.spill")
        with open(path, "wb") as out:
            index = write_object(out, self._sorted_partitions())
        self.runs.append((path, index))
        self.counters["spilled_runs"] += 1
        self.groups = self._empty()
        self.values = self.fresh = 0

    def finish(self, out: BinaryIO, compress: bool = True) -> list[list[int]]:
        """Write the shuffle object (combining what is left); return its partition index.

        Spilled runs are always compressed (they share the task's scratch space); the
        shuffle object is compressed when ``compress`` is true."""
        if not self.runs:
            parts = self._sorted_partitions()
            self.groups = self._empty()
            index = write_object(out, parts, compress)
            if RETAIN is not None:
                RETAIN.append(parts)
                # Keep the cyclic collector off the retained entries: the task re-enables
                # it when it ends, and its first pass would walk every one of them (0.75 s
                # for 831K keys, measured).
                gc.freeze()
            return index
        if self.groups:
            self.spill()
        return write_object(
            out, (self._merged(p, self._run_combine()) for p in range(self.partitions)), compress
        )

    def _run_combine(self) -> Callable[[str, list[Any]], list[Any]] | None:
        """What folds a key's values from several spilled runs, if anything."""
        return self._combine_merged if self.combiner is not None else None

    def _merged(
        self, partition: int, combine: Callable[[str, list[Any]], list[Any]] | None
    ) -> Iterator[Entry]:
        local = LocalStorage()
        runs = [
            read_segment_blocks(local, path, index[partition][0], index[partition][1], RUN_WINDOW)
            for path, index in self.runs
            if index[partition][1] > 0
        ]
        if runs:
            yield from merge_runs(runs, combine)

    def remove_runs(self) -> None:
        for path, _ in self.runs:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.runs = []
