"""Hostile and odd specs meet ``mrspec validate`` as a user runs it: located errors with
advice, exit code 2, no traceback, bounded memory (the subprocess runs under an
address-space cap, so an alias bomb that expanded would die instead of passing)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CAP = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({600 * 1024**2}, {600 * 1024**2}))
from mrspec.cli import main
main(sys.argv[1:])
"""

HEAD = """\
apiVersion: mrspec/v1
name: {name}
input:
  prefix: {inputs}
map:
  entrypoint: {mapper}
{extra}output:
  prefix: out/
"""

CODE = """
def mapper(line):
    yield line, 1

def two(line, extra):
    yield line, 1

def reducer(key):
    yield key, 1
"""


def validate(root: Path, text: str) -> subprocess.CompletedProcess[str]:
    (root / "job.py").write_text(textwrap.dedent(CODE))
    (root / "in").mkdir(exist_ok=True)
    (root / "job.yaml").write_text(text)
    proc = subprocess.run(
        [sys.executable, "-c", CAP, "validate", "job.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
    )
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 2, proc.stdout + proc.stderr
    return proc


def spec(
    name: str = "safe", inputs: str = "in/", mapper: str = "job:mapper", extra: str = ""
) -> str:
    return HEAD.format(name=name, inputs=inputs, mapper=mapper, extra=extra)


def test_an_alias_bomb_is_refused_at_its_line(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    text = "\n".join(lines) + "\n"
    assert len(text) < 1000
    proc = validate(tmp_path, text)
    assert "job.yaml:5:" in proc.stdout  # 10**5 values are reached at the fifth anchor
    assert "expands to more than 100,000 values" in proc.stdout


def test_deep_nesting_and_a_huge_file_are_refused(tmp_path: Path) -> None:
    proc = validate(tmp_path, spec(extra="tags: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert "job.yaml:7:" in proc.stdout and "nesting deeper than 64 levels" in proc.stdout
    proc = validate(tmp_path, spec() + "# " + "x" * (2 * 1024**2) + "\n")
    assert "job.yaml:1:1:" in proc.stdout and "a spec is at most 1,048,576" in proc.stdout


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            "arn:aws:s3:::logs-bucket/2026/",
            "is an ARN, not a prefix; did you mean 's3://logs-bucket/2026/'?",
        ),
        ("'s3://logs-bucket/2026/*.gz'", "is a glob; a prefix takes every object under it"),
        (
            "https://logs-bucket.s3.eu-west-1.amazonaws.com/2026/",
            "did you mean 's3://logs-bucket/2026/'?",
        ),
        (
            "[s3://logs-bucket/a/, s3://logs-bucket/a/b/]",
            "input prefix 's3://logs-bucket/a/b/' lies inside 's3://logs-bucket/a/'",
        ),
        ("[in/, in/]", "input prefix 'in/' is listed twice"),
    ],
)
def test_s3_near_misses_and_nested_inputs(tmp_path: Path, inputs: str, message: str) -> None:
    proc = validate(tmp_path, spec(inputs=inputs))
    assert "job.yaml:4:" in proc.stdout and "input.prefix" in proc.stdout
    assert message in proc.stdout


def test_look_alike_characters_are_named(tmp_path: Path) -> None:
    proc = validate(tmp_path, spec(name="w\u043erd", mapper="job:m\u0430pper"))
    assert "job.yaml:2:7: name: the job name 'w\u043erd' has the non-ASCII character" in proc.stdout
    assert "U+043E CYRILLIC SMALL LETTER O" in proc.stdout and "did you mean 'word'?" in proc.stdout
    assert (
        "job.yaml:6:15: map.entrypoint:" in proc.stdout
        and "did you mean 'job:mapper'?" in proc.stdout
    )


def test_quoted_numbers_are_accepted_or_refused_with_the_right_advice(tmp_path: Path) -> None:
    extra = 'reduce:\n  entrypoint: job:mapper\n  partitions: "4"\nlimits:\n  max_attempts: "2"\n'
    proc = validate(
        tmp_path, spec(extra=extra).replace("job:mapper\n", 'job:mapper\n  memory: "512"\n', 1)
    )
    assert "map.memory" not in proc.stdout  # a quoted number of MB is that number of MB
    assert (
        "reduce.partitions: expected an integer, got a string ('4'); write 4 without quotes"
        in proc.stdout
    )
    assert (
        "limits.max_attempts: expected an integer, got a string ('2'); write 2 without quotes"
        in proc.stdout
    )


def test_entrypoint_arity_is_checked_where_the_def_says_it(tmp_path: Path) -> None:
    proc = validate(tmp_path, spec(mapper="job:two", extra="reduce:\n  entrypoint: job:reducer\n"))
    assert "map.entrypoint: two() at job.py:5 takes 2 argument(s) (line, extra)" in proc.stdout
    assert "reduce.entrypoint: reducer() at job.py:8 takes 1 argument(s) (key)" in proc.stdout
    assert "def reducer(key, values)" in proc.stdout


def test_a_syntax_error_points_at_the_line_to_change(tmp_path: Path) -> None:
    proc = validate(tmp_path, spec(inputs='"in/'))
    assert (
        "job.yaml:4:11: <document>: YAML syntax: the quote opened here is never closed"
        in proc.stdout
    )
