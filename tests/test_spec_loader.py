"""Loading specs: defaults, resolution of paths, units, and the problems of broken files."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from mrspec.errors import SpecError
from mrspec.spec import model
from mrspec.spec.loader import load_spec, validate_file

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """\
apiVersion: mrspec/v1
name: tiny
input:
  prefix: data/
map:
  entrypoint: job:mapper
output:
  prefix: out/
"""

CODE = "def mapper(line):\n    yield line, 1\n\n\ndef reducer(key, values):\n    yield key, sum(values)\n"


def write_job(tmp_path: Path, text: str, code: str = CODE) -> Path:
    (tmp_path / "job.py").write_text(code)
    spec = tmp_path / "job.yaml"
    spec.write_text(textwrap.dedent(text))
    return spec


def test_minimal_spec_gets_every_default(tmp_path: Path) -> None:
    spec_file = write_job(tmp_path, MINIMAL)
    spec = load_spec(spec_file)
    assert spec.reduce is None and spec.map_only
    assert spec.input.prefixes == (str(tmp_path.resolve() / "data"),)
    assert spec.output.prefix == str(tmp_path.resolve() / "out")
    assert spec.code.path == tmp_path.resolve()
    assert spec.input.format == model.DEFAULT_INPUT_FORMAT
    assert spec.input.split_size == model.DEFAULT_SPLIT_SIZE
    assert spec.map.bin_size == model.DEFAULT_BIN_SIZE
    assert spec.map.memory_mb == model.DEFAULT_MEMORY_MB
    assert spec.map.timeout_s == model.DEFAULT_MAP_TIMEOUT_S
    assert spec.map.form == "record"
    assert spec.limits == model.Limits()
    assert spec.aws == model.AwsSpec()
    assert spec.source == spec_file.resolve()
    assert spec.digest == hashlib.sha256(spec_file.read_bytes()).hexdigest()


def test_units_are_converted_and_paths_resolved(tmp_path: Path) -> None:
    (tmp_path / "req.txt").write_text("")
    spec_file = write_job(
        tmp_path,
        MINIMAL
        + textwrap.dedent(
            """\
            reduce:
              entrypoint: job:reducer
              partitions: 3
              memory: 2GiB
              timeout: 5m
            code:
              path: .
              requirements: req.txt
              exclude: ["*.csv"]
            aws:
              tags: {team: data}
              log_retention_days: 14
            """
        ),
    )
    spec = load_spec(spec_file)
    assert spec.reduce == model.ReduceSpec("job:reducer", 3, 2048, 300)
    assert spec.code.requirements == tmp_path.resolve() / "req.txt"
    assert spec.code.exclude == ("*.csv",)
    assert dict(spec.aws.tags) == {"team": "data"} and spec.aws.log_retention_days == 14


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    spec_file = write_job(
        tmp_path,
        """\
        apiVersion: mrspec/v1
        name: Bad_Name
        input:
          prefix: s3://Bad_Bucket/in
        map:
          entrypoint: job:nope
          memroy: 512
        output:
          prefix: out/
        """,
    )
    with pytest.raises(SpecError) as info:
        load_spec(spec_file)
    got = [(p.line, p.path) for p in info.value.problems]
    assert got == [(2, "name"), (4, "input.prefix"), (6, "map.entrypoint"), (7, "map.memroy")]
    assert "did you mean 'memory'?" in info.value.problems[3].message


def test_wordcount_example_loads() -> None:
    spec, problems = validate_file(REPO / "specs" / "wordcount" / "job.yaml")
    assert problems == [] and spec is not None
    assert spec.map.combiner == "wordcount:combiner"
