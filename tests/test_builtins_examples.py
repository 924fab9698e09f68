"""The built-ins against the equivalent Python functions on every example job's input, and
on emulated AWS against the local engine.

Each example's own mapper runs, wrapped to turn its values into numbers (a number stays
as it is, anything else becomes its JSON length over 4: exact in binary, so no order of
additions can change a total). Its pairs then go once through ``mrspec.builtins`` as
combiner and reducer (the fast path) and once through plain Python ``sum``/``min``/``max``
functions (the engine's general path): the output parts must be byte-identical.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from aws_emulation import EmulatedAws
from aws_emulation import emulated_aws as emulated_aws  # the fixture
from local_jobs import run_in_process
from test_driver_lifecycle import assert_nothing_left
from test_emulated_jobs import (
    IN_BUCKET,
    OUT_BUCKET,
    emulated_options,
    emulated_spec,
    local_output,
    s3_output,
    upload_input,
)

from mrspec.aws.driver import run_on_aws
from mrspec.spec.loader import load_spec
from mrspec.spec.model import CodeSpec, JobSpec, MapSpec, OutputSpec, ReduceSpec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.parent.name for p in (ROOT / "specs").glob("*/job.yaml"))

WRAPPER = """
import json

from {module} import {function} as _inner


def _number(value):
    if type(value) in (int, float, bool):
        return value
    return len(json.dumps(value, sort_keys=True)) / 4


def mapper(record_or_records):  # the example's form: one record, or the task's records
    for key, value in _inner(record_or_records) or ():
        yield key, _number(value)


def py_sum(key, values):
    yield key, sum(values)


def py_min(key, values):
    yield key, min(values)


def py_max(key, values):
    yield key, max(values)
"""


def numeric_job(example: str, root: Path) -> JobSpec:
    """The example with its mapper wrapped (module ``numeric``) in a copy of its code."""
    spec = load_spec(ROOT / "specs" / example / "job.yaml")
    code = root / "code"
    shutil.copytree(
        spec.code.path, code, ignore=shutil.ignore_patterns("input", "out", "__pycache__")
    )
    module, _, function = spec.map.entrypoint.partition(":")
    (code / "numeric.py").write_text(WRAPPER.format(module=module, function=function))
    return dataclasses.replace(
        spec,
        later_steps=(),  # a job with steps: its first step's mapper
        map=MapSpec(entrypoint="numeric:mapper", form=spec.map.form, memory_mb=512),
        reduce=ReduceSpec(entrypoint="numeric:py_sum", partitions=2, memory_mb=512),
        code=CodeSpec(path=code),
    )


def variant(spec: JobSpec, combiner: str, reducer: str, out: Path) -> JobSpec:
    assert spec.reduce is not None
    return dataclasses.replace(
        spec,
        map=dataclasses.replace(spec.map, combiner=combiner),
        reduce=dataclasses.replace(spec.reduce, entrypoint=reducer),
        output=OutputSpec(prefix=str(out), format="jsonl"),
    )


def parts(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("part-*"))}


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("name", ["sum", "min", "max"])
def test_built_ins_equal_python_functions_on_every_example(
    tmp_path: Path, example: str, name: str
) -> None:
    spec = numeric_job(example, tmp_path)
    fast = variant(spec, f"mrspec.builtins:{name}", f"mrspec.builtins:{name}", tmp_path / "fast")
    slow = variant(spec, f"numeric:py_{name}", f"numeric:py_{name}", tmp_path / "slow")
    fast_manifest = run_in_process(fast, tmp_path / "w1")
    run_in_process(slow, tmp_path / "w2")
    got, want = parts(tmp_path / "fast"), parts(tmp_path / "slow")
    assert got == want
    records = [json.loads(line) for data in got.values() for line in data.splitlines()]
    assert records and fast_manifest["counters"]["output_records"] == len(records)


def test_the_wordcount_example_with_built_ins_on_the_local_engine(tmp_path: Path) -> None:
    """The real wordcount job, its Python combiner and reducer swapped for the built-in
    sum, through ``mrspec.local`` (worker processes): the same bytes as the original."""
    from mrspec.local.engine import LocalOptions, run_local

    spec = load_spec(ROOT / "specs" / "wordcount" / "job.yaml")
    builtin = variant(spec, "mrspec.builtins:sum", "mrspec.builtins:sum", tmp_path / "b")
    original = variant(spec, str(spec.map.combiner), spec.reduce.entrypoint, tmp_path / "p")  # type: ignore[union-attr]
    run_local(builtin, LocalOptions(workers=2))
    run_local(original, LocalOptions(workers=2))
    assert parts(tmp_path / "b") == parts(tmp_path / "p") != {}


WORDCOUNT_BUILTIN = "specs/wordcount/job.yaml with mrspec.builtins:sum"


@pytest.mark.slow
def test_built_ins_on_emulated_aws_match_the_local_engine_and_the_python_job(
    emulated_aws: EmulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The wordcount example with built-ins, through the real deployment zip's handlers
    in moto: the same parts as the local engine's, and as the original Python job's."""
    folder = tmp_path / "wordcount"
    shutil.copytree(ROOT / "specs" / "wordcount", folder, ignore=shutil.ignore_patterns("out"))
    text = (folder / "job.yaml").read_text()
    text = text.replace("combiner: wordcount:combiner", "combiner: mrspec.builtins:sum")
    text = text.replace("entrypoint: wordcount:reducer", "entrypoint: mrspec.builtins:sum")
    assert text.count("mrspec.builtins:sum") == 2, WORDCOUNT_BUILTIN
    (folder / "job.yaml").write_text(text)
    spec = emulated_spec(load_spec(folder / "job.yaml"))
    inputs = upload_input(emulated_aws, spec)
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    output = f"s3://{OUT_BUCKET}/{spec.name}/out/"

    rc = run_on_aws(spec, emulated_options(tmp_path, input_prefixes=inputs, output_prefix=output))

    assert rc == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "succeeded"
    cloud = s3_output(emulated_aws, output)
    local = local_output(spec, tmp_path / "local-out")
    python = local_output(load_spec(ROOT / "specs" / "wordcount" / "job.yaml"), tmp_path / "py-out")
    names = sorted(n for n in local if n.startswith("part-"))
    assert names and sorted(n for n in cloud if n.startswith("part-")) == names
    for name in names:
        assert cloud[name] == local[name] == python[name], name
    cloud_counters = json.loads(cloud["_SUCCESS"])["counters"]
    local_counters = json.loads(local["_SUCCESS"])["counters"]
    cloud_counters.pop("shuffle_bytes")
    local_counters.pop("shuffle_bytes")
    assert cloud_counters == local_counters
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})


