"""limits.max_bad_records at its exact boundary, through ``mrspec apply --local``.

Two checks enforce it: each map task stops at its own (limit + 1)th bad record
(maptask.py ``BadRecords``), and the engine and the commit sum the tasks' counts
(committer.py ``check_bad_records``). Each case below fails one of them and not the
other, so an off-by-one in either one fails a test even though the other would still
catch a run far past the limit: the expected messages differ ("map task N: bad record
in ... that is K bad record(s)" against "K bad records in the job").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SPEC = """\
apiVersion: mrspec/v1
name: bad-records
input:
  prefix: in/
  split_size: 64KiB
map:
  entrypoint: job:mapper
  memory: 256
  bin_size: 64KiB
reduce:
  entrypoint: job:reducer
  partitions: 1
  memory: 256
output:
  prefix: out/
limits:
  max_attempts: 1
  max_bad_records: {limit}
"""

CODE = """\
def mapper(line):
    if line.startswith("bad"):
        raise ValueError("unparsable " + line)
    yield "good", 1

def reducer(key, values):
    yield key, sum(values)
"""

LIMIT = 3
FILLER = "good\n" * 10_000  # 50 KB: every file is one map task (bins of 64 KiB)


def run(root: Path, bad_per_file: list[int]) -> subprocess.CompletedProcess[str]:
    """One file (one map task) per entry, holding that many bad records among good ones."""
    (root / "in").mkdir()
    for i, bad in enumerate(bad_per_file):
        lines = "".join(f"bad {i}-{j}\n" for j in range(bad))
        (root / "in" / f"f{i}.txt").write_text(lines + FILLER)
    (root / "job.py").write_text(CODE)
    (root / "job.yaml").write_text(SPEC.format(limit=LIMIT))
    (root / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(root / "tmp"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "mrspec", "apply", "job.yaml", "--local", "--json", "--workers", "2"],
        capture_output=True, text=True, timeout=180, cwd=root, env=env,
    )


def good_total(files: int) -> int:
    return 10_000 * files


@pytest.mark.parametrize(
    "bad_per_file",
    [[LIMIT], [1, 1, 1], [2, 0, 1]],
    ids=["limit in one task", "limit spread over three", "limit spread unevenly"],
)
def test_exactly_the_limit_succeeds(tmp_path: Path, bad_per_file: list[int]) -> None:
    proc = run(tmp_path, bad_per_file)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["tasks"]["map"] == len(bad_per_file)
    assert len(summary["bad_records"]) == LIMIT == summary["counters"]["bad_records"]
    part = next((tmp_path / "out").glob("part-*")).read_text()
    assert part == f"good\t{good_total(len(bad_per_file))}\n"


def test_one_past_the_limit_in_one_task_fails_that_task(tmp_path: Path) -> None:
    proc = run(tmp_path, [0, LIMIT + 1])
    assert proc.returncode == 1
    assert (
        f"map task 1: bad record in {tmp_path / 'in' / 'f1.txt'} at byte 24: ValueError: "
        f"unparsable bad 1-3 (at job.py:3); that is 4 bad record(s), more than "
        f"limits.max_bad_records (3)"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_one_past_the_limit_spread_over_tasks_fails_the_job(tmp_path: Path) -> None:
    proc = run(tmp_path, [1, 1, 1, 1])  # every task under the limit, the job over it
    assert proc.returncode == 1
    assert "4 bad records in the job, more than limits.max_bad_records (3)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
