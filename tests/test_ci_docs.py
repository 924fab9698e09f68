"""docs/ci.md stays true: its workflow is the example file actionlint checks and the action
tests run, and every command in its ``sh`` blocks is run here, as written, where a user
would run it (a throw-away repository of jobs beside a copy of mrspec).

``COMMANDS`` maps each documented command to the test that runs it; a command added to
the page without a test fails ``test_every_command_is_run``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.project_copy import ROOT, commit_all, copy_project, git, offline_env

DOC = ROOT / "docs" / "ci.md"
BIN = Path(sys.executable).parent
COMMANDS = {
    "git rev-parse HEAD": "test_pin_commands",
    "actionlint .github/workflows/mrspec-review.yml": "test_workflow_block",
    "MRSPEC_BASE=origin/main bash ../mrspec/action/review.sh": "test_review_script_command",
    "mrspec plan jobs/wordcount/job.yaml --save-listing jobs/wordcount/job.listing.jsonl":
        "test_review_script_command",
    "pre-commit autoupdate --bleeding-edge --freeze": "test_pre_commit_config",
    "pre-commit install": "test_pre_commit_config",
    "pre-commit run --all-files": "test_pre_commit_config",
}


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), re.M | re.S)


def documented(command: str) -> str:
    assert command in [line for b in blocks("sh") for line in b.splitlines()], command
    return command


def sh(command: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a documented command line (leading NAME=value words are its environment)."""
    words = shlex.split(documented(command))
    extra = {}
    while "=" in words[0] and not words[0].startswith("-"):
        name, value = words.pop(0).split("=", 1)
        extra[name] = value
    base = env or {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(words, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**base, **extra})
    assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def jobs_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "jobs-repo"
    shutil.copytree(ROOT / "specs" / "wordcount", repo / "jobs" / "wordcount",
                    ignore=shutil.ignore_patterns("out"))
    subprocess.run([BIN / "mrspec", "compile", "jobs/wordcount/job.yaml"], cwd=repo,
                   check=True, capture_output=True)
    commit_all(repo, "wordcount")
    return repo


def test_every_command_is_run() -> None:
    lines = {line for b in blocks("sh") for line in b.splitlines() if line.strip()}
    assert lines == set(COMMANDS)
    assert all(callable(globals().get(name)) for name in COMMANDS.values())


def test_workflow_block(tmp_path: Path) -> None:
    (workflow,) = blocks("yaml")[:1]
    assert workflow == (ROOT / "docs" / "examples" / "mrspec-review.yml").read_text()
    target = tmp_path / ".github" / "workflows" / "mrspec-review.yml"
    target.parent.mkdir(parents=True)
    target.write_text(workflow)
    sh("actionlint .github/workflows/mrspec-review.yml", tmp_path)


def test_pin_commands(tmp_path: Path) -> None:
    mrspec = copy_project(tmp_path / "mrspec")
    sha = commit_all(mrspec, "mrspec")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(mrspec), str(clone))
    assert sh("git rev-parse HEAD", clone).strip() == sha


def test_review_script_command(tmp_path: Path) -> None:
    repo = jobs_repo(tmp_path)
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    (tmp_path / "mrspec").symlink_to(ROOT)  # "../mrspec": a clone beside the repository
    git(repo, "checkout", "-q", "-b", "change")
    spec = repo / "jobs" / "wordcount" / "job.yaml"
    spec.write_text(spec.read_text().replace("partitions: 4", "partitions: 2"))
    subprocess.run([BIN / "mrspec", "compile", "jobs/wordcount/job.yaml"], cwd=repo,
                   check=True, capture_output=True)
    sh("mrspec plan jobs/wordcount/job.yaml --save-listing jobs/wordcount/job.listing.jsonl",
       repo)
    commit_all(repo, "two partitions, and a saved listing")
    out = sh("MRSPEC_BASE=origin/main bash ../mrspec/action/review.sh", repo)
    assert "--listing jobs/wordcount/job.listing.jsonl" in out
    comment = (repo / "mrspec-comment.md").read_text()
    assert "| reduce tasks | 4 | 2 | -2 (-50%) |" in comment


@pytest.mark.slow
def test_pre_commit_config(tmp_path: Path) -> None:
    mrspec = copy_project(tmp_path / "mrspec")
    sha = commit_all(mrspec, "mrspec")
    repo = jobs_repo(tmp_path)
    config = blocks("yaml")[1]
    assert "repo: https://github.com/OWNER/mrspec\n" in config
    (repo / ".pre-commit-config.yaml").write_text(  # the same repository, offline
        config.replace("https://github.com/OWNER/mrspec", str(mrspec)))
    commit_all(repo, "pre-commit config")
    env = offline_env(tmp_path / "cache")
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    sh("pre-commit autoupdate --bleeding-edge --freeze", repo, env)
    assert yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())[
        "repos"][0]["rev"] == sha
    sh("pre-commit install", repo, env)
    assert (repo / ".git" / "hooks" / "pre-commit").is_file()
    out = sh("pre-commit run --all-files", repo, env)
    assert re.search(r"mrspec validate\.+Passed", out) and re.search(
        r"mrspec compile --check\.+Passed", out), out

    # A valid change committed without recompiling: the drift check catches it.
    spec = repo / "jobs" / "wordcount" / "job.yaml"
    spec.write_text(spec.read_text().replace("partitions: 4", "partitions: 6"))
    git(repo, "add", "-A")
    stale = subprocess.run([BIN / "pre-commit", "run", "--all-files"], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=300)
    assert stale.returncode == 1
    assert re.search(r"mrspec validate\.+Passed", stale.stdout), stale.stdout
    assert re.search(r"mrspec compile --check\.+Failed", stale.stdout), stale.stdout
    assert "stacks/wordcount/statemachine.asl.json: differs" in stale.stdout
    assert "run: mrspec compile --out stacks jobs/wordcount/job.yaml" in stale.stdout
