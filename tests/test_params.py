"""Job parameters: ``params:`` in the spec, ``--param`` overrides, ``mrspec.api.params()``
in the user's tests and inside tasks run by the local engine."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from mrspec import api
from mrspec.cli import cli, main
from mrspec.errors import SpecError
from mrspec.spec.loader import load_spec
from mrspec.spec.params import ParamError, with_overrides

JOB = """\
apiVersion: mrspec/v1
name: params-test
input:
  prefix: input/
map:
  entrypoint: job:mapper
  memory: 256
reduce:
  entrypoint: job:reducer
  partitions: 2
  memory: 256
output:
  prefix: out/
params:
  min_length: 2
  factor: 1.5
  upper: false
  prefix: "w:"
"""

# Every function reads the parameters inside the task, as a user's job would.
CODE = """
from mrspec import api

def mapper(line):
    p = api.params()
    for word in line.split():
        if len(word) >= p["min_length"]:
            yield (word.upper() if p["upper"] else word), 1

def reducer(word, counts):
    p = api.params()
    yield p["prefix"] + word, sum(counts) * p["factor"]
"""

LINES = ["a bb ccc bb", "dddd a ccc", "bb e ff"]


def make(tmp_path: Path, job: str = JOB) -> Path:
    (tmp_path / "input").mkdir(exist_ok=True)
    (tmp_path / "input" / "a.txt").write_text("\n".join(LINES) + "\n")
    (tmp_path / "job.py").write_text(textwrap.dedent(CODE))
    (tmp_path / "job.yaml").write_text(job)
    return tmp_path / "job.yaml"


def reference(min_length: int, factor: float, upper: bool, prefix: str) -> dict[str, float]:
    counts = collections.Counter(
        (w.upper() if upper else w) for line in LINES for w in line.split() if len(w) >= min_length
    )
    return {prefix + w: n * factor for w, n in counts.items()}


def test_params_load_typed_and_read_only(tmp_path: Path) -> None:
    spec = load_spec(make(tmp_path))
    assert dict(spec.params) == {"factor": 1.5, "min_length": 2, "prefix": "w:", "upper": False}
    assert type(spec.params["min_length"]) is int and type(spec.params["upper"]) is bool
    with pytest.raises(TypeError):
        spec.params["n"] = 1  # type: ignore[index]
    raw = (tmp_path / "job.yaml").read_bytes()
    assert spec.digest == hashlib.sha256(raw).hexdigest()  # no overrides: the file's digest


@pytest.mark.parametrize(
    ("params", "where", "needle"),
    [
        ("  2n: 1\n", 'params["2n"]', "letters, digits and underscores"),
        ("  my-name: 1\n", "params.my-name", "for example 'my_name'"),
        ("  n: [1, 2]\n", "params.n", "a string, a number or true/false, got a list"),
        ("  n: {a: 1}\n", "params.n", "got a mapping"),
        ("  n: .inf\n", "params.n", "not a finite number"),
    ],
)
def test_bad_params_are_located(tmp_path: Path, params: str, where: str, needle: str) -> None:
    job = make(tmp_path, JOB.split("params:")[0] + "params:\n" + params)
    with pytest.raises(SpecError) as caught:
        load_spec(job)
    problems = caught.value.problems
    assert [p.path for p in problems] == [where], problems
    assert needle in problems[0].message
    assert problems[0].line == JOB.split("params:")[0].count("\n") + 2


def test_overrides_are_typed_from_the_spec(tmp_path: Path) -> None:
    spec = load_spec(make(tmp_path))
    new = with_overrides(spec, ["min_length=3", "factor=2", "upper=TRUE", "prefix=a=b"])
    assert dict(new.params) == {"factor": 2.0, "min_length": 3, "prefix": "a=b", "upper": True}
    assert type(new.params["factor"]) is float
    assert new.digest != spec.digest
    again = with_overrides(spec, ["min_length=3", "factor=2", "upper=true", "prefix=a=b"])
    assert again.digest == new.digest  # the digest follows the values, not the spelling
    assert with_overrides(spec, ["min_length=4"]).digest != new.digest
    assert with_overrides(spec, []) is spec


@pytest.mark.parametrize(
    ("override", "message", "hint"),
    [
        ("min_lenght=3", "the spec has no parameter 'min_lenght'", "did you mean 'min_length'?"),
        ("min_length=3.5", "min_length is an integer in the spec (2)", "whole number"),
        ("factor=lots", "factor is a number in the spec (1.5)", "finite number"),
        ("factor=nan", "factor is a number in the spec (1.5)", "finite number"),
        ("upper=maybe", "upper is a boolean in the spec (false)", "upper=true"),
        ("justaname", "is not NAME=VALUE", "--param n=10"),
    ],
)
def test_bad_overrides_say_what_and_how(
    tmp_path: Path, override: str, message: str, hint: str
) -> None:
    spec = load_spec(make(tmp_path))
    with pytest.raises(ParamError) as caught:
        with_overrides(spec, [override])
    assert message in caught.value.message and hint in (caught.value.hint or "")


def test_user_tests_set_params_without_mrspec_running() -> None:
    assert dict(api.params()) == {}
    with api.using_params(n=3, name="x") as values:
        assert api.params() is values and dict(api.params()) == {"n": 3, "name": "x"}
        with pytest.raises(TypeError):
            api.params()["n"] = 4  # type: ignore[index]
    assert dict(api.params()) == {}
    previous = api.set_params({"n": 1})
    try:
        assert api.params()["n"] == 1
    finally:
        api.set_params(previous)
    assert dict(api.params()) == {}


def _output(folder: Path) -> dict[str, float]:
    pairs = {}
    for part in sorted(folder.glob("part-*")):
        for line in part.read_text().splitlines():
            key, value = line.split("\t")
            pairs[key] = json.loads(value)
    return pairs


def test_local_run_reads_the_params_and_the_overrides(tmp_path: Path) -> None:
    job = make(tmp_path)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    run = [sys.executable, "-m", "mrspec", "apply", str(job), "--local", "--workers", "2"]
    first = subprocess.run(run, capture_output=True, text=True, timeout=120, env=env)
    assert first.returncode == 0, first.stderr
    assert _output(tmp_path / "out") == reference(2, 1.5, False, "w:")
    manifest = json.loads((tmp_path / "out" / "_SUCCESS").read_text())
    assert manifest["spec_digest"] == load_spec(job).digest
    overrides = ["--param", "min_length=1", "--param", "upper=yes", "--param", "factor=2"]
    second = subprocess.run([*run, "--overwrite", *overrides], capture_output=True, text=True,
                            timeout=120, env=env)
    assert second.returncode == 0, second.stderr
    assert _output(tmp_path / "out") == reference(1, 2.0, True, "w:")
    manifest = json.loads((tmp_path / "out" / "_SUCCESS").read_text())
    overridden = with_overrides(load_spec(job), ["min_length=1", "upper=yes", "factor=2"])
    assert manifest["spec_digest"] == overridden.digest != load_spec(job).digest


def test_bad_override_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = make(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["apply", str(job), "--local", "--param", "nope=1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "the spec has no parameter 'nope'" in err and "its parameters are: factor" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_plan_shows_params_and_their_changes(tmp_path: Path) -> None:
    job = make(tmp_path)
    old = tmp_path / "old.yaml"
    old.write_text(JOB.replace("  upper: false\n", ""))
    result = CliRunner().invoke(
        cli, ["plan", str(job), "--json", "--param", "min_length=5", "--compare", str(old)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["params"] == {"factor": 1.5, "min_length": 5, "prefix": "w:", "upper": False}
    assert document["comparison"]["params_changed"] == ["min_length: 2 -> 5", "upper: (none) -> false"]
    text = CliRunner().invoke(cli, ["plan", str(job), "--compare", str(old)])
    assert text.exit_code == 0, text.output
    assert "upper: (none) -> false" in text.output
