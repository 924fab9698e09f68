"""``mrspec validate`` and ``mrspec schema`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mrspec.cli import cli
from mrspec.spec.schema import load_schema

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "specs").glob("*/job.yaml"))


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mrspec", *args], capture_output=True, text=True, cwd=cwd
    )


def test_every_example_validates_from_the_command_line() -> None:
    assert EXAMPLES, "no example specs found"
    # The acceptance command is `mrspec validate specs/*/*.yaml`: only specs there.
    assert sorted((REPO / "specs").glob("*/*.y*ml")) == EXAMPLES
    result = run_cli("validate", *(str(p.relative_to(REPO)) for p in EXAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    noun = "spec" if len(EXAMPLES) == 1 else "specs"
    assert result.stderr.strip() == f"{len(EXAMPLES)} {noun} valid"


def test_problem_lines_summary_and_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "job.yaml"
    bad.write_text("apiVersion: mrspec/v1\nname: x\n")
    result = run_cli("validate", str(bad), str(REPO / "specs" / "wordcount" / "job.yaml"))
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines == [
        f"{bad}:1:1: input: missing required field 'input' (Input)",
        f"{bad}:1:1: map: missing required field 'map' (Map phase)",
        f"{bad}:1:1: output: missing required field 'output' (Output)",
    ]
    assert result.stderr.strip() == "1 of 2 specs invalid (3 problems)"
    assert "Traceback" not in result.stderr


def test_json_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    bad = tmp_path / "job.yaml"
    bad.write_text("apiVersion: mrspec/v9\n")
    result = CliRunner().invoke(
        cli, ["validate", "--json", "--quiet", str(bad), "specs/wordcount/job.yaml"]
    )
    document = json.loads(result.output)
    assert document["valid"] is False
    first, second = document["files"]
    assert first["valid"] is False and second == {
        "file": "specs/wordcount/job.yaml",
        "valid": True,
        "name": "wordcount",
        "problems": [],
    }
    version = next(p for p in first["problems"] if p["path"] == "apiVersion")
    assert (version["line"], version["column"]) == (1, 13)
    assert "supports mrspec/v1" in version["message"]


def test_validate_never_imports_pulumi_or_boto3() -> None:
    code = (
        "import sys\n"
        "from mrspec.cli import main\n"
        "try:\n"
        "    main(['validate', '--quiet', 'specs/wordcount/job.yaml'])\n"
        "except SystemExit as exc:\n"
        "    heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pulumi', 'pulumi_aws', 'boto3', 'botocore'))\n"
        "    print(exc.code, heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "0 []"


def test_schema_command_prints_the_shipped_schema() -> None:
    result = run_cli("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout) == load_schema()
    assert load_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_help_of_both_commands() -> None:
    for name in ("validate", "schema"):
        result = run_cli(name, "--help")
        assert result.returncode == 0 and "Examples:" in result.stdout


def test_pre_commit_hook_selects_job_specs_and_runs_validate() -> None:
    import re

    import yaml

    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "mrspec-validate")
    assert hook["entry"] == "mrspec validate" and hook["language"] == "python"
    files = re.compile(hook["files"])
    for spec in EXAMPLES:
        assert files.search(str(spec.relative_to(REPO)))
    for name in ("job.yml", "jobs/nightly.mrspec.yaml", "a/b/wc.mrspec.yml"):
        assert files.search(name), name
    for name in ("docker-compose.yaml", "myjob.yaml", ".pre-commit-hooks.yaml", "job.yaml.bak"):
        assert not files.search(name), name
    # The hook passes file names to the entry, exactly as here.
    result = run_cli(*hook["entry"].split()[1:], *(str(p) for p in EXAMPLES))
    assert result.returncode == 0, result.stdout


def test_github_annotations(tmp_path: Path) -> None:
    bad = tmp_path / "a,b.yaml"
    bad.write_text("apiVersion: mrspec/v1\nname: Bad\n")
    result = CliRunner().invoke(cli, ["validate", "--github", "--quiet", str(bad)])
    lines = result.output.splitlines()
    escaped = str(bad).replace(",", "%2C")
    assert lines[0].startswith(f"::error file={escaped},line=1,col=1,title=mrspec validate::")
    assert any(
        line.startswith(f"::error file={escaped},line=2,col=7,") and "::name: the job name" in line
        for line in lines
    )
