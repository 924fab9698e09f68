"""``steps:`` in the spec: the model every layer reads, and validation located inside a step."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrspec.errors import SpecError
from mrspec.spec.loader import load_spec
from mrspec.spec.model import MapSpec, ReduceSpec, StepSpec

ROOT = Path(__file__).resolve().parents[1]

HEAD = """\
apiVersion: mrspec/v1
name: steps-test
input:
  prefix: input/
output:
  prefix: out/
"""

STEPS = """\
steps:
  - map: {entrypoint: job:words, combiner: job:total}
    reduce: {entrypoint: job:total, partitions: 4, memory: 1GiB}
  - map: {entrypoint: job:by_count, memory: 512, timeout: 2m}
  - map: {entrypoint: job:swap, form: task}
    reduce: {entrypoint: job:top, partitions: 1, timeout: 10m}
"""

CODE = """
def words(line):
    yield from ((w, 1) for w in line.split())

def total(key, values):
    yield key, sum(values)

def by_count(pair):
    yield pair

def swap(pairs):
    for key, value in pairs:
        yield value, key

def top(key, values):
    yield key, sorted(values)
"""


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "input").mkdir(exist_ok=True)
    (tmp_path / "job.py").write_text(CODE)
    (tmp_path / "job.yaml").write_text(HEAD + body)
    return tmp_path / "job.yaml"


def problems(tmp_path: Path, body: str) -> list[tuple[str, int, str]]:
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, body))
    return [(p.path, p.line, p.message) for p in caught.value.problems]


def line_of(body: str, needle: str) -> int:
    text = HEAD + body
    return text[: text.index(needle)].count("\n") + 1


def test_a_spec_without_steps_is_one_step() -> None:
    spec = load_spec(ROOT / "specs" / "wordcount" / "job.yaml")
    assert spec.later_steps == ()
    assert spec.steps == (StepSpec(spec.map, spec.reduce),)
    assert spec.last_step == spec.steps[0]
    assert spec.partitions == 4 and not spec.map_only


def test_steps_load_in_order_with_their_own_settings(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, STEPS))
    assert spec.steps == (
        StepSpec(MapSpec("job:words", combiner="job:total"),
                 ReduceSpec("job:total", partitions=4, memory_mb=1024)),
        StepSpec(MapSpec("job:by_count", memory_mb=512, timeout_s=120)),
        StepSpec(MapSpec("job:swap", form="task"),
                 ReduceSpec("job:top", partitions=1, timeout_s=600)),
    )
    assert (spec.map, spec.reduce) == (spec.steps[0].map, spec.steps[0].reduce)
    assert spec.partitions == 1 and not spec.map_only  # the output is the last step's
    map_only_last = load_spec(write(tmp_path, STEPS.rsplit("    reduce:", 1)[0]))
    assert map_only_last.map_only and map_only_last.partitions == 0


def test_both_map_and_steps_is_refused_at_each_section(tmp_path: Path) -> None:
    body = STEPS + "map:\n  entrypoint: job:words\nreduce:\n  entrypoint: job:total\n"
    found = problems(tmp_path, body)
    assert [(p, line) for p, line, _ in found] == [
        ("map", line_of(body, "map:\n")), ("reduce", line_of(body, "reduce:\n"))]
    assert all("either map/reduce or a steps list, not both" in m for _, _, m in found)


def test_neither_map_nor_steps(tmp_path: Path) -> None:
    assert [(p, m) for p, _, m in problems(tmp_path, "")] == [
        ("map", "missing required field 'map' (Map phase)")]


@pytest.mark.parametrize(
    ("old", "new", "where", "needle"),
    [
        ("timeout: 10m}", "timeout: 10m, memory: 100}", "steps[2].reduce.memory",
         "128"),
        ("job:by_count,", "job:nope,", "steps[1].map.entrypoint", "nope"),
        ("job:top,", "job:top, partition: 1,", "steps[2].reduce.partition",
         "did you mean 'partitions'?"),
        ("{entrypoint: job:by_count,", "{entrypoint: job:by_count, bin_size: 1MiB,",
         "steps[1].map.bin_size", "bin_size applies to the first step only"),
        ("job:by_count,", "job:by_count, combiner: job:total,", "steps[1].map.combiner",
         "a map-only step (no reduce section) has no shuffle"),
        ("job:swap, form: task}", "job:swap, form: task, timeout: 20m}",
         "steps[2].map.timeout", "15"),
    ],
)
def test_problems_are_located_inside_the_step(
    tmp_path: Path, old: str, new: str, where: str, needle: str
) -> None:
    body = STEPS.replace(old, new)
    assert body != STEPS
    found = problems(tmp_path, body)
    assert [p for p, _, _ in found] == [where], found
    assert found[0][1] == line_of(body, new)  # the line of the step's section
    assert needle in found[0][2]


def test_an_empty_or_wrong_steps_list(tmp_path: Path) -> None:
    assert [p for p, _, _ in problems(tmp_path, "steps: []\n")] == ["steps"]
    assert [p for p, _, m in problems(tmp_path, "steps:\n  - reduce: {entrypoint: job:total}\n")
            ] == ["steps[0].map"]


def test_a_steps_settings_are_named_where_the_spec_has_them(tmp_path: Path) -> None:
    # the YAML path a hint names (JobSpec.setting) must be the one the file has
    spec = load_spec(write(tmp_path, STEPS))
    assert spec.setting(2, "reduce.memory") == "steps[2].reduce.memory"
    assert spec.setting(0, "map.bin_size") == "steps[0].map.bin_size"
    # step 2's map tasks read step 1's parts (map-only: one per step 1 map task, one per
    # part of step 0), so fewer bytes each come from more partitions in step 0
    assert spec.smaller_map_input(2) == "raise steps[0].reduce.partitions"
    assert spec.smaller_map_input(1) == "raise steps[0].reduce.partitions"
    assert spec.smaller_map_input(0) == "lower steps[0].map.bin_size"
    # a steps: list of one step is a one-step job, but its settings are still in steps[0]
    one = load_spec(write(tmp_path, STEPS.split("  - map: {entrypoint: job:by_count")[0]))
    assert one.later_steps == () and one.setting(0, "map.memory") == "steps[0].map.memory"
    plain = load_spec(ROOT / "specs" / "wordcount" / "job.yaml")
    assert plain.setting(0, "map.memory") == "map.memory"
    assert plain.smaller_map_input(0) == "lower map.bin_size"
