"""Expected failures are messages with exit codes, a bug is a short report: the real CLI.

Each test runs ``python -m mrspec`` (or ``mrspec.cli.main``) in a subprocess and checks
the exit code, the message and that no traceback reaches the user.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SPEC = """\
apiVersion: mrspec/v1
name: safety-cli
input:
  prefix: {input}
map:
  entrypoint: job:mapper
output:
  prefix: out/
"""

NO_CREDENTIALS = {
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def job(root: Path, input_prefix: str = "in/") -> Path:
    (root / "job.py").write_text("def mapper(line):\n    yield line, 1\n")
    (root / "in").mkdir(exist_ok=True)
    (root / "in" / "a.txt").write_text("x\n")
    (root / "job.yaml").write_text(SPEC.format(input=input_prefix))
    return root / "job.yaml"


def run(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "mrspec", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={**base, "COLUMNS": "120", **(env or {})},
    )


def test_s3_input_without_credentials_is_refused_with_a_hint(tmp_path: Path) -> None:
    spec = job(tmp_path, "s3://mrspec-no-such-bucket/in/")
    for args in (
        ("plan", str(spec)),
        ("apply", str(spec), "--local"),
        ("plan", str(spec), "--json"),
    ):
        proc = run(tmp_path, *args, env=NO_CREDENTIALS)
        assert proc.returncode == 3, proc.stderr
        assert "no AWS credentials" in proc.stderr and "s3://mrspec-no-such-bucket/in/" in proc.stderr
        assert "aws configure" in proc.stderr and "AWS_PROFILE" in proc.stderr
        assert ("--listing FILE" in proc.stderr) == (args[0] == "plan")  # plan can run offline
        assert "Traceback" not in proc.stderr + proc.stdout
    document = json.loads(proc.stdout)
    assert document["ok"] is False and document["error"] == "NoAccessError"
    assert document["exit_code"] == 3 and "AWS_PROFILE" in document["hint"]
    assert not (tmp_path / "out").exists()


BUG = """
import sys
import mrspec.spec.loader as loader
import mrspec.cli

def broken(path):
    return {}["no such key"]  # stands in for a bug anywhere in mrspec

loader.load_spec = broken
mrspec.cli.main(sys.argv[1:])
"""


def test_a_bug_prints_a_short_report_and_exits_internal(tmp_path: Path) -> None:
    spec = job(tmp_path)
    script = tmp_path / "buggy.py"
    script.write_text(textwrap.dedent(BUG))
    for extra in ((), ("--json",)):
        proc = subprocess.run(
            [sys.executable, str(script), "apply", str(spec), "--local", *extra],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert proc.returncode == 70, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "internal error: a bug in mrspec" in proc.stderr
        assert "KeyError: 'no such key'" in proc.stderr
        assert f"command: mrspec apply {spec} --local" in proc.stderr
        assert "please report it" in proc.stderr
    document = json.loads(proc.stdout)
    assert document["error"] == "InternalError" and document["exit_code"] == 70
    assert document["message"] == "KeyError: 'no such key'"


def test_json_validate_failure_still_prints_its_document(tmp_path: Path) -> None:
    spec = job(tmp_path, "arn:aws:s3:::bucket/in/")
    proc = run(tmp_path, "validate", "--json", str(spec))
    assert proc.returncode == 2
    files = json.loads(proc.stdout)["files"]
    assert "did you mean 's3://bucket/in/'" in json.dumps(files)
    applied = run(tmp_path, "apply", str(spec), "--local", "--json")
    assert applied.returncode == 2
    document = json.loads(applied.stdout)
    assert document["error"] == "SpecError"
    assert (
        document["problems"][0]["path"] == "input.prefix" and document["problems"][0]["line"] == 4
    )


def test_local_runs_read_the_input_given_on_the_command_line(tmp_path: Path) -> None:
    spec = job(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "b.txt").write_text("p\nq\nq\n")
    proc = run(tmp_path, "apply", str(spec), "--local", "--json", "--input", "other/")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["records"]["input"] == 3  # other/b.txt, not the spec's in/a.txt
    parts = (tmp_path / "out").glob("part-*")
    assert sorted(line for p in parts for line in p.read_text().splitlines()) == [
        "p\t1",
        "q\t1",
        "q\t1",
    ]
    refused = run(tmp_path, "apply", str(spec), "--local", "--input", "out/", "--overwrite")
    assert refused.returncode == 2 and "--input out/ overlaps the output" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir())[0] == "_SUCCESS"  # kept


def test_an_unwritable_output_folder_is_an_error_not_a_bug(tmp_path: Path) -> None:
    spec = job(tmp_path)
    (tmp_path / "afile").write_text("not a folder\n")
    proc = run(tmp_path, "compile", str(spec), "--out", str(tmp_path / "afile" / "stacks"))
    assert proc.returncode == 2, proc.stderr
    assert f"error: {tmp_path / 'afile' / 'stacks'}" in proc.stderr and "Not a directory" in proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "afile").read_text() == "not a folder\n"