NUMBERS_SPEC = """\
apiVersion: mrspec/v1
name: numbers
input: {{prefix: input/, format: text, split_size: 16KiB}}
map: {{entrypoint: numjob:mapper, memory: 256, bin_size: 32KiB{combiner}}}
reduce: {{entrypoint: mrspec.builtins:{reducer}, partitions: 3, memory: 256}}
output: {{prefix: out/, format: jsonl}}
"""


@pytest.mark.slow
@pytest.mark.parametrize(("combiner", "reducer"), [("sum", "sum"), (None, "max")])
def test_built_ins_on_generated_numbers_match_on_emulated_aws_and_locally(
    emulated_aws: EmulatedAws, tmp_path: Path, combiner: str | None, reducer: str
) -> None:
    """Hot keys, ints, huge ints and floats: the same parts from the Lambda handlers in
    moto as from the local engine, and the same totals as a direct computation."""
    from test_builtins_engine import CODE, PYTHON, write_numbers

    folder = tmp_path / "numbers"
    pairs = write_numbers(folder / "input", seed=7, files=3, lines=1500)
    (folder / "numjob.py").write_text(CODE)
    extra = f", combiner: mrspec.builtins:{combiner}" if combiner else ""
    (folder / "job.yaml").write_text(NUMBERS_SPEC.format(combiner=extra, reducer=reducer))
    spec = emulated_spec(load_spec(folder / "job.yaml"))
    inputs = upload_input(emulated_aws, spec)
    emulated_aws.client("s3").create_bucket(Bucket=OUT_BUCKET)
    output = f"s3://{OUT_BUCKET}/numbers/out/"

    rc = run_on_aws(spec, emulated_options(tmp_path, input_prefixes=inputs, output_prefix=output))

    assert rc == 0
    cloud = s3_output(emulated_aws, output)
    local = local_output(spec, tmp_path / "local-out")
    names = sorted(n for n in local if n.startswith("part-"))
    assert len(names) == 3 and [cloud[n] for n in names] == [local[n] for n in names]
    groups: dict[str, list[object]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    got = dict(json.loads(line) for n in names for line in local[n].splitlines())
    assert got == {k: PYTHON[reducer](v) for k, v in groups.items()}  # type: ignore[operator]
    assert_nothing_left(emulated_aws, {IN_BUCKET, OUT_BUCKET})
