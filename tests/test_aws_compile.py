"""``mrspec compile``: review artifacts for every example spec, and ``--check``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from aws_specs import REPO
from click.testing import CliRunner

from mrspec.commands.compile import command

ALL_EXAMPLES = sorted((REPO / "specs").glob("*/job.yaml"))
# jobs with steps run on the local engine only for now (mrspec.aws.lower.refuse_steps)
STEPS_EXAMPLES = [p for p in ALL_EXAMPLES if "\nsteps:" in p.read_text()]
EXAMPLES = [p for p in ALL_EXAMPLES if p not in STEPS_EXAMPLES]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(command, list(args), standalone_mode=False)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.return_value or 0, result.output


def test_committed_artifacts_match_every_example() -> None:
    assert EXAMPLES
    code, output = run("--check", "--out", str(REPO / "stacks"), *map(str, EXAMPLES))
    assert code == 0, output


@pytest.mark.parametrize("spec", STEPS_EXAMPLES, ids=lambda p: p.parent.name)
def test_a_job_with_steps_is_refused_with_the_way_to_run_it(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mrspec.cli import main

    for args in (["compile", str(spec)], ["plan", str(spec)], ["apply", str(spec)]):
        with pytest.raises(SystemExit) as exited:
            main(args)
        assert exited.value.code == 2, args
        err = capsys.readouterr().err
        assert "steps: this version of mrspec runs jobs with steps on this machine only" in err
        assert "mrspec apply --local" in err and "Traceback" not in err


def test_compile_writes_the_artifact_files(tmp_path: Path) -> None:
    spec = REPO / "specs" / "wordcount" / "job.yaml"
    code, output = run("--out", str(tmp_path), str(spec))
    assert code == 0
    assert "LOCAL-" in output  # the example's local folders become placeholders
    folder = tmp_path / "wordcount"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == [
        "iam/bucket-policy.json",
        "iam/lambda.json",
        "iam/states.json",
        "stack.json",
        "statemachine.asl.json",
    ]
    stack = json.loads((folder / "stack.json").read_text())
    assert stack["layout"]["input_prefixes"] == ["s3://LOCAL-INPUT-0/"]
    asl = json.loads((folder / "statemachine.asl.json").read_text())
    assert asl["StartAt"] == "MapPhase"


def test_check_reports_stale_missing_and_extra_files(tmp_path: Path) -> None:
    spec = REPO / "specs" / "wordcount" / "job.yaml"
    run("--out", str(tmp_path), str(spec))
    folder = tmp_path / "wordcount"
    (folder / "stack.json").write_text("{}\n")
    (folder / "iam" / "states.json").unlink()
    (folder / "leftover.json").write_text("{}")
    code, output = run("--check", "--out", str(tmp_path), str(spec))
    assert code == 1
    assert "stack.json: differs" in output
    assert "states.json: missing" in output
    assert "leftover.json: not produced" in output
    # Compiling again repairs everything.
    run("--out", str(tmp_path), str(spec))
    assert run("--check", "--out", str(tmp_path), str(spec))[0] == 0


def test_overrides_give_real_locations(tmp_path: Path) -> None:
    src = tmp_path / "spec"
    shutil.copytree(
        REPO / "specs" / "wordcount", src, ignore=shutil.ignore_patterns("input", "out")
    )
    code, output = run(
        "--out",
        str(tmp_path / "stacks"),
        "--input",
        "s3://corpus/books/",
        "--output",
        "s3://results/wc/",
        str(src / "job.yaml"),
    )
    assert code == 0 and "LOCAL-" not in output
    policy = json.loads((tmp_path / "stacks" / "wordcount" / "iam" / "lambda.json").read_text())
    statements = policy["inline_policies"]["mrspec-tasks"]["Statement"]
    assert statements[0]["Resource"] == ["arn:aws:s3:::corpus/books/*"]


def test_two_specs_with_one_job_name_are_refused(tmp_path: Path) -> None:
    from mrspec.errors import MrspecError

    spec = REPO / "specs" / "wordcount" / "job.yaml"
    copy = tmp_path / "copy"
    shutil.copytree(REPO / "specs" / "wordcount", copy, ignore=shutil.ignore_patterns("out"))
    with pytest.raises(MrspecError, match="both name the job 'wordcount'"):
        run("--out", str(tmp_path / "stacks"), str(spec), str(copy / "job.yaml"))


def test_overrides_must_be_s3(tmp_path: Path) -> None:
    from mrspec.errors import MrspecError

    spec = REPO / "specs" / "wordcount" / "job.yaml"
    with pytest.raises(MrspecError, match="take s3:// URIs"):
        run("--out", str(tmp_path), "--input", "/data/in", str(spec))


def test_cli_exit_codes(tmp_path: Path) -> None:
    import subprocess
    import sys

    spec = str(REPO / "specs" / "grep" / "job.yaml")
    cmd = [sys.executable, "-m", "mrspec", "compile", "--out", str(tmp_path)]
    stale = subprocess.run([*cmd, "--check", spec], capture_output=True, text=True, check=False)
    assert stale.returncode == 1
    assert "statemachine.asl.json: missing" in stale.stderr
    assert subprocess.run([*cmd, spec], capture_output=True, check=False).returncode == 0
    fresh = subprocess.run([*cmd, "--check", spec], capture_output=True, text=True, check=False)
    assert fresh.returncode == 0, fresh.stderr
    bad = subprocess.run(
        [*cmd, "--output", "/tmp/x", spec], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "s3:// URIs" in bad.stderr
    assert "Traceback" not in bad.stderr
