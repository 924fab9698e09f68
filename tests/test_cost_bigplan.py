"""``plan`` at issue 18's scale: 10 TiB (81,920 objects of 128 MiB, listed by a fake
storage), word count with a combiner, 2,000 partitions. With the merge phases every
phase fits its timeout and memory; the same job without them (every reducer reading
every map output) is refused. Figures from ``python -m mrspec.cost.bigplan``."""

from __future__ import annotations

import json

import pytest

from mrspec.cost.bigplan import main
from mrspec.plan import exchange

# Word count with its combiner measured by `mrspec plan --sample 32MiB` on the bench's
# generated corpus (docs/plan.md, "A 10 TiB plan").
MEASURED = ["map_cpu_s_per_mib=0.0848", "reduce_cpu_s_per_mib=0.175",
            "shuffle_ratio=0.0118", "output_ratio=0.0138"]


def big_plan(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, object]]:
    args = [a for m in MEASURED for a in ("--assume", m)]
    code = main([*args, "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_ten_tib_fits_every_limit_with_merge_phases(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = big_plan(capsys)
    assert code == 0
    phases = {p["name"]: p for p in doc["phases"]}  # type: ignore[attr-defined]
    fan = exchange.fan_in(1769)
    levels = exchange.merge_levels(81_920, fan)
    assert list(phases) == ["map", *[f"merge-{i + 1}" for i in range(len(levels))],
                            "reduce", "commit"]
    # each group of at most F map outputs covers up to 441 x 128 MiB of input: cut into
    # partition ranges of at most MERGE_TASK_BYTES of it, one merge task each
    ranges = exchange.range_pieces(-(-81_920 // levels[0]) * 128 * 1024**2, 2_000, 2_000)
    assert ranges == 28
    assert [phases["merge-1"]["tasks"]] == [levels[0] * ranges] == [186 * 28]
    for p in phases.values():
        assert p["per_task"]["seconds"] < p["timeout_s"], p["name"]
        assert p["per_task"]["peak_memory_mb"] < p["memory_mb"], p["name"]
    # A reducer reads at most F objects: one result and its segment windows of each.
    assert phases["reduce"]["per_task"]["get_requests"] <= 2 * fan + 10 * levels[-1]
    assert all(c["ok"] for c in doc["limits"])  # type: ignore[attr-defined]
    assert 10 < doc["cost"]["total_usd"] < 100  # type: ignore[index]


@pytest.mark.slow
def test_ten_tib_without_merge_phases_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = big_plan(capsys, "--no-merge")
    assert code == 1
    failed = {c["name"] for c in doc["limits"] if not c["ok"]}  # type: ignore[attr-defined]
    assert {"reduce task time", "reduce task memory", "commit task memory"} <= failed
    reduce = next(p for p in doc["phases"] if p["name"] == "reduce")  # type: ignore[attr-defined]
    assert reduce["per_task"]["get_requests"] == 2 * 81_920  # every result and segment


@pytest.mark.slow
def test_ten_tib_markdown_fits_a_pull_request_comment(capsys: pytest.CaptureFixture[str]) -> None:
    args = [a for m in MEASURED for a in ("--assume", m)]
    assert main([*args, "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert len(md) < 65_536  # GitHub's limit for one comment body
    assert "| merge-1 | 5,208 |" in md and "AWS limits: 20 of 20 checks pass." in md
