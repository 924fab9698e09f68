"""Unsupported values and reducer mistakes fail the same way in every job shape, at the
job's own file and line, without retries: through ``mrspec apply --local``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CODE = """
import datetime


def mapper(line):
    yield line, BAD


def task_mapper(lines):
    for line in lines:
        yield line, BAD


def ok_mapper(line):
    yield line, 1


def combiner(key, values):
    yield key, {sum(values)}


def reducer(key, values):
    yield key, sum(1 for _ in values)


def int_reducer(key, values):
    return sum(values)
"""

SPEC = """\
apiVersion: mrspec/v1
name: safety-values
input:
  prefix: in/
map:
  entrypoint: job:{mapper}
  form: {form}
  memory: 256
{combiner}{reduce}output:
  prefix: out/
limits:
  max_attempts: 3
"""


def run(
    root: Path,
    bad: str,
    mapper: str = "mapper",
    form: str = "record",
    combiner: str = "",
    reduce: str | None = "reducer",
) -> subprocess.CompletedProcess[str]:
    (root / "in").mkdir(exist_ok=True)
    (root / "in" / "a.txt").write_text("k1\nk1\n")
    (root / "job.py").write_text(textwrap.dedent(CODE).replace("BAD", bad))
    (root / "tmp").mkdir(exist_ok=True)
    (root / "job.yaml").write_text(
        SPEC.format(
            mapper=mapper,
            form=form,
            combiner=f"  combiner: job:{combiner}\n" if combiner else "",
            reduce=f"reduce:\n  entrypoint: job:{reduce}\n  partitions: 1\n  memory: 256\n"
            if reduce
            else "",
        )
    )
    env = {**os.environ, "TMPDIR": str(root / "tmp"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "mrspec", "apply", "job.yaml", "--local", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env=env,
    )


SHAPES = {
    "record+reduce": {"mapper": "mapper"},
    "task+reduce": {"mapper": "task_mapper", "form": "task"},
    "record, map-only": {"mapper": "mapper", "reduce": None},
    "task, map-only": {"mapper": "task_mapper", "form": "task", "reduce": None},
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("bad", "kind", "advice"),
    [("datetime.date(2026, 1, 2)", "date", "isoformat()"), ("{1, 2}", "set", "sorted(value)")],
)
def test_unsupported_values_fail_alike_in_every_shape(
    tmp_path: Path, shape: str, bad: str, kind: str, advice: str
) -> None:
    proc = run(tmp_path, bad, **SHAPES[shape])  # type: ignore[arg-type]
    line = 5 if SHAPES[shape]["mapper"] == "mapper" else 9
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"map task 0: the mapper (job.py:{line}) emitted a value of type {kind}" in proc.stderr
    assert "for key 'k1'" in proc.stderr and advice in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["exit_code"] == 1
    assert "attempt 2" not in proc.stderr  # retrying the same code cannot help
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_combiner_emitting_a_set_is_named(tmp_path: Path) -> None:
    proc = run(tmp_path, "1", mapper="ok_mapper", combiner="combiner")
    assert proc.returncode == 1
    assert "the combiner (job.py:18) emitted a value of type set ({2})" in proc.stderr


def test_a_reducer_returning_an_int_is_reported_at_the_jobs_line(tmp_path: Path) -> None:
    proc = run(tmp_path, "1", mapper="ok_mapper", reduce="int_reducer")
    assert proc.returncode == 1
    assert "the reducer (job.py:26) returned int 2 for key 'k1'" in proc.stderr
    assert "output.py" not in proc.stderr and "Traceback" not in proc.stderr


HANG = """
import os, time

def mapper(line):
    marker = os.path.join(os.path.dirname(__file__), "attempts")
    with open(marker, "a") as f:
        f.write("x")
    if line == "hang":
        time.sleep(3600)
    yield line, 1
"""


def test_a_hung_local_task_is_stopped_at_its_timeout_and_retried(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("hang\n")
    (tmp_path / "job.py").write_text(textwrap.dedent(HANG))
    (tmp_path / "job.yaml").write_text(
        "apiVersion: mrspec/v1\nname: hang\ninput:\n  prefix: in/\nmap:\n  entrypoint: job:mapper\n"
        "  timeout: 1s\n  memory: 256\noutput:\n  prefix: out/\nlimits:\n  max_attempts: 2\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mrspec", "apply", "job.yaml", "--local"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "map task 0 exceeded its timeout of 1 s (attempt 2 of 2)" in proc.stderr
    assert "raise map.timeout in the spec" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "attempts").read_text() == "xx"  # stopped, retried once, stopped
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_retries_wait_with_exponential_backoff_and_full_jitter() -> None:
    import random

    from mrspec.runtime.retry import RETRY_CAP_S, retry_delay

    random.seed(7)
    for attempt in (1, 2, 3, 4, 8):
        ceiling = min(RETRY_CAP_S, 2.0 ** (attempt - 1))
        delays = [retry_delay(attempt) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling and min(delays) < 0.2 * ceiling  # spread out
