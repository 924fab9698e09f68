"""Replacing an output never loses it: through ``mrspec apply --local`` as a user runs it.

The reference is the old output's bytes, read before the run: a failed ``--overwrite``
run must leave them (and their ``_SUCCESS``) exactly as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mrspec.runtime import replace

JOB = """\
apiVersion: mrspec/v1
name: safety-out
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
  prefix: {output}
limits:
  max_attempts: 1
"""

CODE = """
def mapper(line):
    if line.startswith("bad"):
        raise RuntimeError("no")
    for word in line.split():
        yield word, 1

def reducer(word, counts):
    total = sum(counts)
    if word == "boom":
        raise RuntimeError("the reducer fails after the parts of other partitions exist")
    yield word, total
"""


def make(root: Path, lines: list[str], output: str = "out/") -> Path:
    (root / "input").mkdir(exist_ok=True)
    (root / "input" / "a.txt").write_text("\n".join(lines) + "\n")
    (root / "job.py").write_text(textwrap.dedent(CODE))
    (root / "job.yaml").write_text(JOB.format(output=output))
    (root / "tmp").mkdir(exist_ok=True)
    return root / "job.yaml"


def mrspec(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(root / "tmp"), "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "mrspec", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=root,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def counts(folder: Path) -> dict[str, int]:
    manifest = json.loads((folder / "_SUCCESS").read_text())
    out: dict[str, int] = {}
    for part in manifest["parts"]:
        for line in Path(part["uri"]).read_text().splitlines():
            key, value = line.split("\t")
            out[key] = int(value)
    return out


def test_a_failed_overwrite_leaves_the_old_output_whole(tmp_path: Path) -> None:
    job = make(tmp_path, ["a b", "b c"])
    first = mrspec(tmp_path, "apply", str(job), "--local")
    assert first.returncode == 0, first.stderr
    old = snapshot(tmp_path / "out")
    assert counts(tmp_path / "out") == {"a": 1, "b": 2, "c": 1}

    make(tmp_path, ["a b", "boom", "z"])  # the reducer of 'boom' fails: no commit
    failed = mrspec(tmp_path, "apply", str(job), "--local", "--overwrite")
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr + failed.stdout
    assert snapshot(tmp_path / "out") == old  # nothing lost, nothing mixed in

    make(tmp_path, ["x y", "y"])
    again = mrspec(tmp_path, "apply", str(job), "--local", "--overwrite")
    assert again.returncode == 0, again.stderr
    out = tmp_path / "out"
    assert counts(out) == {"x": 1, "y": 2}
    listed = {Path(p["uri"]).name for p in json.loads((out / "_SUCCESS").read_text())["parts"]}
    assert {p.name for p in out.iterdir()} == listed | {"_SUCCESS"}  # old parts removed
    assert not listed & set(old)  # new names: they could never overwrite an old part


def test_the_old_output_stays_until_the_new_manifest_is_written(tmp_path: Path) -> None:
    old_parts = [tmp_path / "out" / "part-00000", tmp_path / "out" / "notes.txt"]
    (tmp_path / "out").mkdir()
    for part in old_parts:
        part.write_text("old\n")
    replacing = replace.prepare(str(tmp_path / "out"), overwrite=True)
    assert all(p.exists() for p in old_parts) and replacing.token
    assert replace.part_name(0, replacing.token) not in {p.name for p in old_parts}
    new = replace.part_uri(str(tmp_path / "out"), 0, replacing.token)
    Path(new).write_text("new\n")
    replace.discard(str(tmp_path / "out"), replacing.token)  # a failed run: only its part
    assert not Path(new).exists() and all(p.read_text() == "old\n" for p in old_parts)
    Path(new).write_text("new\n")
    assert replace.finish(replacing, [new]) == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [Path(new).name]


def test_an_output_holding_the_job_is_refused_by_validate(tmp_path: Path) -> None:
    for output, what in (("./", "is the spec's folder"), ("../", "contains the spec's folder")):
        job = make(tmp_path, ["a"], output=output)
        before = snapshot(tmp_path)
        for args in (("validate", str(job)), ("apply", str(job), "--local", "--overwrite")):
            proc = mrspec(tmp_path, *args)
            assert proc.returncode == 2, proc.stderr
            assert (
                f"job.yaml:13:11: output.prefix: output '{output}' {what}"
                in proc.stderr + proc.stdout
            )
            assert "Traceback" not in proc.stderr
        assert snapshot(tmp_path) == before


def test_an_output_that_is_the_working_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "job").mkdir()
    here = tmp_path / "elsewhere"
    here.mkdir()
    job = make(tmp_path / "job", ["a"], output=str(here))
    proc = subprocess.run(
        [sys.executable, "-m", "mrspec", "validate", str(job)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=here,
    )
    assert proc.returncode == 2
    assert f"output.prefix: output '{here}' is the working directory" in proc.stdout + proc.stderr


def test_tasks_do_not_import_from_the_callers_folder(tmp_path: Path) -> None:
    (tmp_path / "job").mkdir()
    job = make(tmp_path / "job", ["a b"])
    (tmp_path / "job" / "job.py").write_text(
        "import statistics\n" + textwrap.dedent(CODE)  # imported in the task, not in mrspec
    )
    caller = tmp_path / "caller"
    caller.mkdir()
    (caller / "statistics.py").write_text(
        "raise ImportError('the caller folder was on sys.path')\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path / "job" / "tmp")}
    proc = subprocess.run(  # python -m puts the working folder first on sys.path
        [sys.executable, "-m", "mrspec", "apply", str(job), "--local"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=caller,
    )
    assert proc.returncode == 0, proc.stderr
    assert counts(tmp_path / "job" / "out") == {"a": 1, "b": 1}


def test_a_job_module_named_like_the_standard_library_is_refused(tmp_path: Path) -> None:
    job = make(tmp_path, ["a"])
    (tmp_path / "json.py").write_text("x = 1\n")
    proc = mrspec(tmp_path / "input", "validate", str(job))  # run from elsewhere: python -m
    assert proc.returncode == 2
    assert "code.path holds json.py, which would hide the standard library's 'json'" in proc.stdout
