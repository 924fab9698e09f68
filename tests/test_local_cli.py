"""``mrspec apply --local`` as a user runs it: exit codes, messages, Ctrl-C, no tracebacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

JOB = """\
apiVersion: mrspec/v1
name: cli-test
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
limits:
  max_attempts: 1
  max_bad_records: {bad}
"""

CODE = """
import os, time

def mapper(line):
    if line.startswith("slow"):
        open(os.path.join(os.path.dirname(__file__), "started"), "w").close()
        time.sleep(60)
    if line.startswith("bad"):
        raise ValueError("unparsable: " + line)
    for word in line.split():
        yield word, 1

def reducer(word, counts):
    yield word, sum(counts)
"""


def make(tmp_path: Path, lines: list[str], bad: int = 0) -> Path:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "a.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "job.py").write_text(textwrap.dedent(CODE))
    (tmp_path / "job.yaml").write_text(JOB.format(bad=bad))
    (tmp_path / "tmp").mkdir()
    return tmp_path / "job.yaml"


def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "COLUMNS": "120"}


def apply(tmp_path: Path, job: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mrspec", "apply", str(job), "--local", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env(tmp_path),
    )


def test_success_refusal_and_overwrite(tmp_path: Path) -> None:
    job = make(tmp_path, ["a b", "b"])
    first = apply(tmp_path, job)
    assert first.returncode == 0, first.stderr
    assert "output" in first.stdout and str(tmp_path / "out") in first.stdout
    second = apply(tmp_path, job)
    assert second.returncode == 3
    assert "already holds 3 object(s)" in second.stderr and "--overwrite" in second.stderr
    third = apply(tmp_path, job, "--overwrite", "--workers", "1")
    assert third.returncode == 0, third.stderr
    for proc in (first, second, third):
        assert "Traceback" not in proc.stderr + proc.stdout
    assert not list((tmp_path / "tmp").iterdir())  # the work folder is gone


def test_failed_job_exits_1_naming_the_record(tmp_path: Path) -> None:
    job = make(tmp_path, ["fine", "bad apple", "fine"])
    proc = apply(tmp_path, job)
    assert proc.returncode == 1
    assert "a.txt at byte 5: ValueError: unparsable: bad apple" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    as_json = apply(tmp_path, job, "--json")
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)  # a script reading stdout gets the error too
    assert document["ok"] is False and document["exit_code"] == 1
    assert "unparsable: bad apple" in document["message"]


def test_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    job = make(tmp_path, ["a b", "slow down", "c"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "mrspec", "apply", str(job), "--local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(tmp_path),
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err + out
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert not list((tmp_path / "tmp").iterdir())
