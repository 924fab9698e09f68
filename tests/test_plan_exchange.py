"""The exchange's shape: fan-in from memory, merge levels and groups, against plain loops."""

from __future__ import annotations

import pytest

from mrspec.plan.exchange import MAX_FAN_IN, MIN_FAN_IN, fan_in, groups, merge_levels


def test_fan_in_grows_with_memory_within_its_bounds() -> None:
    figures = [fan_in(mb) for mb in (128, 256, 512, 1024, 1769, 4096, 10240)]
    assert figures == sorted(figures)
    assert figures[0] >= MIN_FAN_IN and figures[-1] == MAX_FAN_IN
    assert fan_in(512) == 512 // 4  # a quarter of 512 MB in 1 MiB runs


@pytest.mark.parametrize("inputs", [1, 2, 63, 64, 65, 4_000, 81_920, 100_000])
@pytest.mark.parametrize("fan", [2, 16, 64, 512])
def test_every_level_reads_at_most_fan_objects_and_the_last_leaves_at_most_fan(
    inputs: int, fan: int
) -> None:
    levels = merge_levels(inputs, fan)
    before = inputs
    for tasks in levels:
        cut = groups(before, tasks)
        assert [i for g in cut for i in g] == list(range(before))  # each object once, in order
        assert max(len(g) for g in cut) <= fan
        assert max(len(g) for g in cut) - min(len(g) for g in cut) <= 1
        before = tasks
    assert before <= fan
    if inputs <= fan:
        assert levels == ()


def test_a_fan_in_that_cannot_converge_is_refused() -> None:
    with pytest.raises(ValueError):
        merge_levels(10, 1)
    with pytest.raises(ValueError):
        groups(3, 4)
